// Spec asha-family.md §9.3–9.7 (MOASHA, Ray, Optuna, sockeye-recipes3, numerics) as unit tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  parseSchedulerConfig,
  type MoashaPriority,
  type SchedulerConfigInput,
} from "../../protocol/scheduler.ts";
import {
  crc32,
  optunaBracketBudgets,
  optunaBracketCount,
  optunaBracketOf,
  rayMilestones,
  sockeyeMaxRung,
  sockeyeRungTotal,
} from "../../protocol/schedulerFormulas.ts";
import { createScheduler, SockeyeScheduler, type Scheduler } from "../../steering/scheduler/index.ts";
import {
  fixedObjective,
  linearScalarization,
  nondominatedFronts,
  sockeyePareto,
} from "../../steering/scheduler/pareto.ts";

const make = (c: SchedulerConfigInput): Scheduler => createScheduler(parseSchedulerConfig(c));
const letter = (d: string) => (d === "continue" ? "C" : d === "stop" ? "S" : "PAUSE");

describe("TV-MO-1..3 MOASHA", () => {
  it("TV-MO-1: _Bracket(1,10,2,0) single metric", () => {
    const s = make({ type: "moasha", metrics: ["m"], max_t: 10, reduction_factor: 2 });
    assert.deepEqual(
      s.rungs().map((r) => r.level),
      [1, 2, 4, 8],
    );
    assert.deepEqual(
      [2, 0, 3].map((m, i) => letter(s.report(`T${i}`, 1, { m }))),
      ["C", "C", "S"],
    );
  });
  const priorities: MoashaPriority[] = [
    { type: "fixed", dim: 0 },
    { type: "linear" },
    { type: "linear", weights: [1, 2] },
    { type: "nondominated" },
  ];
  for (const priority of priorities) {
    it(`TV-MO-2 ${JSON.stringify(priority)}: max 2,4,1 → C,C,S; min 4,2,10 → C,C,S`, () => {
      for (const [mode, values] of [
        ["max", [2, 4, 1]],
        ["min", [4, 2, 10]],
      ] as const) {
        const s = make({
          type: "moasha",
          metrics: ["mean_loss", "cost"],
          mode,
          priority,
          max_t: 10,
          reduction_factor: 2,
        });
        const got = values.map((v, i) => letter(s.report(`T${i}`, 1, { mean_loss: v, cost: v })));
        assert.deepEqual(got, ["C", "C", "S"]);
      }
    });
  }
  it("TV-MO-2 linear with per-metric modes", () => {
    const s = make({
      type: "moasha",
      metrics: ["a", "b"],
      mode: ["max", "max"],
      priority: { type: "linear" },
      max_t: 10,
      reduction_factor: 2,
    });
    assert.deepEqual(
      [2, 4, 1].map((v, i) => letter(s.report(`T${i}`, 1, { a: v, b: v }))),
      ["C", "C", "S"],
    );
  });
  it("TV-MO-3 priorities on arange(15).reshape(5,3)", () => {
    const objs = [0, 1, 2, 3, 4].map((r) => [3 * r, 3 * r + 1, 3 * r + 2]);
    assert.deepEqual(linearScalarization(objs), [1, 4, 7, 10, 13]);
    linearScalarization(objs, [0.2, 0.4, 0.8]).forEach((v, i) =>
      assert.ok(Math.abs(v - ([0.6667, 2.0667, 3.4667, 4.8667, 6.2667][i] as number)) < 1e-4),
    );
    assert.deepEqual(fixedObjective(objs, 1), [1, 4, 7, 10, 13]);
    assert.deepEqual(nondominatedFronts(objs), [0, 1, 2, 3, 4]);
  });
  it("§3.7 fix: a Pareto-optimal newcomer is never stopped", () => {
    // (3,7) joins a front of four; its rank is the count of strictly better fronts (0), not a list index
    const s = make({ type: "moasha", metrics: ["a", "b"], max_t: 10, reduction_factor: 2 });
    const pts = [
      [1, 9],
      [9, 1],
      [5, 5],
      [6, 6],
      [7, 7],
      [8, 8],
      [3, 7],
    ];
    const got = pts.map(([a, b], i) => letter(s.report(`T${i}`, 1, { a: a as number, b: b as number })));
    assert.equal(got[6], "C");
    assert.equal(got[5], "S"); // (8,8) is dominated by (5,5), (6,6), (7,7)
  });
});

