// The task spec is parsed with the submit request, checked across fields and compiled once, at
// submission, into the engine's shape (durations in ms, sizes in
// bytes, exec strings as argv tokens) and logged that way; a task-created event of an older
// steering, which logged the spec alone, is compiled as it is read and replays the same task.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Job } from "../../protocol/messages.ts";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";
import { eventsOf, LogEvent, type LogEventOf } from "../../steering/core/events.ts";
import { foldTask } from "../../steering/core/state.ts";
import { compileTask } from "../../steering/core/task/compiledTask.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { apiKit, call } from "./fixtures/apiKit.ts";
import { specInput } from "./fixtures/engineKit.ts";

/** A task-created event exactly as a steering before the compiled shape wrote it to GTLOG. */
const OLD_TASK_CREATED = {
  type: "task-created",
  taskId: "7",
  at: 1_700_000_000_000,
  user: "alice",
  spec: {
    outDS: "user.alice.hpo/",
    nParallelEvaluation: 1,
    maxPoints: 3,
    nPointsPerIteration: 2,
    minUnevaluatedPoints: 0,
    maxPointsPerEvaluationJob: 1,
    evaluationContainer: "busybox:1.36",
    evaluationExec: "python train.py --tag '%SEGMENT_NAME x'",
    evaluationInput: "input.json",
    evaluationTrainingData: "input_ds.json",
    evaluationOutput: "output.json",
    checkPointToSave: ["ckpt"],
    checkPointInterval: 5,
    searchSpace: { lr: { method: "uniform", dimension: { low: 0.001, high: 0.1 } } },
    official: false,
    maxAttempts: 3,
    resourceKey: "epochs",
    resources: { memoryMB: 512, cpus: 1.5, timeoutMinutes: 2, network: "none" },
    checkPointLimitMB: 100,
  },
  seed: 11,
};

/** The next events of that old log: two points sampled, the first dispatched. */
const OLD_REST = [
  {
    type: "points-added",
    taskId: "7",
    at: 1_700_000_000_100,
    segment: 0,
    points: [
      { pointId: 0, values: { lr: 0.01 } },
      { pointId: 1, values: { lr: 0.02 } },
    ],
    sampler: null,
    exhausted: false,
  },
  { type: "job-dispatched", taskId: "7", at: 1_700_000_000_200, jobId: "t7-p0-j1", attempt: 1, site: "s" },
];

function read(raw: unknown): LogEvent {
  const [r] = eventsOf(raw);
  assert.ok(r?.ok, `readable: ${r && !r.ok ? r.issue : "no event"}`);
  return r.event;
}

void describe("the compiled task", () => {
  void it("holds the engine's shape: ms, bytes, argv tokens, maxEvaluationJobs", () => {
    const t = compileTask(parseTaskSpec(OLD_TASK_CREATED.spec));
    assert.deepEqual(t.evaluation.argv, ["python", "train.py", "--tag", "%SEGMENT_NAME x"]);
    assert.equal(t.evaluation.checkPointIntervalMs, 5 * 60_000);
    assert.equal(t.evaluation.checkPointLimitBytes, 100 * 1024 * 1024);
    assert.equal(t.evaluation.timeoutMs, 2 * 60_000);
    assert.equal(t.evaluation.memoryBytes, 512 * 1024 * 1024);
    assert.equal(t.evaluation.nanoCpus, 1_500_000_000);
    assert.deepEqual([t.evaluation.metaFile, t.evaluation.checkPointToLoad], [null, null]);
    assert.equal(t.steeringArgv, null);
    assert.equal(t.maxEvaluationJobs, 6, "PanDA's default: 2 × maxPoints");
    assert.deepEqual(Job.shape.evaluation.parse(t.evaluation), t.evaluation, "what a Job carries");
  });

  void it("is logged in that shape and read back unchanged", () => {
    const task = compileTask(parseTaskSpec(specInput({ steeringExec: "python opt.py --in %IN" })));
    const ev: LogEventOf<"task-created"> = {
      type: "task-created",
      taskId: "1",
      at: 5,
      user: "u",
      task,
      seed: 3,
    };
    const back = read(JSON.parse(JSON.stringify(ev)));
    assert.deepEqual(back, ev);
    assert.ok(!("spec" in back), "the spec travels inside the task only");
    assert.deepEqual(task.steeringArgv, ["python", "opt.py", "--in", "%IN"]);
  });
});

void describe("an old task-created (the spec alone)", () => {
  void it("is compiled as it is read, once, into the same task a new steering logs", () => {
    const ev = read(structuredClone(OLD_TASK_CREATED));
    assert.equal(ev.type, "task-created");
    if (ev.type !== "task-created") return;
    assert.deepEqual(ev.task, compileTask(parseTaskSpec(OLD_TASK_CREATED.spec)));
    assert.deepEqual(Object.keys(ev).sort(), ["at", "seed", "task", "taskId", "type", "user"]);
  });

  void it("replays: the engine folds the old log and builds the job it would have built", () => {
    const events = [OLD_TASK_CREATED, ...OLD_REST].map((raw) => read(structuredClone(raw)));
    const e = foldTask("7", events);
    assert.ok(e, "the old log folds into a task");
    assert.equal(e.spec.outDS, "user.alice.hpo/");
    assert.equal(e.points.size, 2);
    const job = Job.parse(buildJob(e, "t7-p0-j1"));
    assert.deepEqual(
      job.evaluation.argv,
      ["python", "train.py", "--tag", "%SEGMENT_NAME x"],
      "an unsegmented task has no %SEGMENT_NAME value: the token is sent as written",
    );
    assert.equal(job.evaluation.memoryBytes, 512 * 1024 * 1024);
    assert.deepEqual(job.point, { lr: 0.01 });
  });

  void it("without a spec or a task it is refused, naming the field", () => {
    const { spec: _spec, ...neither } = structuredClone(OLD_TASK_CREATED);
    const [r] = eventsOf(neither);
    assert.ok(r && !r.ok);
    assert.match(r.issue, /task-created event needs its task/);
  });
});

void describe("submission through steering's API", () => {
  void it("refuses a spec the schema passes but a check across fields does not, and logs nothing", async () => {
    const kit = apiKit();
    const spec = specInput({ steeringExec: "python opt.py", scheduler: { type: "fifo", max_t: 3 } });
    const r = await call(kit, "alice", { verb: "submit", spec });
    assert.ok(!r.ok, "refused");
    assert.equal(r.error.code, "INVALID_CONFIG");
    assert.match(r.error.message, /steeringExec and scheduler cannot be combined/);
    assert.equal(kit.log.stored.length, 0);
  });

  void it("logs the task compiled: what the engine and every job use", async () => {
    const kit = apiKit();
    const r = await call(kit, "alice", {
      verb: "submit",
      spec: specInput({ evaluationExec: "python t.py 'a b'" }),
    });
    assert.ok(r.ok, r.ok ? "" : r.error.message);
    const [created] = kit.log.stored;
    assert.equal(created?.type, "task-created");
    if (created?.type !== "task-created") return;
    assert.deepEqual(created.task.evaluation.argv, ["python", "t.py", "a b"]);
    assert.equal(created.task.evaluation.timeoutMs, 60 * 60_000, "the default hour, in ms");
  });
});
