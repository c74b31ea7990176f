// Steering survives its own crash and a nats-server restart: every state change is in the
// JetStream event log before it is acted on, so a restarted service rebuilds the same state and
// goes on. The end state equals an undisturbed run of the same seed, and no point is evaluated
// more often than its attempts allow.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startNatsServer } from "../../steering/security/natsServer.ts";
import { startTestStack, outcomeOf, seededStepsTask, type TestStack } from "../harness/stack.ts";

/** Polls `done` (a service's log file grows while it runs) until it holds or the deadline passes. */
async function waitFor(done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const task = seededStepsTask;
const outcome = outcomeOf;

describe("durability", { timeout: 300_000 }, () => {
  let reference: ReturnType<typeof outcome>;

  describe("undisturbed reference run", () => {
    let stack: TestStack;
    before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 2 })));
    after(() => stack?.cleanup());
    it("completes", async () => {
      const api = await stack.connect();
      const d = await api.waitFinished(await api.submit(task()), 90_000);
      assert.equal(d.counts.done, 6);
      reference = outcome(d);
    });
  });

  describe("steering killed with SIGKILL mid-task", () => {
    let stack: TestStack;
    before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 2, mode: "process" })));
    after(() => stack?.cleanup());
    it("restarts, rebuilds its state from the log and ends with the reference results", async () => {
      const api = await stack.connect();
      const taskId = await api.submit(task());
      await api.waitFor(taskId, (d) => d.counts.done >= 2 && d.counts.running > 0, 60_000);
      const steering = stack.steering;
      assert.ok(!("start" in steering));
      await steering.kill();
      await new Promise((r) => setTimeout(r, 1500)); // results keep arriving in RESULTS meanwhile
      stack.steering = await stack.startSteering();
      const d = await api.waitFinished(taskId, 90_000);
      assert.deepEqual(outcome(d), reference);
      for (const p of d.points) assert.equal(p.attempts, 1, `point ${p.pointId} ran ${p.attempts} times`);
    });
  });

  describe("steering killed with SIGKILL after a checkpoint", () => {
    let stack: TestStack;
    before(
      async () =>
        // a checkpoint every 8 stored events: several are written before the kill
        (stack = await startTestStack({
          agents: 1,
          slotsPerAgent: 2,
          mode: "process",
          env: { GRIDTUNE_SNAPSHOT_EVERY: "8" },
        })),
    );
    after(() => stack?.cleanup());
    it("restarts from the task's snapshot and the log after it, with the reference results", async () => {
      const api = await stack.connect();
      const taskId = await api.submit(task());
      await api.waitFor(taskId, (d) => d.counts.done >= 2 && d.counts.running > 0, 60_000);
      const logFile = join(stack.dir, "logs", "steering.log");
      const lines = async (re: RegExp) =>
        (await readFile(logFile, "utf8")).split("\n").filter((l) => re.test(l));
      // twice: the second start-up begins from a checkpoint the first restarted process wrote,
      // which must hold the events that process folded in from the log after its own checkpoint
      for (let round = 1; round <= 2; round++) {
        const written = (await lines(/checkpoint written/)).length;
        await waitFor(async () => (await lines(/checkpoint written/)).length > written, 30_000);
        const steering = stack.steering;
        assert.ok(!("start" in steering));
        await steering.kill();
        stack.steering = await stack.startSteering();
        const last = (await lines(/state rebuilt/)).at(-1) ?? "";
        assert.match(last, /fromSnapshots=1 /, last);
        assert.match(last, /readInFull=0 /, last);
        assert.ok(Number(/fromCheckpoint=(\d+)/.exec(last)?.[1]) > 0, last);
        if (round === 1) await api.waitFor(taskId, (d) => d.counts.done >= 4, 60_000);
      }
      const d = await api.waitFinished(taskId, 90_000);
      assert.deepEqual(outcome(d), reference);
      for (const p of d.points) assert.equal(p.attempts, 1, `point ${p.pointId} ran ${p.attempts} times`);
    });
  });

  describe("nats-server restarted mid-task", () => {
    let stack: TestStack;
    before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 2, mode: "process" })));
    after(() => stack?.cleanup());
    it("loses no result and ends with the reference results, even when down longer than a lease", async () => {
      const api = await stack.connect();
      const taskId = await api.submit(task());
      await api.waitFor(taskId, (d) => d.counts.done >= 2 && d.counts.running > 0, 60_000);
      const port = stack.nats.port;
      await stack.nats.stop();
      // Longer than the stack's lease (4 s): no heartbeat can arrive meanwhile, and the attempts
      // running now must neither be stopped nor counted lost when the server is back.
      await new Promise((r) => setTimeout(r, 6000));
      // Same port, same JetStream store: a restart, as an operator or a crash-looping unit would do.
      stack.nats = await startNatsServer({ dir: stack.dir, store: stack.store, port });
      const d = await api.waitFinished(taskId, 120_000);
      assert.deepEqual(outcome(d), reference);
      for (const p of d.points) assert.equal(p.attempts, 1, `point ${p.pointId} ran ${p.attempts} times`);
    });
  });
});