describe("TV-RAY-1 milestones", () => {
  it("int(log(max_t/min_t)/log(rf) - s + 1) rungs", () => {
    assert.deepEqual(rayMilestones(81, 1, 3, 0), [1, 3, 9, 27, 81]);
    assert.deepEqual(rayMilestones(100, 1, 4, 0), [1, 4, 16, 64]);
    assert.deepEqual(rayMilestones(10, 1, 2, 0), [1, 2, 4, 8]);
    assert.deepEqual(rayMilestones(100, 1, 3, 1), [3, 9, 27, 81]);
    assert.deepEqual(rayMilestones(1000, 10, 10, 2), [1000]);
    assert.deepEqual(rayMilestones(10, 1, 4, 0), [1, 4]);
    // V8 gives log(243)/log(3) = 5, one more rung (243) than numpy; harmless since t ≥ max_t stops first
    assert.deepEqual(rayMilestones(243, 1, 3, 0), [1, 3, 9, 27, 81, 243]);
  });
});

describe("TV-RAY-2 AsyncHyperBandSuite", () => {
  const ray = (o: Partial<SchedulerConfigInput & { type: "asha-stopping" }>) =>
    make({ type: "asha-stopping", rule: "ray", mode: "max", metric: "m", ...o, max_t: o.max_t ?? 10 });
  const setup = (s: Scheduler, t1: (i: number) => number, t2: (i: number) => number) => {
    for (let i = 0; i < 10; i++) assert.equal(s.report("t1", i, t1(i)), "continue");
    for (let i = 0; i < 5; i++) assert.equal(s.report("t2", i, t2(i)), "continue");
    assert.equal(s.report("t1", 10, 1000), "stop");
    assert.equal(s.report("t2", 10, 1000), "stop");
  };
  it("rf 2: t3 (1,260) and (2,260) stop (cutoffs 275, 325)", () => {
    const s = ray({ reduction_factor: 2 });
    setup(
      s,
      (i) => i * 100,
      () => 450,
    );
    assert.equal(s.report("t3", 1, 260), "stop");
    assert.equal(s.report("t3", 2, 260), "stop");
  });
  it("NaN values are ignored by the percentile (cutoff 450)", () => {
    const s = ray({ reduction_factor: 2 });
    setup(
      s,
      () => NaN,
      () => 450,
    );
    assert.equal(s.report("t3", 1, 260), "stop");
    assert.equal(s.report("t3", 2, 260), "stop");
  });
  it("grace 2.5, rf 3: milestones 2.5, 7.5, …; t3 stops at 3", () => {
    const s = ray({ reduction_factor: 3, grace_period: 2.5, max_t: 100 });
    for (let i = 0; i < 10; i++) s.report("t1", i, i * 100);
    for (let i = 0; i < 5; i++) s.report("t2", i, 450);
    assert.deepEqual(
      ["C", "C", "S"],
      [1, 2, 3].map((t) => letter(s.report("t3", t, 10))),
    );
  });
  it("defaults: t ≥ max_t stops; ten brackets stop a bad result", () => {
    const s = ray({ reduction_factor: 4 });
    assert.equal(s.report("t3", 10, 1000), "stop");
    assert.equal(s.report("t2", 101, 0), "stop");
    const b = ray({ reduction_factor: 4, brackets: 10 });
    for (let i = 0; i < 5; i++) assert.equal(b.report(`x${i}`, 10, -2), "stop");
  });
  it("save/restore sequence (decisions only): 5 × (1,10) go on, then 5, 4, 2 stop", () => {
    const s = ray({ reduction_factor: 2 });
    for (let i = 0; i < 5; i++) assert.notEqual(s.report(`a${i}`, 1, 10), "stop");
    assert.equal(s.report("b", 1, 5), "stop");
    assert.equal(s.report("c", 1, 4), "stop");
    assert.equal(s.report("d", 1, 2), "stop");
  });
  it("stop_last_trials=false", () => {
    const s = ray({ reduction_factor: 2, max_t: 3, stop_last_trials: false });
    assert.deepEqual(
      [10, 8, 6, 4].map((v, i) => letter(s.report(`T${i}`, 2, v))),
      ["C", "S", "S", "S"],
    );
    assert.equal(s.report("T0", 4, 10), "continue");
    assert.equal(s.report("T0", 8, 10), "continue");
    assert.equal(s.report("T0", 14, 1), "continue");
  });
});

describe("TV-RAY-4 back-fill", () => {
  it("lower rungs are filled by later reports", () => {
    const s = make({ type: "asha-stopping", rule: "ray", mode: "max", reduction_factor: 3, max_t: 100 });
    assert.equal(s.report("a", 1, 5), "continue");
    assert.equal(s.report("b", 10, 7), "continue");
    const at = (level: number) => s.rungs().find((r) => r.level === level)?.values;
    assert.deepEqual(at(9), [7]);
    assert.deepEqual(at(3), []);
    assert.equal(s.report("b", 11, 6), "continue");
    assert.deepEqual(at(3), [6]);
    assert.equal(s.report("b", 12, 6), "continue");
    assert.deepEqual(at(1), [6, 5]);
  });
});

