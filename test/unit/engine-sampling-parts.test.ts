// Iterations too large for one log message (NATS: 1 MiB) are logged as several points-added
// events: built-in sampling says how many points are still owed (`more`) and replay goes on from
// there; a steering program's answer is split into parts committed together.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogEventOf } from "../../steering/core/events.ts";
import { POINTS_EVENT_BYTES } from "../../steering/core/task/sampling.ts";
import { Driver, engineState, spec } from "./fixtures/engineKit.ts";

// 12 parameters with long names: a point is about 700 bytes of JSON
const WIDE = Object.fromEntries(
  Array.from({ length: 12 }, (_, i) => [
    `a_rather_long_hyperparameter_name_number_${i}`,
    { method: "uniform", dimension: { low: 0, high: 1 } },
  ]),
);

const bytes = (ev: LogEventOf<"points-added">) => JSON.stringify(ev.points).length;

void describe("large sampling iterations", () => {
  void it("are logged in parts under the message budget; replay and a restart mid-iteration go on with the rest", () => {
    const s = spec({ searchSpace: WIDE as never, maxPoints: 3000, nPointsPerIteration: 3000 });
    const d = new Driver(s);
    const parts = d.sampleAll();
    assert.ok(parts.length > 1, "more than one part");
    assert.equal(d.engine.points.size, 3000, "the whole iteration");
    for (const p of parts) assert.ok(bytes(p) <= POINTS_EVENT_BYTES + 4096, `${bytes(p)} bytes`);
    assert.deepEqual(
      parts.map((p) => p.more),
      parts.map((_, i) => 3000 - parts.slice(0, i + 1).reduce((n, q) => n + q.points.length, 0)),
    );
    assert.deepEqual(
      [...d.engine.points.keys()],
      Array.from({ length: 3000 }, (_, i) => i),
    );
    // a steering that crashed after the first part: its log replays, then the rest is owed at once
    // (even though far more than minUnevaluatedPoints are unevaluated) and comes out the same
    const restarted = new Driver(s);
    restarted.apply(parts[0]!);
    const rest = restarted.sampleAll();
    assert.deepEqual(engineState(restarted.engine), engineState(d.engine));
    assert.deepEqual(
      rest.map((p) => p.points),
      parts.slice(1).map((p) => p.points),
    );
  });

  void it("a steering program's large answer becomes parts committed together, none owed", () => {
    const s = spec({
      searchSpace: WIDE as never,
      steeringExec: "python3 opt.py %IN %OUT",
      maxPoints: 3000,
      nPointsPerIteration: 3000,
    });
    const d = new Driver(s);
    const [due] = d.engine.steeringDue();
    assert.ok(due && due.n === 3000);
    const answer = Array.from({ length: 3000 }, (_, i) =>
      Object.fromEntries(Object.keys(WIDE).map((k) => [k, (i % 97) / 97])),
    );
    const events = d.engine.steeringResult(0, 0, answer, false, d.tick());
    assert.ok(events.length > 1);
    for (const ev of events) {
      assert.equal(ev.more, 0);
      assert.ok(bytes(ev) <= POINTS_EVENT_BYTES + 4096);
      d.apply(ev);
    }
    assert.equal(d.engine.points.size, 3000);
    assert.deepEqual(
      events.flatMap((ev) => ev.points.map((p) => p.pointId)),
      Array.from({ length: 3000 }, (_, i) => i),
    );
    assert.deepEqual(d.engine.steeringDue(), [], "nothing owed: 3000 points wait");
  });
});
