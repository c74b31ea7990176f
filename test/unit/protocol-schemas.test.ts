import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import {
  ErrorCode,
  GridtuneError,
  RuntimeError,
  UnavailableError,
  ValidationError,
  WireError,
  describeZodError,
  toWireError,
} from "../../protocol/errors.ts";
import {
  EvaluationOutput,
  FAILED_POINT_LOSS,
  MAX_OUTPUT_MESSAGE_CHARS,
  ProgressLine,
} from "../../protocol/files.ts";
import { AgentReply, AgentReport, AgentRequest, ControlMessage, Job } from "../../protocol/messages.ts";
import {
  ApiReplies,
  ApiReply,
  ApiRequest,
  TaskEvent,
  TaskEvents,
  MAX_CHANGES_PER_MESSAGE,
  TaskSummary,
} from "../../protocol/api.ts";
import { JOB_ID_RE, NAME_RE, TASK_ID_RE, jobIdOf } from "../../protocol/names.ts";
import {
  parseApiSubject,
  parseHeartbeatSubject,
  parseResultSubject,
  subjects,
} from "../../protocol/subjects.ts";
import { MAX_TIMER_MINUTES, TaskSpec, parseTaskSpec, type TaskSpecInput } from "../../protocol/taskConfig.ts";
import { compileTask } from "../../steering/core/task/compiledTask.ts";
import { SMALL_SPACE, specInput, throwsCode } from "./fixtures/engineKit.ts";

/** safeParse must fail, and one issue's path must be exactly `path` (the offending field). */
function refuses(schema: z.ZodType, value: unknown, path: Array<string | number>): void {
  const r = schema.safeParse(value);
  assert.equal(r.success, false, `expected ${JSON.stringify(value)} to be refused`);
  if (r.success) return;
  const paths = r.error.issues.map((i) => i.path.map(String).join("."));
  const want = path.map(String).join(".");
  assert.ok(paths.includes(want), `expected an issue at "${want}", got ${JSON.stringify(paths)}`);
}
function accepts<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  assert.ok(r.success, r.success ? "" : describeZodError(r.error));
  return r.data;
}

const job = (): Record<string, unknown> => ({
  jobId: "t12-p3-j1",
  attempt: 1,
  taskId: "12",
  user: "alice",
  point: { lr: 0.1, opt: "adam", bn: true, drop: null },
  evaluation: {
    container: "busybox:1.36",
    argv: ["python", "train.py"],
    inputFile: "input.json",
    trainingDataFile: "input_ds.json",
    outputFile: "output.json",
    metaFile: null,
    metricsFile: null,
    checkPointToSave: [],
    checkPointToLoad: null,
    checkPointIntervalMs: 300_000,
    checkPointLimitBytes: 100 * 1024 * 1024,
    timeoutMs: 3_600_000,
    memoryBytes: 2 * 1024 ** 3,
    nanoCpus: 1e9,
    network: "none",
  },
});
const withEval = (over: Record<string, unknown>) => {
  const j = job();
  j.evaluation = { ...(j.evaluation as object), ...over };
  return j;
};

const summary = (): Record<string, unknown> => ({
  taskId: "12",
  user: "alice",
  outDS: "user.alice.hpo",
  state: "running",
  createdAt: 1,
  finishedAt: null,
  maxPoints: 10,
  counts: { points: 2, done: 1, failed: 0, running: 1, queued: 0, jobs: 2 },
  best: { pointId: 0, loss: 0.5, values: { x: 1 } },
});

const result = (over: Record<string, unknown> = {}) => ({
  type: "result",
  jobId: "t12-p3-j1",
  attempt: 2,
  status: "ok",
  loss: 0.25,
  metrics: { acc: 0.9 },
  resource: null,
  error: null,
  artifacts: [{ kind: "log", key: "logs/a.tgz", size: 10, etag: "abc" }],
  startedAt: 1,
  finishedAt: 2,
  exitCode: 0,
  ...over,
});

