// A quiet evaluation with a small output.json needs no S3 round trip (real nats-server, s3rver,
// steering and an agent process with the process runtime): output.json up to 4 KiB travels inside
// the result report and is logged in job-finished; an empty log is not uploaded. A larger
// output.json, and a log with content, still go through presigned URLs to the attempt's keys.
// An output.json that is a symlink to a host file is refused, never read (the agent reads outputs
// on the host, where the link would resolve).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import type { LogEventOf } from "../../steering/core/events.ts";
import { Storage } from "../../steering/shell/storage.ts";
import { readTaskLog } from "../../steering/shell/taskLog.ts";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { connectAsSteering, startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

function task(script: string): TaskSpecInput {
  return {
    outDS: "user.test.inline/",
    evaluationContainer: "none",
    evaluationExec: `sh -c '${script}'`,
    searchSpace: { x: { method: "categorical", dimension: { categories: [1] } } },
    maxPoints: 1,
    nParallelEvaluation: 1,
    nPointsPerIteration: 1,
  };
}

describe("quiet evaluations skip S3", { timeout: 120_000 }, () => {
  let stack: TestStack;
  let storage: Storage;
  let api: StackClient;
  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 1, runtime: "process" });
    storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
    api = await stack.connect();
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
  });

  async function finished(taskId: string): Promise<LogEventOf<"job-finished">> {
    const nc = await connectAsSteering(stack);
    try {
      const events = await readTaskLog(jetstream(nc), await jetstreamManager(nc), taskId);
      const ev = events.find((e): e is LogEventOf<"job-finished"> => e.type === "job-finished");
      assert.ok(ev, "a job-finished event is logged");
      return ev;
    } finally {
      await nc.close();
    }
  }

  it("a silent payload with a small output.json: output inline, no log, nothing in S3", async () => {
    const body = '{"status": 0, "loss": 0.25, "message": "quiet"}';
    const taskId = await api.submit(task(`echo '"'"'${body}'"'"' > output.json`));
    const d = await api.waitFinished(taskId, 60_000);
    assert.equal(d.points[0]?.state, "done");
    assert.equal(d.points[0]?.loss, 0.25);
    assert.deepEqual(d.points[0]?.logKeys, [], "an empty log is not uploaded");
    const ev = await finished(taskId);
    assert.equal(ev.output, body + "\n");
    assert.deepEqual(ev.artifacts, []);
    assert.deepEqual(await storage.list(`tasks/${taskId}/`), [], "no object under the task");
  });

  it("a payload that prints, with a large output.json: both are uploaded and checked", async () => {
    const pad = "x".repeat(5000);
    const taskId = await api.submit(
      task(`echo training; echo '"'"'{"status": 0, "loss": 0.5, "message": "${pad}"}'"'"' > output.json`),
    );
    const d = await api.waitFinished(taskId, 60_000);
    assert.equal(d.points[0]?.loss, 0.5);
    assert.equal(d.points[0]?.logKeys.length, 1, "the log with content is uploaded");
    const ev = await finished(taskId);
    assert.equal(ev.output, null, "over 4 KiB: not inline");
    assert.deepEqual(ev.artifacts.map((a) => a.kind).sort(), ["log", "output"]);
    const stored = (await storage.list(`tasks/${taskId}/`)).map((o) => o.key.split("/").pop());
    assert.deepEqual(stored.sort(), ["log.txt", "output.json"]);
  });

  it("an output.json that links to a host file fails the point and leaks nothing", async () => {
    const spec = { ...task("ln -s /etc/passwd output.json"), maxAttempts: 1 };
    const taskId = await api.submit(spec);
    const d = await api.waitFinished(taskId, 60_000);
    assert.equal(d.points[0]?.state, "failed");
    assert.match(d.points[0]?.error ?? "", /output\.json resolves outside the working directory/);
    const ev = await finished(taskId);
    assert.equal(ev.output, null);
    assert.deepEqual(ev.artifacts, []);
    assert.deepEqual(await storage.list(`tasks/${taskId}/`), []);
  });
});
