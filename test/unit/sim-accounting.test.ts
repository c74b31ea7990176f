// The simulator's accounting, pinned by hand: a three-trial ASHA run on one worker, a promotion
// that pays only the epochs it adds, job start overhead, failure injection, and identical
// results for the same seed. The simulator drives steering's real TaskEngine and scheduler.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import type { Point } from "../../protocol/points.ts";
import type { SchedulerConfigInput } from "../../protocol/scheduler.ts";
import { parseSchedulerConfig } from "../../protocol/scheduler.ts";
import { timeAt, valueAt, type Curve, type CurveSource } from "../../steering/sim/curves.ts";
import { simSpec } from "../../steering/sim/methods.ts";
import { simulate } from "../../steering/sim/simulator.ts";
import { throwsCode } from "./fixtures/engineKit.ts";

const SPACE = { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as SearchSpace;

function curve(id: number, perEpoch: number, values: number[]): Curve {
  return {
    id,
    resources: Float64Array.from(values.map((_, i) => i + 1)),
    values: Float64Array.from(values),
    times: Float64Array.from(values.map((_, i) => perEpoch * (i + 1))),
  };
}

/** The n-th distinct point sampled trains along curves[n] (so a run can be computed by hand). */
function inOrder(curves: Curve[]): CurveSource {
  const seen = new Map<string, Curve>();
  return {
    name: "hand",
    curves,
    maxResource: 3,
    space: SPACE,
    curveOf(p: Point) {
      const key = JSON.stringify(p);
      let c = seen.get(key);
      if (!c) {
        c = curves[seen.size];
        if (!c) throw new Error("more points than curves");
        seen.set(key, c);
      }
      return c;
    },
  };
}

// A: 10 s per epoch, B: 20 s, C: 30 s; the objective is minimised.
const A = curve(0, 10, [0.5, 0.4, 0.3]);
const B = curve(1, 20, [0.4, 0.3, 0.2]);
const C = curve(2, 30, [0.6, 0.55, 0.5]);
const ASHA: SchedulerConfigInput = { type: "asha-promotion", max_t: 3, grace_period: 1, reduction_factor: 3 };

function run(scheduler: SchedulerConfigInput, opts: { workers?: number; overhead?: number } = {}) {
  const workers = opts.workers ?? 1;
  return simulate({
    spec: simSpec(SPACE, parseSchedulerConfig(scheduler), workers, 3),
    source: inOrder([A, B, C]),
    workers,
    seed: 1,
    overhead: opts.overhead,
  });
}

describe("simulator accounting", () => {
  it("curves: time is interpolated between recorded levels, values step", () => {
    assert.equal(timeAt(B, 0), 0);
    assert.equal(timeAt(B, 1.5), 30);
    assert.equal(valueAt(B, 2.9), 0.3);
  });

  it("a three-trial ASHA run on one worker, computed by hand", () => {
    // T0 (A) to rung 1: 10 s, paused (alone in the rung). T1 (B) to rung 1: 20 s (t = 30); the
    // rung holds 0.4 and 0.5, the 1/3 quantile is 0.433, so T1 is promoted 1 → 3 and pays
    // time(3) − time(1) = 60 − 20 = 40 s (t = 70), its full-fidelity value 0.2. T2 (C) to rung
    // 1: 30 s (t = 100), 0.6 is not promotable, nor is T0's 0.5: the task ends.
    const r = run(ASHA);
    assert.equal(r.trials, 3);
    assert.equal(r.jobs, 4);
    assert.equal(r.compute, 100);
    assert.equal(r.wall, 100);
    assert.equal(r.utilisation, 1);
    assert.equal(r.best, 0.2);
    assert.deepEqual(r.trace, [{ wall: 70, compute: 70, best: 0.2 }]);
    assert.deepEqual(r.incumbent, { curve: 1, level: 3, full: 0.2 });
  });

  it("a promoted trial pays only the epochs it adds, not a retraining from zero", () => {
    // Without resuming, T1's promotion would cost 60 s and the run 120 s.
    const r = run(ASHA);
    assert.notEqual(r.compute, 120);
    const fifo = run({ type: "fifo", max_t: 3 });
    // FIFO trains all three to the end: 30 + 60 + 90 s
    assert.equal(fifo.compute, 180);
    assert.equal(fifo.best, 0.2);
  });

  it("start overhead is charged once per job (a promotion is a job)", () => {
    const r = run(ASHA, { overhead: 5 });
    assert.equal(r.jobs, 4);
    assert.equal(r.compute, 100 + 4 * 5);
  });

  it("two workers: wall time shrinks, worker-seconds count every worker", () => {
    const r = run({ type: "fifo", max_t: 3 }, { workers: 2 });
    // A (30 s) and B (60 s) start at 0; C starts at 30 when A ends and runs 90 s → wall 120
    assert.equal(r.compute, 180);
    assert.equal(r.wall, 120);
    assert.equal(r.utilisation, 180 / (2 * 120));
  });

  it("stops once the target is reached, counting the running jobs' partial work", () => {
    const r = simulate({
      spec: simSpec(SPACE, parseSchedulerConfig({ type: "fifo", max_t: 3 }), 2, 3),
      source: inOrder([A, B, C]),
      workers: 2,
      seed: 1,
      target: 0.3,
    });
    // A reaches 0.3 at t = 30; B has run 30 s by then
    assert.deepEqual(r.reached, { wall: 30, compute: 60 });
    assert.equal(r.compute, 60);
  });
});

describe("simulator limits", () => {
  it("a max_t past the curves' last level is refused, not charged as free training", () => {
    throwsCode(() => run({ ...ASHA, max_t: 9 }), "INVALID_CONFIG", "scheduler.max_t: 9", "max_t ≤ 3");
  });
});

describe("simulator determinism and failures", () => {
  const many = Array.from({ length: 40 }, (_, i) =>
    curve(i, 1 + (i % 7), [1 + i / 40, 0.8 + (i % 5) / 10, 0.5 + (i % 9) / 20]),
  );
  const source = (): CurveSource => ({ ...inOrder(many), curves: many });
  const go = (seed: number, failureRate = 0) =>
    simulate({
      spec: simSpec(SPACE, parseSchedulerConfig({ ...ASHA, type: "hyperband" }), 3, 30),
      source: source(),
      workers: 3,
      seed,
      failureRate,
    });

  it("the same seed gives identical results", () => {
    assert.deepEqual(go(7, 0.2), go(7, 0.2));
  });

  it("failure injection: failed attempts are retried by the engine and charged", () => {
    const r = go(7, 0.3);
    assert.ok(r.failures > 0, "some attempts failed");
    assert.ok(r.jobs > go(7, 0).jobs, "retries are extra attempts");
  });
});
