// The dispatch rules as pure decisions (core/decide/dispatch.ts), on literal times: a retry waits
// out its back-off and names the end of it (wake-at), a job goes to the site with the most room
// among those that accept the task's user, preferring one where it has not failed, a task with
// nothing left ends, sampling happens once per pump, a scheduler is asked only with a free slot.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import type { DispatchView } from "../../steering/core/decide/dispatch.ts";
import { decide } from "../../steering/core/decider.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { World } from "../../steering/core/world.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { LADDER, schedSpec } from "./fixtures/schedulerSim.ts";

const rules = {
  leaseMs: 30_000,
  heartbeatMs: 5_000,
  dispatchTimeoutMs: 300_000,
  retry: { baseMs: 400, maxMs: 400, jitter: 0 },
};

/** The world of the driver's task (its log folded into a fresh state). */
function worldOf(d: Driver, diverged: ReadonlySet<string> = new Set()): World {
  const tasks = new SteeringState();
  for (const ev of d.log) tasks.apply(ev);
  return {
    tasks,
    agents: new AgentRegistry(rules.leaseMs),
    diverged,
    rules,
    leases: { baseline: 0, paused: false },
  };
}

function view(
  capacity: Record<string, number>,
  accepts: (site: string, user: string) => boolean = () => true,
  outstanding: Record<string, number> = {},
): DispatchView {
  return {
    capacity: new Map(Object.entries(capacity)),
    outstanding: new Map(Object.entries(outstanding)),
    accepts,
  };
}

/** Task "42": its one point failed on s1/a at 10_000; attempt 2 waits out its back-off (400 ms). */
function failedOnce() {
  const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }));
  d.sampleAll();
  const ref = d.dispatch("s1")!;
  d.claim(ref, "s1", "a");
  d.apply({ ...d.finishEvent(ref, "failed", null, "s1", "a"), at: 10_000 });
  return { d, ref, w: worldOf(d) };
}

const dispatched = (events: readonly LogEvent[]) =>
  events.flatMap((e) => (e.type === "job-dispatched" ? [`${e.jobId}.${e.attempt}@${e.site}`] : []));

void describe("dispatch: retry back-off", () => {
  void it("holds the retry until its back-off ends and names that time as the wake-up", () => {
    const { ref, w } = failedOnce();
    const early = decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 4, s2: 4 }) }, 10_399);
    assert.deepEqual(early.events, []);
    assert.deepEqual(early.effects, [{ type: "wake-at", at: 10_400 }]);
    assert.equal(early.reply.site, null);
    const due = decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 4, s2: 4 }) }, 10_400);
    assert.deepEqual(dispatched(due.events), [`${ref.jobId}.2@s2`]);
    assert.equal(due.events[0]!.at, 10_400);
    // the Job goes out only once the event is durable: the effect, not the decision, publishes it
    assert.deepEqual(due.effects, [{ type: "publish-job", taskId: "42", jobId: ref.jobId, attempt: 2 }]);
    assert.equal(due.reply.site, "s2");
  });
});

void describe("dispatch: site choice", () => {
  void it("prefers a site where the job has not failed, even with less room", () => {
    const { w } = failedOnce();
    const d = decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 8, s2: 1 }) }, 20_000);
    assert.equal(d.reply.site, "s2");
  });

  void it("takes the failed site when no other has room", () => {
    const { w } = failedOnce();
    const full = view({ s1: 8, s2: 1 }, () => true, { s2: 1 });
    assert.equal(decide(w, { type: "dispatch-job", taskId: "42", view: full }, 20_000).reply.site, "s1");
  });

  void it("never picks a site whose policy refuses the task's user", () => {
    const { w } = failedOnce();
    const onlyS1 = view({ s1: 1, s2: 8 }, (site, user) => site === "s1" && user === "alice");
    assert.equal(decide(w, { type: "dispatch-job", taskId: "42", view: onlyS1 }, 20_000).reply.site, "s1");
    const none = decide(
      w,
      { type: "dispatch-job", taskId: "42", view: view({ s1: 8 }, () => false) },
      20_000,
    );
    assert.deepEqual(none.events, [], "room but no site accepts alice: nothing dispatched");
    assert.equal(none.reply.site, null);
  });

  void it("honours the task's own site list", () => {
    const d = new Driver(spec({ maxPoints: 1, site: ["s3"] }));
    d.sampleAll();
    const w = worldOf(d);
    assert.equal(
      decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 9, s3: 1 }) }, 5_000).reply.site,
      "s3",
    );
    assert.equal(
      decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 9 }) }, 5_000).reply.site,
      null,
    );
  });
});