void describe("messages: Job", () => {
  void it("accepts a complete job and keeps point values of every JSON scalar type", () => {
    const j = accepts(Job, job());
    assert.deepEqual(j.point, { lr: 0.1, opt: "adam", bn: true, drop: null });
  });
  void it("reads a version-1 job (its extra fields are dropped): a queued job survives the upgrade", () => {
    const old = {
      ...job(),
      v: 1,
      segment: "seg_A",
      pointId: 3,
      resource: { key: "epochs", target: 9, from: 3 },
      trainingFiles: [],
      hasSandbox: false,
      hasCheckpoint: false,
      reportProgress: true,
    };
    assert.deepEqual(accepts(Job, old), accepts(Job, job()));
  });
  void it("refuses a malformed job id, naming jobId", () => {
    for (const bad of ["t12-p3", "12-p3-j1", "t12-p3-j1 ", "t1.2-p3-j1", "t12-p3-j12345", "T12-p3-j1"]) {
      refuses(Job, { ...job(), jobId: bad }, ["jobId"]);
    }
  });
  void it("refuses attempt 0 and a non-decimal task id", () => {
    refuses(Job, { ...job(), attempt: 0 }, ["attempt"]);
    refuses(Job, { ...job(), attempt: 1.5 }, ["attempt"]);
    refuses(Job, { ...job(), taskId: "abc" }, ["taskId"]);
    refuses(Job, { ...job(), taskId: "1234567890123" }, ["taskId"]);
    refuses(Job, { ...job(), taskId: 12 }, ["taskId"]);
  });
  void it("refuses an empty argv, a bad network and non-integer limits", () => {
    refuses(Job, withEval({ argv: [] }), ["evaluation", "argv"]);
    refuses(Job, withEval({ network: "host" }), ["evaluation", "network"]);
    refuses(Job, withEval({ memoryBytes: 1.5 }), ["evaluation", "memoryBytes"]);
    refuses(Job, withEval({ nanoCpus: 0 }), ["evaluation", "nanoCpus"]);
    refuses(Job, withEval({ timeoutMs: 0 }), ["evaluation", "timeoutMs"]);
    refuses(Job, withEval({ checkPointIntervalMs: -1 }), ["evaluation", "checkPointIntervalMs"]);
  });
  void it("refuses nested point values and missing fields", () => {
    refuses(Job, { ...job(), point: { a: [1, 2] } }, ["point", "a"]);
    refuses(Job, { ...job(), point: { a: { b: 1 } } }, ["point", "a"]);
    const j = job();
    delete j.user;
    refuses(Job, j, ["user"]);
  });
});

void describe("messages: AgentRequest", () => {
  void it("accepts each request type", () => {
    accepts(AgentRequest, {
      type: "register",
      v: 1,
      slots: 2,
      gpus: ["0"],
      runtime: "docker",
      software: "gridtune 0.1",
    });
    accepts(AgentRequest, {
      type: "heartbeat",
      running: [{ jobId: "t1-p0-j1", attempt: 1 }],
      freeSlots: 0,
      draining: false,
    });
    accepts(AgentRequest, { type: "claim", jobId: "t1-p0-j1", attempt: 3 });
    accepts(AgentRequest, {
      type: "presign",
      jobId: "t1-p0-j1",
      attempt: 1,
      artifacts: [{ kind: "checkpoint", size: 0 }],
    });
    accepts(AgentRequest, { type: "bye", running: [] });
  });
  void it("refuses an unknown type (discriminator)", () => {
    refuses(AgentRequest, { type: "hello" }, ["type"]);
  });
  void it("refuses bad fields, naming them", () => {
    refuses(AgentRequest, { type: "register", v: 1, slots: 0, gpus: [], runtime: "docker", software: "x" }, [
      "slots",
    ]);
    refuses(AgentRequest, { type: "register", v: 1, slots: 1, gpus: [], runtime: "podman", software: "x" }, [
      "runtime",
    ]);
    refuses(AgentRequest, { type: "heartbeat", running: [], freeSlots: -1, draining: false }, ["freeSlots"]);
    refuses(
      AgentRequest,
      { type: "heartbeat", running: [{ jobId: "nope", attempt: 1 }], freeSlots: 0, draining: false },
      ["running", 0, "jobId"],
    );
    refuses(AgentRequest, { type: "claim", jobId: "t1-p0-j1", attempt: 0 }, ["attempt"]);
    refuses(AgentRequest, { type: "presign", jobId: "t1-p0-j1", attempt: 1, artifacts: [] }, ["artifacts"]);
    refuses(
      AgentRequest,
      { type: "presign", jobId: "t1-p0-j1", attempt: 1, artifacts: [{ kind: "binary", size: 1 }] },
      ["artifacts", 0, "kind"],
    );
    refuses(
      AgentRequest,
      { type: "presign", jobId: "t1-p0-j1", attempt: 1, artifacts: [{ kind: "log", size: -1 }] },
      ["artifacts", 0, "size"],
    );
  });
});

void describe("messages: AgentReply", () => {
  void it("accepts each reply type", () => {
    accepts(AgentReply, { type: "registered", leaseMs: 30_000, heartbeatMs: 5_000 });
    accepts(AgentReply, { type: "ack", stale: [{ jobId: "t1-p0-j1", attempt: 1 }] });
    accepts(AgentReply, {
      type: "claimed",
      grant: { sandbox: null, trainingData: [{ name: "a.root", url: "http://s3/a?sig" }], checkpoint: null },
    });
    accepts(AgentReply, { type: "presigned", uploads: [{ kind: "log", key: "k", url: "http://u" }] });
    accepts(AgentReply, {
      type: "error",
      error: { code: "STALE_ATTEMPT", message: "superseded", retryable: false },
    });
  });
  void it("refuses an error reply with an unknown code, and a claim grant without fields", () => {
    refuses(AgentReply, { type: "error", error: { code: "OOPS", message: "x", retryable: false } }, [
      "error",
      "code",
    ]);
    refuses(AgentReply, { type: "claimed", grant: { sandbox: null, trainingData: [] } }, [
      "grant",
      "checkpoint",
    ]);
    refuses(AgentReply, { type: "presigned", uploads: [{ kind: "log", key: "k" }] }, ["uploads", 0, "url"]);
  });
});

