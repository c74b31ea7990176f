// The lease tick as a pure decision (core/decide/leases.ts), on a literal clock: no sleeps, no
// NATS. A running attempt lapses leaseMs after its last renewal (or the lease baseline), a
// dispatched one after dispatchTimeoutMs, or after leaseMs once its site has no agent; a paused
// lease clock or a task waiting for its rebuild judges nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { decide } from "../../steering/core/decider.ts";
import type { LogEventOf } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { World } from "../../steering/core/world.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const rules = {
  leaseMs: 30_000,
  heartbeatMs: 5_000,
  dispatchTimeoutMs: 300_000,
  retry: { baseMs: 0, maxMs: 0, jitter: 0 },
};

/** Task "1": one attempt running on s/a (claimed at `claimedAt`), one dispatched to s (at `dispatchedAt`). */
function world(over: Partial<World> = {}) {
  const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 }), "1");
  d.sampleAll();
  const running = d.dispatch("s")!;
  d.claim(running, "s", "a");
  const dispatched = d.dispatch("s")!;
  const tasks = new SteeringState();
  for (const ev of d.log) tasks.apply(ev);
  const agents = new AgentRegistry(rules.leaseMs);
  agents.register({ site: "s", agent: "a", slots: 2, gpus: [], runtime: "docker" }, 1_000);
  const w: World = {
    tasks,
    agents,
    diverged: new Set(),
    rules,
    leases: { baseline: 0, paused: false },
    ...over,
  };
  const e = tasks.engines.get("1")!;
  const claimedAt = e.job(running.jobId)!.claimedAt!;
  const dispatchedAt = e.job(dispatched.jobId)!.dispatchedAt!;
  return { w, running, dispatched, agents, claimedAt, dispatchedAt };
}

const lost = (events: readonly { type: string }[]) =>
  events.filter((e): e is LogEventOf<"job-lost"> => e.type === "job-lost").map((e) => e.jobId);

describe("the lease tick", () => {
  it("keeps both leases until the lease ends, then loses the silent running attempt only", () => {
    const { w, running, claimedAt } = world();
    w.agents.heartbeat("s", "a", 0, false, claimedAt);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, claimedAt + 30_000).events), []);
    const d = decide(w, { type: "lease-tick" }, claimedAt + 30_001);
    assert.deepEqual(lost(d.events), [running.jobId]);
    // logged first, then forgotten, then a pump
    assert.deepEqual(
      d.effects.map((e) => e.type),
      ["log", "forget-lease", "kick"],
    );
  });

  it("a renewal moves the running attempt's lease", () => {
    const { w, running } = world();
    w.agents.renew(running.jobId, running.attempt, 20_000);
    w.agents.heartbeat("s", "a", 0, false, 49_000);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, 50_000).events), []);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, 50_001).events), [running.jobId]);
  });

  it("a dispatched attempt lapses after dispatchTimeoutMs, or after leaseMs once its site has no agent", () => {
    const { w, running, dispatched, dispatchedAt } = world();
    w.agents.renew(running.jobId, running.attempt, 1_000_000);
    w.agents.heartbeat("s", "a", 0, false, 300_000);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, dispatchedAt + 300_000).events), []);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, dispatchedAt + 300_001).events), [
      dispatched.jobId,
    ]);
    w.agents.remove("s", "a");
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, dispatchedAt + 30_000).events), []);
    assert.deepEqual(lost(decide(w, { type: "lease-tick" }, dispatchedAt + 30_001).events), [
      dispatched.jobId,
    ]);
  });

  it("judges nothing from before the baseline, while the clock is paused, or for a diverged task", () => {
    const late = 1_000_000;
    assert.deepEqual(
      lost(
        world({ leases: { baseline: late, paused: false } }).w &&
          decide(
            world({ leases: { baseline: late, paused: false } }).w,
            { type: "lease-tick" },
            late + 29_000,
          ).events,
      ),
      [],
    );
    const paused = decide(world({ leases: { baseline: 0, paused: true } }).w, { type: "lease-tick" }, late);
    assert.deepEqual(paused.events, []);
    assert.deepEqual(paused.effects, [{ type: "kick" }]);
    assert.deepEqual(
      lost(decide(world({ diverged: new Set(["1"]) }).w, { type: "lease-tick" }, late).events),
      [],
    );
    // the same worlds without the guard do lose both attempts
    assert.equal(lost(decide(world().w, { type: "lease-tick" }, late).events).length, 2);
  });
});