void describe("dispatch: the task's end", () => {
  void it("a task with every job done and no sampling left is finished, once", () => {
    const d = new Driver(spec({ maxPoints: 2 }));
    d.runToCompletion();
    const w = worldOf(d);
    const end = decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 4 }) }, 50_000);
    assert.deepEqual(end.events, [{ type: "task-state", taskId: "42", at: 50_000, state: "finished" }]);
    for (const ev of end.events) w.tasks.apply(ev);
    const after = decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 4 }) }, 50_001);
    assert.deepEqual(after.events, [], "a finished task decides nothing more");
  });

  void it("a task with a job in flight is not finished", () => {
    const d = new Driver(spec({ maxPoints: 1 }));
    d.sampleAll();
    d.dispatch("s1");
    const end = decide(worldOf(d), { type: "dispatch-job", taskId: "42", view: view({ s1: 4 }) }, 50_000);
    assert.deepEqual(end.events, []);
  });

  void it("a task waiting for its rebuild is left alone", () => {
    const d = new Driver(spec({ maxPoints: 2 }));
    d.runToCompletion();
    const w = worldOf(d, new Set(["42"]));
    assert.deepEqual(decide(w, { type: "dispatch-job", taskId: "42", view: view({ s1: 4 }) }, 1).events, []);
  });
});

void describe("dispatch: proposals", () => {
  void it("samples a PanDA iteration once per pump; its jobs are dispatched by the next command", () => {
    const d = new Driver(spec({ maxPoints: 4, nPointsPerIteration: 2, nParallelEvaluation: 2 }));
    const w = worldOf(d);
    const v = view({ s1: 4 });
    const p = decide(w, { type: "dispatch-propose", taskId: "42", view: v, sampled: false }, 7_000);
    assert.deepEqual(
      p.events.map((e) => [e.type, e.at]),
      [["points-added", 7_000]],
    );
    assert.deepEqual(p.reply, { moved: true, sampled: true });
    assert.deepEqual(
      decide(w, { type: "dispatch-propose", taskId: "42", view: v, sampled: true }, 7_000).events,
      [],
      "sampled already in this pump",
    );
    // the points exist only once the event is folded in: dispatch-job is decided after that
    assert.equal(decide(w, { type: "dispatch-job", taskId: "42", view: v }, 7_000).reply.site, null);
    for (const ev of p.events) w.tasks.apply(ev);
    assert.equal(decide(w, { type: "dispatch-job", taskId: "42", view: v }, 7_000).reply.site, "s1");
  });

  void it("asks the scheduler only when a site has room, then dispatches the suggested trial", () => {
    const d = new Driver(schedSpec({ type: "asha-stopping", ...LADDER }, { maxPoints: 6 }));
    const w = worldOf(d);
    const noRoom = decide(
      w,
      {
        type: "dispatch-propose",
        taskId: "42",
        view: view({ s1: 2 }, () => true, { s1: 2 }),
        sampled: false,
      },
      8_000,
    );
    assert.deepEqual(noRoom.events, [], "no free slot: the scheduler is not asked");
    const v = view({ s1: 2 });
    const p = decide(w, { type: "dispatch-propose", taskId: "42", view: v, sampled: false }, 8_000);
    assert.deepEqual(
      p.events.map((e) => e.type),
      ["trial-suggested"],
    );
    assert.deepEqual(p.reply, { moved: true, sampled: false });
    for (const ev of p.events) w.tasks.apply(ev);
    const j = decide(w, { type: "dispatch-job", taskId: "42", view: v }, 8_001);
    assert.deepEqual(dispatched(j.events), ["t42-p0-j1.1@s1"]);
  });
});

void describe("dispatch: steering-program iterations", () => {
  void it("starts a due iteration, or holds a failed one until its retryAt and wakes then", () => {
    const d = new Driver(spec({ steeringExec: "opt %IN %OUT", maxPoints: 4, nPointsPerIteration: 2 }));
    const propose = (w: World, now: number) =>
      decide(w, { type: "dispatch-propose", taskId: "42", view: view({ s1: 4 }), sampled: false }, now);
    const first = propose(worldOf(d), 5_000);
    assert.deepEqual(first.events, [], "built-in sampling is off: the program proposes the points");
    assert.deepEqual(first.effects, [{ type: "start-program-iteration", taskId: "42", segment: 0 }]);
    d.apply({
      type: "steering-iteration",
      taskId: "42",
      at: 10_000,
      segment: 0,
      startedAt: 9_990,
      outcome: "failed",
      added: 0,
      exitCode: 1,
      reason: "exited with code 1",
      retryAt: 11_000,
      logKey: "tasks/42/steering/s0-g0-f0.log.txt",
    });
    const w = worldOf(d);
    assert.deepEqual(propose(w, 10_999).effects, [{ type: "wake-at", at: 11_000 }]);
    assert.deepEqual(propose(w, 11_000).effects, [
      { type: "start-program-iteration", taskId: "42", segment: 0 },
    ]);
  });
});