void describe("messages: AgentReport", () => {
  void it("accepts progress, checkpoint and every result status", () => {
    accepts(AgentReport, {
      type: "progress",
      jobId: "t1-p0-j1",
      attempt: 1,
      resource: 3,
      metrics: { loss: 0.4 },
    });
    accepts(AgentReport, {
      type: "checkpoint",
      jobId: "t1-p0-j1",
      attempt: 1,
      artifact: { kind: "checkpoint", key: "k", size: 5, etag: "e" },
      resource: null,
    });
    for (const status of ["ok", "failed", "stopped", "preempted"]) accepts(AgentReport, result({ status }));
    accepts(
      AgentReport,
      result({
        status: "failed",
        loss: null,
        error: { code: "EVALUATION_FAILED", message: "exit 1", retryable: false },
      }),
    );
  });
  void it("refuses an unknown status, non-numeric metrics and a non-integer exit code", () => {
    refuses(AgentReport, result({ status: "crashed" }), ["status"]);
    refuses(AgentReport, result({ metrics: { acc: "high" } }), ["metrics", "acc"]);
    refuses(AgentReport, result({ exitCode: 1.5 }), ["exitCode"]);
    refuses(AgentReport, result({ artifacts: [{ kind: "log", key: "k", size: 1 }] }), [
      "artifacts",
      0,
      "etag",
    ]);
    refuses(AgentReport, { type: "progress", jobId: "t1-p0-j1", attempt: 1, metrics: {} }, ["resource"]);
  });
});

void describe("messages: ControlMessage", () => {
  void it("accepts stop with each reason, and drain", () => {
    for (const reason of ["pruned", "paused", "killed", "stale"])
      accepts(ControlMessage, { type: "stop", jobId: "t1-p0-j1", attempt: 1, reason });
    accepts(ControlMessage, { type: "drain" });
  });
  void it("refuses an unknown reason or type", () => {
    refuses(ControlMessage, { type: "stop", jobId: "t1-p0-j1", attempt: 1, reason: "bored" }, ["reason"]);
    refuses(ControlMessage, { type: "stop", jobId: "t1-p0-j1", reason: "killed" }, ["attempt"]);
    refuses(ControlMessage, { type: "reboot" }, ["type"]);
  });
});

void describe("messages: ApiRequest", () => {
  void it("accepts every verb", () => {
    const s = accepts(ApiRequest, { verb: "submit", spec: specInput() });
    assert.equal(
      s.verb === "submit" && s.spec.maxPoints,
      10,
      "the spec gets its defaults when parsed in a request",
    );
    accepts(ApiRequest, { verb: "list" });
    for (const verb of ["show", "kill", "pause", "resume"]) accepts(ApiRequest, { verb, taskId: "7" });
    accepts(ApiRequest, { verb: "retry", taskId: "7", failedOnly: true });
    accepts(ApiRequest, { verb: "upload", size: 512 * 1024 * 1024 });
    accepts(ApiRequest, { verb: "download", taskId: "7", kinds: ["metrics", "log"] });
  });
  void it("refuses bad fields, naming them", () => {
    refuses(ApiRequest, { verb: "show", taskId: "t7" }, ["taskId"]);
    refuses(ApiRequest, { verb: "retry", taskId: "7" }, ["failedOnly"]);
    refuses(ApiRequest, { verb: "upload", size: 512 * 1024 * 1024 + 1 }, ["size"]);
    refuses(ApiRequest, { verb: "upload", size: 0 }, ["size"]);
    refuses(ApiRequest, { verb: "download", taskId: "7", kinds: [] }, ["kinds"]);
    refuses(ApiRequest, { verb: "submit", spec: { ...specInput(), maxPoints: 0 } }, ["spec", "maxPoints"]);
    refuses(ApiRequest, { verb: "destroy", taskId: "7" }, ["verb"]);
  });
});

