// Property tests (fast-check) of the scheduler core: the order-statistics tree against a sorted
// array, and the scheduling invariants (promotion cutoffs, max_t, determinism under a seed).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseSchedulerConfig, type SchedulerConfigInput } from "../../protocol/scheduler.ts";
import { numpyQuantileOf } from "../../protocol/schedulerFormulas.ts";
import { createScheduler, type Scheduler } from "../../steering/scheduler/index.ts";
import { OrderStatTree } from "../../steering/scheduler/ostree.ts";
import { dominates } from "../../steering/scheduler/pareto.ts";

const make = (c: SchedulerConfigInput): Scheduler => createScheduler(parseSchedulerConfig(c));

describe("OrderStatTree", () => {
  it("agrees with a sorted array under inserts and removes", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("insert" as const), v: fc.integer({ min: -20, max: 20 }) }),
      fc.record({ kind: fc.constant("remove" as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const tree = new OrderStatTree();
        const model: { v: number; t: number }[] = [];
        let tie = 0;
        for (const o of ops) {
          if (o.kind === "insert") {
            const v = o.v === 0 ? 0 : o.v; // fast-check may draw -0; deepEqual tells it from 0
            tree.insert(v, tie);
            model.push({ v, t: tie++ });
          } else if (model.length > 0) {
            const [e] = model.splice(o.i % model.length, 1);
            assert.ok(e && tree.remove(e.v, e.t));
          }
        }
        model.sort((a, b) => a.v - b.v || a.t - b.t);
        assert.equal(tree.size, model.length);
        assert.deepEqual(
          tree.entries().map((e) => e.value),
          model.map((e) => e.v),
        );
        for (let k = 0; k < model.length; k++) assert.equal(tree.valueAt(k), model[k]?.v);
        for (const x of [-21, -3, 0, 5, 21]) {
          assert.equal(tree.countLess(x), model.filter((e) => e.v < x).length);
          assert.equal(tree.countLessOrEqual(x), model.filter((e) => e.v <= x).length);
        }
      }),
    );
  });
});

/** Drives a scheduler with `workers` free workers; each trial's curve is a function of its number. */
function drive(s: Scheduler, curve: (trial: number, r: number) => number, steps: number, maxT: number) {
  const log: string[] = [];
  const running = new Map<string, { r: number; target: number }>();
  const promotions: { trial: string; from: number; to: number }[] = [];
  let maxSeen = 0;
  for (let step = 0; step < steps && !s.isDone(); step++) {
    if (running.size < 4) {
      const g = s.suggest();
      log.push(JSON.stringify(g));
      if (g.action === "new") running.set(g.trial, { r: 0, target: g.milestone });
      if (g.action === "promote") {
        promotions.push(g);
        running.set(g.trial, { r: g.from, target: g.to });
      }
      if (g.action !== "wait") continue;
    }
    const next = [...running.entries()][step % Math.max(running.size, 1)];
    if (!next) break;
    const [trial, st] = next;
    st.r += 1;
    maxSeen = Math.max(maxSeen, st.r);
    const d = s.report(trial, st.r, curve(Number(trial.slice(1)), st.r));
    log.push(`${trial}@${st.r}:${d}`);
    if (d !== "continue") running.delete(trial);
    assert.ok(st.r <= maxT, `trial ${trial} went past max_t`);
  }
  return { log, promotions, maxSeen };
}

const curveOf = (seed: number) => (trial: number, r: number) => {
  const base = ((trial * 7919 + seed * 104729) % 1000) / 1000;
  return base + 1 / (r + 1) + (((trial * 31 + r * 17 + seed) % 13) - 6) / 200;
};

