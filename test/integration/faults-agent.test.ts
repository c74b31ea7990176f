// Faults on the evaluation side, on real servers: an agent killed with SIGKILL mid-job (its lease
// lapses, another agent resumes the job from the last checkpoint, one result is counted), a forged
// or late result from an attempt that is not current (ignored), and payloads that misbehave
// (each a failed attempt with a clear reason, retried, while the agent keeps serving).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { agentIdentity } from "../../protocol/identity.ts";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import type { AgentReport } from "../../protocol/messages.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { subjects } from "../../protocol/subjects.ts";
import { SteeringService } from "../../steering/shell/service.ts";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

describe("an agent killed mid-job", { timeout: 180_000 }, () => {
  let stack: TestStack;
  before(
    async () =>
      (stack = await startTestStack({ agents: 2, slotsPerAgent: 1, leaseMs: 3000, heartbeatMs: 500 })),
  );
  after(() => stack?.cleanup());

  it("loses at most one checkpoint interval and finishes on another agent with one counted result", async () => {
    const api = await stack.connect();
    // 40 steps of 0.15 s, checkpoints every 0.6 s (checkPointInterval is in minutes).
    const taskId = await api.submit(
      stepsTask(
        { maxPoints: 1, nParallelEvaluation: 1, checkPointToSave: ["checkpoint"], checkPointInterval: 0.01 },
        { steps: 40, delay: 0.15 },
      ),
    );
    const mid = await api.waitFor(
      taskId,
      (d) => (d.points[0]?.reports.length ?? 0) >= 12 && d.points[0]?.checkpointKey !== null,
      60_000,
    );
    const victim = mid.points[0]!.agent!;
    const killedAt = mid.points[0]!.reports.at(-1)!.resource;
    await stack.agents.find((a) => a.name === `agent ${victim}`)!.kill();

    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done");
    assert.equal(p.attempts, 2);
    assert.notEqual(p.agent, victim, "the retry ran on the other agent");
    assert.equal(d.counts.done, 1);
    const x = p.values.x as number;
    assert.ok(Math.abs((p.loss as number) - ((x - 3) ** 2 + 1 / 40)) < 1e-9);
    // The retry resumed from the checkpoint: its first step follows the checkpointed one, within
    // one checkpoint interval (0.6 s = 4 steps) of where the first attempt was killed.
    // (The attempt of each report says where the retry starts; a resume right after the killed
    // step reports no level twice.)
    const resumedAt = p.reports.find((r) => r.attempt === 2)?.resource ?? null;
    const trace = p.reports.map((r) => `${r.resource}@a${r.attempt}`).join(",");
    assert.ok(resumedAt !== null && resumedAt > 1, `attempt 2 restarted from scratch: ${trace}`);
    assert.ok(
      killedAt - (resumedAt - 1) <= 5,
      `lost ${killedAt - (resumedAt - 1)} steps (killed at ${killedAt}, resumed at ${resumedAt})`,
    );
  });
});

describe("results from attempts that are not current", { timeout: 120_000 }, () => {
  let stack: TestStack;
  before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 1 })));
  after(() => stack?.cleanup());

  it("are logged and ignored, and never counted", async () => {
    const api = await stack.connect();
    const taskId = await api.submit(
      stepsTask({ maxPoints: 1, nParallelEvaluation: 1 }, { steps: 30, delay: 0.1 }),
    );
    const running = await api.waitFor(taskId, (d) => d.points[0]?.state === "running", 30_000);
    const jobId = `t${taskId}-p0-j1`;
    const steering = stack.steering as SteeringService;
    const before = steering.ingest!.ignored;
    // A second agent of the same site forges a result for a job leased to a1, and for an attempt
    // that does not exist; a1's own identity cannot be used by anyone else.
    const created = await stack.store.ensure(agentIdentity(stack.site, "intruder"));
    await stack.nats.reload();
    const nc = await connectNats({
      servers: stack.nats.url,
      seedFile: created.seedFile,
      caFile: stack.nats.caFile,
      identity: agentIdentity(stack.site, "intruder"),
      logger: () => undefined,
    });
    const js = jetstream(nc);
    const forged = (attempt: number): AgentReport => ({
      type: "result",
      jobId,
      attempt,
      status: "ok",
      loss: -1,
      metrics: { loss: -1 },
      resource: null,
      error: null,
      artifacts: [],
      missing: [],
      output: null,
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      failureClass: null,
    });
    await js.publish(subjects.results(stack.site, "intruder", jobId), JSON.stringify(forged(1)));
    await js.publish(subjects.results(stack.site, "intruder", jobId), JSON.stringify(forged(7)));
    await nc.close();
    const d = await api.waitFinished(taskId, 60_000);
    assert.equal(running.points[0]?.agent, "a1");
    assert.equal(d.points[0]?.state, "done");
    assert.ok((d.points[0]?.loss as number) > 0, "the forged loss -1 was not counted");
    assert.equal(steering.ingest!.ignored - before, 2);
  });
});

describe("payloads that misbehave", { timeout: 240_000 }, () => {
  let stack: TestStack;
  before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 3 })));
  after(() => stack?.cleanup());

  const cases: Array<[string, RegExp]> = [
    ["exit3", /exited with code 3/],
    ["no_output", /wrote no output\.json/],
    ["bad_json", /not valid JSON/],
    ["nan", /not valid JSON/],
    ["status1", /status 1: diverged/],
    ["huge", /output\.json is \d+ bytes; the limit is/],
  ];
  for (const [mode, reason] of cases) {
    it(`${mode}: three failed attempts with the reason, then PanDA's very large loss`, async () => {
      const api = await stack.connect();
      const taskId = await api.submit(
        stepsTask({ maxPoints: 1, maxEvaluationJobs: 3 }, { mode, steps: 1, delay: 0 }),
      );
      const d = await api.waitFinished(taskId, 60_000);
      const p = d.points[0]!;
      assert.equal(p.state, "failed");
      assert.equal(p.attempts, 3);
      assert.equal(p.loss, FAILED_POINT_LOSS);
      assert.match(p.error ?? "", reason);
      assert.equal(d.state, "finished");
    });
  }

  it("keeps serving: a good task runs after all of the above", async () => {
    const api = await stack.connect();
    const d = await api.waitFinished(
      await api.submit(stepsTask({ maxPoints: 3, nParallelEvaluation: 3 }, { steps: 2, delay: 0 })),
      60_000,
    );
    assert.equal(d.counts.done, 3);
  });
});