void describe("messages: ApiReplies, ApiReply, TaskSummary, TaskEvent", () => {
  void it("TaskSummary accepts a summary with and without a best point", () => {
    accepts(TaskSummary, summary());
    accepts(TaskSummary, { ...summary(), best: null, state: "finished", finishedAt: 9 });
  });
  void it("TaskSummary refuses an unknown state and non-integer counts", () => {
    refuses(TaskSummary, { ...summary(), state: "done" }, ["state"]);
    refuses(TaskSummary, { ...summary(), counts: { ...(summary().counts as object), done: 0.5 } }, [
      "counts",
      "done",
    ]);
    refuses(TaskSummary, { ...summary(), best: { pointId: 0, values: {} } }, ["best", "loss"]);
  });
  void it("every verb has a reply schema, and each checks its payload", () => {
    const verbs = ApiRequest.options.map((o) => o.shape.verb.value);
    assert.deepEqual(Object.keys(ApiReplies).sort(), [...verbs].sort());
    accepts(ApiReplies.submit, { taskId: "3" });
    refuses(ApiReplies.submit, { taskId: "x3" }, ["taskId"]);
    accepts(ApiReplies.list, { tasks: [summary()] });
    refuses(ApiReplies.list, { tasks: [{ ...summary(), user: 3 }] }, ["tasks", 0, "user"]);
    accepts(ApiReplies.kill, summary());
    accepts(ApiReplies.retry, { task: summary(), requeued: 2 });
    refuses(ApiReplies.retry, { task: summary(), requeued: 1.5 }, ["requeued"]);
    accepts(ApiReplies.upload, { key: "k", url: "u" });
    accepts(ApiReplies.download, { items: [{ pointId: 1, attempt: 1, kind: "log", name: "n", url: "u" }] });
    refuses(ApiReplies.download, { items: [{ pointId: 1, attempt: 1, kind: "zip", name: "n", url: "u" }] }, [
      "items",
      0,
      "kind",
    ]);
  });
  void it("show replies with the detail: summary + spec + points + segments", () => {
    const detail = {
      ...summary(),
      spec: specInput(),
      points: [
        {
          pointId: 0,
          segment: null,
          values: { x: 1 },
          state: "done",
          loss: 0.5,
          attempts: 1,
          resource: null,
          reports: [],
          site: "a",
          agent: "b",
          error: null,
          metricsKeys: [],
          logKeys: [],
          checkpointKey: null,
        },
      ],
      segments: [{ name: null, points: 1, best: 0.5 }],
    };
    accepts(ApiReplies.show, detail);
    refuses(ApiReplies.show, { ...detail, points: [{ ...detail.points[0], state: "sleeping" }] }, [
      "points",
      0,
      "state",
    ]);
  });
  void it("ApiReply is ok+data or a wire error", () => {
    accepts(ApiReply, { ok: true, data: { anything: 1 } });
    accepts(ApiReply, { ok: false, error: { code: "NOT_FOUND", message: "no task 3", retryable: false } });
    assert.equal(ApiReply.safeParse({ ok: false, data: {} }).success, false);
    assert.equal(
      ApiReply.safeParse({ ok: false, error: { code: "NOPE", message: "", retryable: false } }).success,
      false,
    );
  });
  void it("TaskEvent accepts each kind and refuses unknown kinds", () => {
    for (const kind of ["point-added", "job-started", "progress", "point-done", "point-failed", "state"])
      accepts(TaskEvent, { taskId: "12", at: 1, kind, pointId: 1, loss: null, summary: summary() });
    refuses(
      TaskEvent,
      { taskId: "12", at: 1, kind: "exploded", pointId: 1, loss: null, summary: summary() },
      ["kind"],
    );
    refuses(TaskEvent, { taskId: "12", at: 1, kind: "state", pointId: 1.5, loss: null, summary: summary() }, [
      "pointId",
    ]);
  });
  void it("TaskEvents carries 1 to MAX_CHANGES_PER_MESSAGE changes with one summary", () => {
    const change = { at: 1, kind: "point-done", pointId: 3, loss: 0.5 };
    accepts(TaskEvents, { taskId: "12", changes: [change], summary: summary() });
    refuses(TaskEvents, { taskId: "12", changes: [], summary: summary() }, ["changes"]);
    refuses(
      TaskEvents,
      {
        taskId: "12",
        changes: Array.from({ length: MAX_CHANGES_PER_MESSAGE + 1 }, () => change),
        summary: summary(),
      },
      ["changes"],
    );
    refuses(TaskEvents, { taskId: "12", changes: [{ ...change, kind: "exploded" }], summary: summary() }, [
      "changes",
      0,
      "kind",
    ]);
  });
});