describe("TV-OPT-1..7 SuccessiveHalvingPruner", () => {
  const opt = (o: Partial<SchedulerConfigInput & { type: "asha-stopping" }>) =>
    make({ type: "asha-stopping", rule: "optuna", max_t: 1000, ...o });
  const P = (d: string) => (d === "stop" ? "P" : "C");
  it("TV-OPT-1 (rf 3)", () => {
    const s = opt({ reduction_factor: 3 });
    const seq: [string, number, number, string][] = [
      ["A", 1, 0.5, "C"],
      ["B", 1, 0.4, "C"],
      ["C", 1, 0.6, "P"],
      ["D", 1, 0.45, "P"],
      ["E", 1, 0.45, "P"],
      ["A", 3, 0.3, "C"],
      ["B", 3, 0.38, "P"],
      ["F", 1, 0.1, "C"],
      ["F", 3, 0.39, "P"],
      ["G", 0, 0.9, "C"],
    ];
    for (const [t, r, v, want] of seq) assert.equal(P(s.report(t, r, v)), want, `${t}@${r}`);
  });
  it("TV-OPT-2 (rf 2, mesr 1 → first rung at 2)", () => {
    const s = opt({ reduction_factor: 2, grace_period: 2 });
    assert.deepEqual(
      [0, 1].map((t) => P(s.report("A", t, 0.5))),
      ["C", "C"],
    );
    assert.equal(P(s.report("A", 2, 0.45)), "C");
    assert.equal(P(s.report("A", 4, 0.3)), "C");
    assert.equal(P(s.report("B", 4, 0.35)), "P");
    assert.deepEqual(
      s
        .rungs()
        .slice(0, 2)
        .map((r) => r.values.includes(0.35)),
      [true, true],
    );
    assert.equal(P(s.report("C", 4, 0.25)), "C");
    assert.equal(P(s.report("D", 4, 0.31)), "P");
  });
  it("TV-OPT-3 (rf 2, maximize)", () => {
    const s = opt({ reduction_factor: 2, mode: "max" });
    assert.deepEqual(
      [0.5, 0.6, 0.4, 0.55].map((v, i) => P(s.report(`T${i}`, 1, v))),
      ["C", "C", "P", "C"],
    );
  });
  it("TV-OPT-4 (bootstrap_count 2)", () => {
    const s = opt({ reduction_factor: 2, bootstrap_count: 2 });
    assert.deepEqual(
      [0.5, 0.4, 0.3].map((v, i) => P(s.report(`T${i}`, 1, v))),
      ["P", "P", "C"],
    );
  });
  it("TV-OPT-6 NaN", () => {
    const s = opt({ reduction_factor: 2, grace_period: 2 });
    assert.equal(P(s.report("A", 1, NaN)), "C");
    assert.equal(P(s.report("A", 2, NaN)), "P");
  });
  it("TV-OPT-7 rungs reached by one report at step 7", () => {
    const s = opt({ reduction_factor: 2 });
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7].forEach((v, i) => s.report(`T${i}`, 7, v));
    const rungsWith = (v: number) =>
      s
        .rungs()
        .filter((r) => r.values.includes(v))
        .map((r) => r.level);
    s.report("X", 7, 0.75);
    assert.deepEqual(rungsWith(0.75), [1]);
    s.report("Y", 7, 0.25);
    assert.deepEqual(rungsWith(0.25), [1, 2]);
    s.report("Z", 7, 0.05);
    assert.deepEqual(rungsWith(0.05), [1, 2, 4]);
  });
});

describe("TV-OPT-8 HyperbandPruner brackets", () => {
  it("n_brackets and budgets", () => {
    const hb = (a: number, b: number, rf: number) => {
      const n = optunaBracketCount(a, b, rf);
      return [n, optunaBracketBudgets(n, rf)];
    };
    assert.deepEqual(hb(1, 16, 2), [5, [16, 10, 7, 5, 5]]);
    assert.deepEqual(hb(1, 81, 3), [5, [81, 34, 15, 8, 5]]);
    assert.deepEqual(hb(1, 100, 3), [5, [81, 34, 15, 8, 5]]);
    assert.deepEqual(hb(1, 10, 3), [3, [9, 5, 3]]);
    assert.deepEqual(hb(2, 100, 4), [3, [16, 6, 3]]);
  });
  it("crc32 bracket ids", () => {
    const crcs = [
      3116587573, 3468978851, 1473067801, 550112143, 3199114796, 3383340730, 1352728320, 665309078,
      3071857159, 3223315089,
    ];
    assert.deepEqual(
      crcs.map((_, i) => crc32(`hb-study_${i}`)),
      crcs,
    );
    const budgets = optunaBracketBudgets(5, 2);
    assert.deepEqual(
      crcs.map((_, i) => optunaBracketOf("hb-study", i, budgets)),
      [3, 3, 2, 2, 1, 1, 0, 0, 1, 0],
    );
  });
  it("the optuna bracket distribution in a Hyperband scheduler", () => {
    const s = make({
      type: "hyperband",
      rung_levels: [1, 2, 4, 8],
      max_t: 16,
      reduction_factor: 2,
      bracket_distribution: "optuna",
      study_name: "hb-study",
    });
    const firsts = Array.from({ length: 10 }, () => s.suggest()).map((g) =>
      g.action === "new" ? g.milestone : -1,
    );
    assert.deepEqual(
      firsts,
      [3, 3, 2, 2, 1, 1, 0, 0, 1, 0].map((b) => [1, 2, 4, 8, 16][b]),
    );
  });
});