describe("scheduling invariants", () => {
  const configs: SchedulerConfigInput[] = [
    { type: "asha-promotion", max_t: 27, reduction_factor: 3, max_trials: 30 },
    { type: "asha-promotion", rule: "determined", max_t: 27, reduction_factor: 3, max_trials: 30 },
    { type: "hyperband", variant: "promotion", max_t: 27, reduction_factor: 3, max_trials: 30 },
    { type: "pasha", max_t: 27, reduction_factor: 3, max_trials: 30 },
    { type: "sha", max_t: 27, reduction_factor: 3, max_trials: 27 },
  ];
  it("a promoted trial was at least as good as its rung's cutoff at the time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), (seed) => {
        const s = make({ type: "asha-promotion", max_t: 27, reduction_factor: 3, max_trials: 30, seed });
        const values = new Map<number, Map<string, number>>();
        const curve = curveOf(seed);
        const running = new Map<string, { r: number; target: number }>();
        for (let step = 0; step < 400 && !s.isDone(); step++) {
          const g = running.size < 3 ? s.suggest() : ({ action: "wait" } as const);
          if (g.action === "promote") {
            // ST rule: the promoted value is ≤ the numpy quantile of the rung at level/next
            const rung = [...(values.get(g.from) ?? new Map<string, number>()).values()];
            const mine = values.get(g.from)?.get(g.trial) as number;
            assert.ok(mine <= numpyQuantileOf(rung, g.from / g.to) + 1e-12);
            running.set(g.trial, { r: g.from, target: g.to });
            continue;
          }
          if (g.action === "new") {
            running.set(g.trial, { r: 0, target: g.milestone });
            continue;
          }
          const first = running.entries().next().value;
          if (!first) break;
          const [trial, st] = first;
          st.r += 1;
          const v = curve(Number(trial.slice(1)), st.r);
          const d = s.report(trial, st.r, v);
          if (d === "pause") {
            const m = values.get(st.r) ?? new Map<string, number>();
            m.set(trial, v);
            values.set(st.r, m);
          }
          if (d !== "continue") running.delete(trial);
        }
      }),
      { numRuns: 40 },
    );
  });
  it("no trial trains past max_t, and the same seed gives the same decisions", () => {
    for (const config of configs) {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 10_000 }), (seed) => {
          const c = { ...config, seed } as SchedulerConfigInput;
          const a = drive(make(c), curveOf(seed), 600, 27);
          const b = drive(make(c), curveOf(seed), 600, 27);
          assert.deepEqual(a.log, b.log);
          assert.ok(a.maxSeen <= 27);
          for (const p of a.promotions) assert.ok(p.to <= 27 && p.from < p.to);
        }),
        { numRuns: 15 },
      );
    }
  });
  it("hyperband bracket draws are a function of the seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
        const draw = () => {
          const s = make({ type: "hyperband", max_t: 81, seed });
          return Array.from({ length: 50 }, () => JSON.stringify(s.suggest()));
        };
        assert.deepEqual(draw(), draw());
      }),
      { numRuns: 30 },
    );
  });
  it("stopping rules: every report at or past max_t stops", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("syne-tune", "determined", "ray", "optuna"),
        fc.array(
          fc.tuple(
            fc.nat({ max: 5 }),
            fc.integer({ min: 1, max: 40 }),
            fc.double({ min: 0, max: 1, noNaN: true }),
          ),
          { maxLength: 80 },
        ),
        (rule, reports) => {
          const s = make({ type: "asha-stopping", rule, max_t: 27, reduction_factor: 3 });
          for (const [t, r, v] of reports) {
            const d = s.report(`T${t}`, r, v);
            if (r >= 27) assert.equal(d, "stop");
          }
        },
      ),
    );
  });
  it("MOASHA: a newcomer that no recorded point dominates always continues", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 })), {
          minLength: 1,
          maxLength: 60,
        }),
        (pts) => {
          const s = make({ type: "moasha", metrics: ["a", "b"], max_t: 10, reduction_factor: 2 });
          const seen: number[][] = [];
          pts.forEach(([a, b], i) => {
            const d = s.report(`T${i}`, 1, { a, b });
            if (!seen.some((p) => dominates(p, [a, b])))
              assert.equal(d, "continue", `(${a},${b}) after ${JSON.stringify(seen)}`);
            seen.push([a, b]);
          });
        },
      ),
    );
  });
});