void describe("files: EvaluationOutput and ProgressLine", () => {
  void it("EvaluationOutput: status required and integer; loss finite or null or absent; message null or cut", () => {
    accepts(EvaluationOutput, { status: 0, loss: 0.12, message: "ok" });
    accepts(EvaluationOutput, { status: 1 });
    accepts(EvaluationOutput, { status: 0, loss: null });
    refuses(EvaluationOutput, { loss: 0.1 }, ["status"]);
    refuses(EvaluationOutput, { status: 0.5, loss: 0.1 }, ["status"]);
    refuses(EvaluationOutput, { status: 0, loss: Infinity }, ["loss"]);
    refuses(EvaluationOutput, { status: 0, loss: Number.NaN }, ["loss"]);
    refuses(EvaluationOutput, { status: 0, loss: "0.1" }, ["loss"]);
    refuses(EvaluationOutput, { status: 0, message: 3 }, ["message"]);
    // Python's json.dump of None: "no message", not a broken output
    const none = accepts(EvaluationOutput, { status: 0, loss: 0.1, message: null });
    assert.equal(none.message, undefined);
    assert.equal(none.loss, 0.1);
    // a whole traceback is kept up to the cap, not refused (the payload's reason would be lost)
    const long = accepts(EvaluationOutput, { status: 1, message: "y".repeat(20_000) });
    assert.equal(long.message, `${"y".repeat(MAX_OUTPUT_MESSAGE_CHARS)}…`);
    assert.equal(
      accepts(EvaluationOutput, { status: 0, message: "x".repeat(10_000) }).message,
      "x".repeat(10_000),
    );
  });
  void it("ProgressLine keeps extra keys and refuses non-finite or non-numeric known keys", () => {
    const p = accepts(ProgressLine, { epoch: 3, loss: 0.4, acc: 0.9, note: "x" });
    assert.deepEqual(p, { epoch: 3, loss: 0.4, acc: 0.9, note: "x" });
    refuses(ProgressLine, { epoch: "3" }, ["epoch"]);
    refuses(ProgressLine, { resource: Infinity }, ["resource"]);
    refuses(ProgressLine, { loss: Number.NaN }, ["loss"]);
    assert.equal(ProgressLine.safeParse([1, 2]).success, false);
    assert.equal(ProgressLine.safeParse(null).success, false);
  });
  void it("FAILED_POINT_LOSS is PanDA's very large loss", () => {
    assert.equal(FAILED_POINT_LOSS, 1e30);
  });
});

