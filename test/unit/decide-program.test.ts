// What a steering-program iteration's end becomes (core/decide/program.ts), on literal times: an
// answer is recorded with its points; a failure is recorded with the time it runs again, or, when
// no retry can mend it (or it was the last attempt), ends generation for the segment; an answer
// that came after the segment moved on adds nothing and says so; a task that ended meanwhile gets
// nothing logged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../steering/core/decider.ts";
import type { ProgramResultCommand } from "../../steering/core/decide/program.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { AGENT_RULES, testWorld } from "./fixtures/agentKit.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const rules = { ...AGENT_RULES, retry: { baseMs: 1000, maxMs: 3000, jitter: 0 } };

function setup(state?: "killed") {
  const d = new Driver(spec({ steeringExec: "opt %IN %OUT", maxPoints: 4, nPointsPerIteration: 2 }), "1");
  if (state) d.state(state);
  const tasks = new SteeringState();
  for (const ev of d.log) tasks.apply(ev);
  const due = tasks.engines.get("1")!.steeringDue()[0];
  return { w: testWorld({ tasks, rules }), due };
}

function result(over: Partial<ProgramResultCommand> = {}): ProgramResultCommand {
  return {
    type: "program-result",
    taskId: "1",
    segment: 0,
    generated: 0,
    failures: 0,
    startedAt: 9_000,
    endedAt: 10_000,
    points: [
      { x: 0.5, n: 3 },
      { x: 0.25, n: 7 },
    ],
    exitCode: 0,
    error: null,
    reason: null,
    key: "tasks/1/steering/s0-g0-f0.log.txt",
    logKey: "tasks/1/steering/s0-g0-f0.log.txt",
    ...over,
  };
}

const types = (events: readonly LogEvent[]) => events.map((e) => e.type);

void describe("a steering iteration's end", () => {
  void it("an answer is recorded with its points", () => {
    const { w, due } = setup();
    assert.equal(due?.generated, 0);
    const d = decide(w, result(), 10_500);
    assert.deepEqual(types(d.events), ["steering-iteration", "points-added"]);
    const rec = d.events[0]!;
    assert.ok(rec.type === "steering-iteration");
    assert.deepEqual(
      [rec.at, rec.outcome, rec.added, rec.retryAt, rec.reason],
      [10_000, "points", 2, null, null],
    );
    assert.deepEqual(d.reply, { dropped: false, added: 2, exhausted: false, retryAt: null });
  });

  void it("a failure runs again after its back-off; a refused configuration ends the segment's generation", () => {
    const { w } = setup();
    const failed = {
      points: [],
      exitCode: 1,
      error: { code: "EVALUATION_FAILED", message: "exit 1" },
      reason: "exit 1",
    };
    const again = decide(w, result(failed), 10_500);
    assert.deepEqual(types(again.events), ["steering-iteration"], "no points, nothing ended");
    assert.equal(again.reply.retryAt, 11_000);
    const refused = decide(
      w,
      result({ ...failed, error: { code: "INVALID_CONFIG", message: "bad" } }),
      10_500,
    );
    assert.equal(refused.reply.retryAt, null);
    assert.deepEqual(types(refused.events), ["steering-iteration", "points-added"]);
    const last = refused.events.at(-1)!;
    assert.ok(last.type === "points-added" && last.exhausted && last.points.length === 0);
    // the last attempt in a row ends it too
    assert.equal(decide(w, result({ ...failed, failures: 2 }), 10_500).reply.retryAt, null);
  });

  void it("an answer after the segment moved on adds nothing and says so", () => {
    const { w } = setup();
    const d = decide(w, result({ generated: 5 }), 10_500);
    assert.deepEqual(types(d.events), ["steering-iteration"]);
    const rec = d.events[0]!;
    assert.ok(rec.type === "steering-iteration");
    assert.match(rec.reason ?? "", /came after the segment had moved on/);
  });

  void it("a task that ended meanwhile gets nothing logged", () => {
    const { w } = setup("killed");
    const d = decide(w, result(), 10_500);
    assert.deepEqual(d.events, []);
    assert.equal(d.reply.dropped, true);
  });
});
