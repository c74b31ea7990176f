// SIGTERM drain on real servers: an agent process sent SIGTERM mid-job stops the payload, saves a
// final checkpoint, hands the job back as "preempted" (an attempt, not a failure) and exits within
// its grace; another agent resumes the job from that checkpoint.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

describe("an agent drained with SIGTERM mid-job", { timeout: 180_000 }, () => {
  let stack: TestStack;
  before(
    async () =>
      (stack = await startTestStack({ agents: 2, slotsPerAgent: 1, leaseMs: 3000, heartbeatMs: 500 })),
  );
  after(() => stack?.cleanup());

  it("checkpoints, hands the job back as preempted, exits, and another agent resumes without loss", async () => {
    const api = await stack.connect();
    // 40 steps of 0.15 s. The periodic checkpoint interval (1 minute) is longer than the run, so the
    // only checkpoint the retry can resume from is the one the drain saves. maxAttempts 1: were the
    // hand-back counted as a failure, the point would fail instead of being retried.
    const taskId = await api.submit(
      stepsTask(
        {
          maxPoints: 1,
          nParallelEvaluation: 1,
          checkPointToSave: ["checkpoint"],
          checkPointInterval: 1,
          maxAttempts: 1,
        },
        { steps: 40, delay: 0.15 },
      ),
    );
    const mid = await api.waitFor(taskId, (d) => (d.points[0]?.reports.length ?? 0) >= 8, 60_000);
    assert.equal(mid.points[0]!.checkpointKey, null, "no periodic checkpoint yet");
    const victimName = mid.points[0]!.agent!;
    const victim = stack.agents.find((a) => a.name === `agent ${victimName}`)!;
    const t0 = Date.now();
    const code = await victim.stop(60_000); // SIGTERM; SIGKILL only after 60 s
    const drainMs = Date.now() - t0;
    assert.equal(code, 0, "the drained agent exits cleanly");
    // Its grace is the payload's stop grace (10 s) + 20 s; a payload that obeys SIGTERM takes far less.
    assert.ok(drainMs < 15_000, `the drain took ${drainMs} ms`);

    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.attempts, 2, "the hand-back is an attempt");
    assert.equal(p.error, null, "and not a failure");
    assert.notEqual(p.agent, victimName, "the retry ran on the other agent");
    const x = p.values.x as number;
    assert.ok(Math.abs((p.loss as number) - ((x - 3) ** 2 + 1 / 40)) < 1e-9);

    // Attempt 2 resumed from the drain's checkpoint: its log says where, at or after the last step
    // seen before the drain, and the progress reports run 1..40 with no step lost (at most the
    // step in flight when SIGTERM came is reported twice).
    const logs = (await api.call("download", { taskId, kinds: ["log"] })).items;
    const second = logs.find((i) => i.attempt === 2);
    assert.ok(second, `no log of attempt 2: ${JSON.stringify(logs.map((i) => i.attempt))}`);
    const text = await (await fetch(second.url)).text();
    const resumedFrom = Number(/resuming at step (\d+)/.exec(text)?.[1] ?? 0);
    const seenBeforeDrain = mid.points[0]!.reports.at(-1)!.resource;
    assert.ok(
      resumedFrom >= seenBeforeDrain,
      `attempt 2 resumed from step ${resumedFrom}, but step ${seenBeforeDrain} had been reported: ${text.slice(0, 200)}`,
    );
    const resources = p.reports.map((r) => r.resource);
    assert.deepEqual(
      [...new Set(resources)],
      Array.from({ length: 40 }, (_, i) => i + 1),
      `reports: ${resources.join(",")}`,
    );
    assert.ok(resources.length <= 41, `more than one step redone: ${resources.join(",")}`);

    // The harness pipes the agent's output to its log file; the pipe may still be flushing.
    const logFile = join(stack.dir, "logs", `agent-${victimName}.log`);
    let log = "";
    for (let i = 0; i < 50 && !/agent stopped/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = await readFile(logFile, "utf8");
    }
    assert.match(log, /draining/);
    assert.match(log, /final checkpoint saved/);
    assert.match(log, /agent stopped/);
  });
});