void describe("taskConfig: TaskSpec and parseTaskSpec", () => {
  void it("applies PanDA's defaults", () => {
    const s = parseTaskSpec(specInput());
    assert.equal(s.nParallelEvaluation, 1);
    assert.equal(s.maxPoints, 10);
    assert.equal(s.nPointsPerIteration, 2);
    assert.equal(s.minUnevaluatedPoints, 0);
    assert.equal(s.evaluationInput, "input.json");
    assert.equal(s.evaluationTrainingData, "input_ds.json");
    assert.equal(s.evaluationOutput, "output.json");
    assert.equal(s.checkPointInterval, 5);
    assert.equal(s.maxAttempts, 3);
    assert.equal(s.checkPointLimitMB, 100);
    assert.equal(s.maxPointsPerEvaluationJob, 1);
    assert.equal(s.official, false);
    assert.equal(s.resourceKey, "epochs");
    assert.deepEqual(s.resources, { memoryMB: 2048, cpus: 1, timeoutMinutes: 60, network: "none" });
    assert.equal(s.maxEvaluationJobs, undefined);
  });
  void it("keeps given values and parses the search space", () => {
    const s = parseTaskSpec(
      specInput({ maxPoints: 4, nParallelEvaluation: 3, evaluationOutput: "out.json" }),
    );
    assert.equal(s.maxPoints, 4);
    assert.equal(s.nParallelEvaluation, 3);
    assert.equal(s.evaluationOutput, "out.json");
    assert.deepEqual(Object.keys(s.searchSpace).sort(), Object.keys(SMALL_SPACE).sort());
  });
  void it("maxEvaluationJobs compiles to 2 × maxPoints by default, and an explicit value wins", () => {
    const jobs = (over: Partial<TaskSpecInput>) =>
      compileTask(parseTaskSpec(specInput(over))).maxEvaluationJobs;
    assert.equal(jobs({}), 20);
    assert.equal(jobs({ maxPoints: 7 }), 14);
    assert.equal(jobs({ maxPoints: 7, maxEvaluationJobs: 3 }), 3);
  });
  void it("refuses an unknown key, naming it", () => {
    throwsCode(() => parseTaskSpec({ ...specInput(), maxPiont: 3 }), "INVALID_CONFIG", "maxPiont");
    assert.equal(TaskSpec.safeParse({ ...specInput(), maxPiont: 3 }).success, false);
  });
  void it("refuses missing required fields, naming each", () => {
    const { outDS: _o, ...noOut } = specInput();
    throwsCode(() => parseTaskSpec(noOut), "INVALID_CONFIG", "outDS");
    const { evaluationExec: _e, ...noExec } = specInput();
    throwsCode(() => parseTaskSpec(noExec), "INVALID_CONFIG", "evaluationExec");
    const { searchSpace: _s, ...noSpace } = specInput();
    throwsCode(() => parseTaskSpec(noSpace), "INVALID_CONFIG", "searchSpace");
  });
  void it("refuses bad values, naming the field path", () => {
    throwsCode(() => parseTaskSpec(specInput({ maxPoints: 0 })), "INVALID_CONFIG", /^maxPoints: /m);
    throwsCode(
      () => parseTaskSpec(specInput({ nParallelEvaluation: 1.5 })),
      "INVALID_CONFIG",
      /^nParallelEvaluation: /m,
    );
    throwsCode(
      () => parseTaskSpec(specInput({ minUnevaluatedPoints: -1 })),
      "INVALID_CONFIG",
      /^minUnevaluatedPoints: /m,
    );
    throwsCode(() => parseTaskSpec(specInput({ maxAttempts: 21 })), "INVALID_CONFIG", /^maxAttempts: /m);
    throwsCode(
      () => parseTaskSpec(specInput({ evaluationExec: "" })),
      "INVALID_CONFIG",
      /^evaluationExec: /m,
    );
    throwsCode(
      () => parseTaskSpec(specInput({ resources: { memoryMB: 0 } })),
      "INVALID_CONFIG",
      /^resources\.memoryMB: /m,
    );
    throwsCode(
      () =>
        parseTaskSpec(
          specInput({ searchSpace: { x: { method: "uniform", dimension: { low: 0 } } } } as never),
        ),
      "INVALID_CONFIG",
      /^searchSpace\.x\.dimension\.high: /m,
    );
  });
  void it("refuses minUnevaluatedPoints >= nPointsPerIteration when a steeringExec is given", () => {
    const exec = "python opt.py --n=%NUM_POINTS";
    throwsCode(
      () => parseTaskSpec(specInput({ steeringExec: exec, nPointsPerIteration: 2, minUnevaluatedPoints: 2 })),
      "INVALID_CONFIG",
      "minUnevaluatedPoints (2)",
      "nPointsPerIteration (2)",
    );
    throwsCode(
      () => parseTaskSpec(specInput({ steeringExec: exec, nPointsPerIteration: 2, minUnevaluatedPoints: 5 })),
      "INVALID_CONFIG",
      "minUnevaluatedPoints (5)",
    );
    assert.equal(
      parseTaskSpec(specInput({ steeringExec: exec, nPointsPerIteration: 3, minUnevaluatedPoints: 2 }))
        .minUnevaluatedPoints,
      2,
    );
    // a steering program and a scheduler both want to choose the points: refused, naming both
    throwsCode(
      () => parseTaskSpec(specInput({ steeringExec: exec, scheduler: { type: "fifo", max_t: 10 } })),
      "INVALID_CONFIG",
      "steeringExec and scheduler cannot be combined",
    );
    // without a steering container, the built-in sampler takes any combination
    assert.equal(
      parseTaskSpec(specInput({ nPointsPerIteration: 2, minUnevaluatedPoints: 2 })).minUnevaluatedPoints,
      2,
    );
  });
  void it("checks segmentSearchSpaces against the segment count", () => {
    const segs = [{ name: "A", files: ["f1"] }, { name: "B" }];
    const ok = parseTaskSpec(
      specInput({
        segments: segs,
        trainingDS: "user.me.ds",
        segmentSearchSpaces: [SMALL_SPACE, SMALL_SPACE],
      }),
    );
    assert.equal(ok.segmentSearchSpaces?.length, 2);
    assert.deepEqual(ok.segments?.[1]?.files, [], "files default to []");
    throwsCode(
      () => parseTaskSpec(specInput({ segments: segs, segmentSearchSpaces: [SMALL_SPACE] })),
      "INVALID_CONFIG",
      "segmentSearchSpaces has 1 spaces but there are 2 segments",
    );
    throwsCode(
      () => parseTaskSpec(specInput({ segmentSearchSpaces: [SMALL_SPACE] })),
      "INVALID_CONFIG",
      "there are 0 segments",
    );
  });
  void it("segments: unknown keys, paths and dataset names are refused at submission, naming the field", () => {
    const withSeg = (seg: Record<string, unknown>) =>
      specInput({ trainingDS: "user.me.ds", segments: [seg as never] });
    throwsCode(() => parseTaskSpec(withSeg({ name: "A", file: ["f1"] })), "INVALID_CONFIG", "file");
    for (const bad of ["../f1", "/etc/passwd", "a/../../b"])
      throwsCode(() => parseTaskSpec(withSeg({ name: "A", files: [bad] })), "INVALID_CONFIG", "without '..'");
    for (const bad of ["../ds", "a/b", ""])
      throwsCode(
        () => parseTaskSpec(withSeg({ name: "A", datasets: [bad] })),
        "INVALID_CONFIG",
        "dataset name",
      );
    const ok = parseTaskSpec(withSeg({ name: "A", datasets: ["user.me.ds_A"], files: ["extra/f.txt"] }));
    assert.deepEqual(ok.segments?.[0]?.datasets, ["user.me.ds_A"]);
    throwsCode(
      () => parseTaskSpec(specInput({ segments: [{ name: "A", datasets: ["user.me.ds_A"] }] })),
      "INVALID_CONFIG",
      'segment "A" selects training files but trainingDS is not set; set --trainingDS',
    );
    // a segment that only names itself needs no training data
    assert.equal(parseTaskSpec(specInput({ segments: [{ name: "A" }] })).segments?.length, 1);
  });
  void it("names, paths and durations that could only fail later are refused at submission", () => {
    throwsCode(
      () => parseTaskSpec(specInput({ resources: { memMB: 8000 } as never })),
      "INVALID_CONFIG",
      "memMB",
    );
    for (const [field, value] of [
      ["evaluationOutput", "../out.json"],
      ["evaluationInput", "/tmp/in.json"],
      ["evaluationMeta", "../../m.json"],
      ["checkPointToLoad", "../ck.tgz"],
    ] as const)
      throwsCode(() => parseTaskSpec(specInput({ [field]: value })), "INVALID_CONFIG", field);
    throwsCode(
      () => parseTaskSpec(specInput({ checkPointToSave: ["ok", "../no"] })),
      "INVALID_CONFIG",
      "checkPointToSave",
    );
    assert.equal(
      parseTaskSpec(specInput({ evaluationMetrics: "out/metrics.tgz" })).evaluationMetrics,
      "out/metrics.tgz",
    );
    for (const bad of ["user.me/x", "user me", "../x", "/"])
      throwsCode(() => parseTaskSpec(specInput({ outDS: bad })), "INVALID_CONFIG", "outDS");
    assert.equal(parseTaskSpec(specInput({ outDS: "user.me.x/" })).outDS, "user.me.x/");
    throwsCode(() => parseTaskSpec(specInput({ trainingDS: "a/b" })), "INVALID_CONFIG", "trainingDS");
    // a timer past 2^31 − 1 ms fires at once in Node.js
    throwsCode(
      () => parseTaskSpec(specInput({ checkPointInterval: 100_000 })),
      "INVALID_CONFIG",
      "35791 minutes",
    );
    throwsCode(
      () => parseTaskSpec(specInput({ resources: { timeoutMinutes: 1e6 } })),
      "INVALID_CONFIG",
      "timeoutMinutes",
    );
    assert.equal(
      parseTaskSpec(specInput({ checkPointInterval: MAX_TIMER_MINUTES })).checkPointInterval,
      MAX_TIMER_MINUTES,
    );
  });
  void it("refuses duplicate and badly formed segment names", () => {
    throwsCode(
      () => parseTaskSpec(specInput({ segments: [{ name: "A" }, { name: "B" }, { name: "A" }] })),
      "INVALID_CONFIG",
      'segments: duplicate name "A"',
    );
    for (const bad of ["a b", "a.b", "-a", "", "x".repeat(65), "a/b", "a%b"]) {
      throwsCode(
        () => parseTaskSpec(specInput({ segments: [{ name: bad }] })),
        "INVALID_CONFIG",
        /^segments\.0\.name: segment names use letters/m,
      );
    }
    assert.ok(NAME_RE.test("x".repeat(64)));
  });
  void it("refuses unbalanced quotes in evaluationExec and steeringExec, naming the field", () => {
    const e = throwsCode(
      () => parseTaskSpec(specInput({ evaluationExec: 'python "train.py' })),
      "INVALID_ARGUMENT",
      "evaluationExec",
      "character 8",
    );
    assert.ok(e instanceof ValidationError);
    throwsCode(
      () => parseTaskSpec(specInput({ steeringExec: "opt 'x" })),
      "INVALID_ARGUMENT",
      "steeringExec:",
      "character 5",
    );
  });
});