describe("TV-SR3 sockeye-recipes3", () => {
  it("TV-SR3-1 rungs and checkpoints", () => {
    assert.equal(sockeyeMaxRung(20, 2, 1, 1, 6), 4);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((k) => Math.floor(20 * Math.pow(2, -k))),
      [20, 10, 5, 2, 1],
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((t) => sockeyeRungTotal(t, 1, 1, 6) - sockeyeRungTotal(t - 1, 1, 1, 6)),
      [1, 1, 1, 1],
    );
    const s = make({ type: "sockeye", r: 1, u: 1, R: 6, p: 2, max_trials: 20 }) as SockeyeScheduler;
    assert.equal(s.maxRung, 4);
    assert.deepEqual(
      s.rungs().map((r) => r.level),
      [1, 2, 3, 4, 5],
    );
  });
  const bleu = (c: number) => (c <= 10 ? 10 + c : 20 - c);
  const finishFirst = (k: number, blacklist?: number) => {
    const s = make({ type: "sockeye", r: 1, u: 1, R: 6, p: 2, max_trials: 20 }) as SockeyeScheduler;
    for (let i = 0; i < 20; i++) assert.equal(s.suggest().action, "new");
    if (blacklist !== undefined) s.fail(`T${blacklist}`);
    for (let c = 0; c < k; c++) assert.equal(s.report(`T${c}`, 1, bleu(c)), "pause");
    return s;
  };
  it("TV-SR3-2 tops(0)", () => {
    const tops = (k: number) => finishFirst(k).tops(0).sort();
    assert.deepEqual(tops(10), []);
    assert.deepEqual(tops(11), ["T10"]);
    assert.deepEqual(tops(12), ["T10", "T9"]);
    assert.deepEqual(tops(15), ["T10", "T6", "T7", "T8", "T9"]);
    assert.deepEqual(tops(20), ["T1", "T10", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"]);
    assert.deepEqual(finishFirst(10, 19).tops(0), ["T9"]);
  });
  it("promotions hand out exactly the tops", () => {
    const s = finishFirst(12);
    const got = [s.suggest(), s.suggest(), s.suggest()].map((g) =>
      g.action === "promote" ? `${g.trial} ${g.from}->${g.to}` : g.action,
    );
    assert.deepEqual(got.slice(0, 2).sort(), ["T10 1->2", "T9 1->2"]);
    assert.equal(got[2], "wait");
  });
  it("TV-SR3-3 pareto", () => {
    assert.deepEqual(
      sockeyePareto(
        [
          [30, 100],
          [28, 80],
          [25, 90],
          [31, 120],
        ],
        [1, -1],
      ),
      [1, 1, 0, 1],
    );
    const pts = [
      [30, 100],
      [28, 80],
      [25, 90],
      [31, 120],
      [20, 50],
      [29, 130],
      [27, 85],
      [26, 95],
      [24, 60],
      [23, 70],
      [22, 200],
    ];
    assert.deepEqual(sockeyePareto(pts, [1, -1]), [3, 3, 1, 3, 3, 2, 2, 1, 3, 2, 0]);
  });
});

describe("TV-NUM-1 log ratios in V8 (the runtime the Determined formulas rely on)", () => {
  it("matches Go's math.Log", () => {
    const r = (a: number, b: number) => Math.log(a) / Math.log(b);
    assert.equal(r(64, 2), 6);
    assert.equal(r(27, 3), 3.0000000000000004);
    assert.equal(r(9, 3), 2.0000000000000004);
    assert.equal(r(243, 3), 5);
    assert.equal(r(81, 3), 4.000000000000001);
    assert.equal(r(125, 5), 3.0000000000000004);
    assert.equal(r(1000, 10), 2.9999999999999996);
    for (const [a, b] of [
      [16, 4],
      [100, 10],
      [256, 4],
      [1024, 4],
      [4096, 4],
    ] as const)
      assert.ok(Number.isInteger(r(a, b)));
  });
});