void describe("errors", () => {
  void it("toWire/fromWire round-trip code, message and retryable", () => {
    for (const code of ErrorCode.options) {
      for (const retryable of [true, false]) {
        const w = new GridtuneError(code, `m ${code}`, { retryable }).toWire();
        assert.deepEqual(WireError.parse(w), { code, message: `m ${code}`, retryable });
        const back = GridtuneError.fromWire(w);
        assert.ok(back instanceof GridtuneError);
        assert.deepEqual(back.toWire(), w);
      }
    }
  });
  void it("retryable defaults: only UNAVAILABLE, TIMEOUT and STORAGE_FAILED", () => {
    const retryable = ErrorCode.options.filter((c) => new GridtuneError(c, "x").retryable);
    assert.deepEqual(retryable.sort(), ["STORAGE_FAILED", "TIMEOUT", "UNAVAILABLE"]);
    assert.equal(new GridtuneError("UNAVAILABLE", "x", { retryable: false }).retryable, false);
  });
  void it("subclasses: ValidationError is never retryable, UnavailableError always is", () => {
    const v = new ValidationError("STORAGE_FAILED", "bad");
    assert.equal(v.retryable, false);
    assert.equal(v.name, "ValidationError");
    assert.ok(v instanceof GridtuneError && v instanceof Error);
    const u = new UnavailableError("down", { cause: new Error("ECONNREFUSED") });
    assert.equal(u.code, "UNAVAILABLE");
    assert.equal(u.retryable, true);
    assert.equal((u.cause as Error).message, "ECONNREFUSED");
    assert.equal(new RuntimeError("IMAGE_MISSING", "x").name, "RuntimeError");
    assert.equal(new GridtuneError("INTERNAL", "x").cause, undefined);
  });
  void it("toWireError maps unknown errors to INTERNAL with their message", () => {
    assert.deepEqual(toWireError(new Error("boom")), { code: "INTERNAL", message: "boom", retryable: false });
    assert.deepEqual(toWireError("plain"), { code: "INTERNAL", message: "plain", retryable: false });
    assert.deepEqual(toWireError(new UnavailableError("nats down")), {
      code: "UNAVAILABLE",
      message: "nats down",
      retryable: true,
    });
  });
  void it("WireError refuses unknown codes and missing fields", () => {
    refuses(WireError, { code: "BAD", message: "", retryable: false }, ["code"]);
    refuses(WireError, { code: "INTERNAL", message: "" }, ["retryable"]);
  });
  void it("describeZodError names each field path, with an optional prefix, one line per issue", () => {
    const S = z.object({ a: z.object({ b: z.number() }), list: z.array(z.string()) });
    const r = S.safeParse({ a: { b: "x" }, list: ["ok", 3] });
    assert.equal(r.success, false);
    if (r.success) return;
    const lines = describeZodError(r.error).split("\n");
    assert.equal(lines.length, 2);
    assert.ok(
      lines.some((l) => l.startsWith("a.b: ")),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => l.startsWith("list.1: ")),
      lines.join("\n"),
    );
    const prefixed = describeZodError(r.error, "spec").split("\n");
    assert.ok(
      prefixed.some((l) => l.startsWith("spec.a.b: ")),
      prefixed.join("\n"),
    );
    const root = z.number().safeParse("x");
    assert.ok(!root.success && describeZodError(root.error).startsWith("(root): "));
    assert.ok(!root.success && describeZodError(root.error, "cfg").startsWith("cfg: "));
  });
});

void describe("subjects", () => {
  void it("builders and parsers agree", () => {
    assert.deepEqual(parseApiSubject(subjects.api("alice", "submit")), { user: "alice", verb: "submit" });
    assert.deepEqual(parseResultSubject(subjects.results("site-a", "agent-1", "t1-p2-j3")), {
      site: "site-a",
      agent: "agent-1",
      jobId: "t1-p2-j3",
    });
    assert.deepEqual(parseHeartbeatSubject(subjects.heartbeat("site-a", "agent-1")), {
      site: "site-a",
      agent: "agent-1",
    });
    assert.equal(subjects.jobs("s"), "gt.jobs.s");
    assert.equal(subjects.controlSite("s"), "gt.ctl.s.all");
    assert.equal(subjects.events("u", "3"), "gt.events.u.3");
    assert.equal(subjects.log("3"), "gt.log.3");
  });
  void it("parseApiSubject rejects malformed subjects", () => {
    for (const s of [
      "gt.api.alice",
      "gt.api.alice.submit.extra",
      "gt.hb.alice.submit",
      "xx.api.alice.submit",
      "gt.api..submit",
      "gt.api.alice.",
      "",
      "gt.api",
    ])
      assert.equal(parseApiSubject(s), null, s);
  });
  void it("parseResultSubject rejects malformed subjects", () => {
    for (const s of [
      "gt.results.a.b",
      "gt.results.a.b.c.d",
      "gt.result.a.b.c",
      "gt.results..b.c",
      "gt.results.a..c",
      "gt.results.a.b.",
      "nt.results.a.b.c",
    ])
      assert.equal(parseResultSubject(s), null, s);
  });
  void it("parseHeartbeatSubject rejects malformed subjects", () => {
    for (const s of ["gt.hb.a", "gt.hb.a.b.c", "gt.ctl.a.b", "gt.hb..b", "gt.hb.a.", "xx.hb.a.b"])
      assert.equal(parseHeartbeatSubject(s), null, s);
  });
});

void describe("names", () => {
  void it("jobIdOf builds ids that match JOB_ID_RE", () => {
    for (const [t, p, j] of [
      ["1", 0, 1],
      ["42", 17, 3],
      ["999999999999", 999_999_999, 9999],
    ] as const) {
      const id = jobIdOf(t, p, j);
      assert.match(id, JOB_ID_RE);
      assert.equal(id, `t${t}-p${p}-j${j}`);
    }
  });
  void it("JOB_ID_RE and TASK_ID_RE refuse malformed ids", () => {
    for (const bad of ["t1-p0", "t-p0-j1", "t1-p0-j", "t1-p0-j1\n", "xt1-p0-j1", "t1-p-1-j1"])
      assert.doesNotMatch(bad, JOB_ID_RE);
    assert.match("0", TASK_ID_RE);
    for (const bad of ["", "1a", "-1", "1.0", "1234567890123"]) assert.doesNotMatch(bad, TASK_ID_RE);
  });
  void it("NAME_RE accepts letters, digits, '_' and '-' only", () => {
    for (const ok of ["A", "seg_1", "seg-B", "9"]) assert.match(ok, NAME_RE);
    for (const bad of ["_a", "a.b", "a b", "a*", ">", ""]) assert.doesNotMatch(bad, NAME_RE);
  });
});
