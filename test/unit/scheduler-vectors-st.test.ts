// Spec asha-family.md §9.2 (Syne Tune, PASHA) as unit tests of the scheduler core.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSchedulerConfig, type SchedulerConfigInput } from "../../protocol/scheduler.ts";
import {
  numpyQuantileOf,
  syneTuneBracketProbabilities,
  syneTuneRungLevels,
} from "../../protocol/schedulerFormulas.ts";
import {
  AshaScheduler,
  createScheduler,
  PashaScheduler,
  type Scheduler,
} from "../../steering/scheduler/index.ts";
import { pashaRankingKept } from "../../steering/scheduler/pasha.ts";

const make = (c: SchedulerConfigInput): Scheduler => createScheduler(parseSchedulerConfig(c));
const letter = (d: string) => (d === "continue" ? "C" : d === "stop" ? "S" : "PAUSE");
const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} ≉ ${b}`);

describe("TV-ST-1 rung levels", () => {
  const levels = (g: number, rf: number, maxT: number) =>
    syneTuneRungLevels({ gracePeriod: g, reductionFactor: rf, maxT });
  it("geometric, banker's rounding, max_t stripped", () => {
    assert.deepEqual(levels(1, 3, 100), [1, 3, 9, 27, 81]);
    assert.deepEqual(levels(1, 3, 81), [1, 3, 9, 27]);
    assert.deepEqual(levels(1, 2, 10), [1, 2, 4, 8]);
    assert.deepEqual(levels(3, 3, 27), [3, 9]);
    assert.deepEqual(levels(1, 4, 100), [1, 4, 16, 64]);
    assert.deepEqual(levels(2, 3, 100), [2, 6, 18, 54]);
    assert.deepEqual(levels(1, 2.5, 100), [1, 2, 6, 16, 39, 98]);
    assert.deepEqual(levels(1, 3, 243), [1, 3, 9, 27, 81]);
    assert.deepEqual(levels(10, 3, 1000), [10, 30, 90, 270, 810]);
    assert.deepEqual(levels(1, 3, 82), [1, 3, 9, 27, 81]);
  });
  it("rung_increment and explicit levels", () => {
    assert.deepEqual(syneTuneRungLevels({ gracePeriod: 2, rungIncrement: 3, maxT: 12 }), [2, 5, 8, 11]);
    assert.deepEqual(syneTuneRungLevels({ gracePeriod: 1, rungLevels: [1, 3, 9, 27], maxT: 27 }), [1, 3, 9]);
  });
});

describe("TV-ST-2 quantile", () => {
  it("numpy linear", () => {
    close(numpyQuantileOf([0.4, 0.5], 1 / 3), 0.433333);
    close(numpyQuantileOf([0.4, 0.5, 0.6], 1 / 3), 0.466667);
    close(numpyQuantileOf([0.4, 0.45, 0.5, 0.6], 1 / 3), 0.45);
    close(numpyQuantileOf([1, 2, 3, 4], 1 - 1 / 3), 3.0);
    close(numpyQuantileOf([1, 2, 3, 4], 0.5), 2.5);
    close(numpyQuantileOf([5, 1, 3], 0.81), 4.24);
  });
});

describe("TV-ST-3/4 stopping", () => {
  it("mode min", () => {
    const s = make({ type: "asha-stopping", rung_levels: [1, 3, 9], max_t: 27 });
    const seq: [string, number, number, string][] = [
      ["0", 1, 0.5, "C"],
      ["1", 1, 0.4, "C"],
      ["2", 1, 0.6, "S"],
      ["3", 1, 0.45, "C"],
      ["4", 1, 0.45, "C"],
      ["0", 2, 0.45, "C"],
      ["0", 3, 0.3, "C"],
      ["1", 2, 0.35, "C"],
      ["1", 3, 0.38, "S"],
      ["3", 2, 0.4, "C"],
      ["3", 3, 0.2, "C"],
      ["5", 1, 0.1, "C"],
      ["5", 2, 0.1, "C"],
      ["5", 3, 0.39, "S"],
      ["6", 27, 0.9, "S"],
    ];
    for (const [t, r, v, want] of seq) assert.equal(letter(s.report(`T${t}`, r, v)), want, `${t}@${r}=${v}`);
  });
  it("mode max", () => {
    const s = make({ type: "asha-stopping", rung_levels: [1, 3, 9], max_t: 27, mode: "max" });
    const seq: [string, number, number, string][] = [
      ["a", 1, 0.5, "C"],
      ["b", 1, 0.6, "C"],
      ["c", 1, 0.4, "S"],
      ["d", 1, 0.55, "C"],
      ["a", 3, 0.7, "C"],
      ["b", 3, 0.65, "S"],
    ];
    for (const [t, r, v, want] of seq) assert.equal(letter(s.report(t, r, v)), want, `${t}@${r}=${v}`);
  });
});

describe("TV-ST-5 register_pending (grace 3, rf 3, max_t 27)", () => {
  it("decisions and the first milestone", () => {
    const s = make({ type: "asha-stopping", grace_period: 3, reduction_factor: 3, max_t: 27 });
    const news = [0, 1, 2, 3].map(() => s.suggest());
    assert.deepEqual(
      news.map((g) => (g.action === "new" ? g.milestone : -1)),
      [3, 3, 3, 3],
    );
    assert.deepEqual(
      [1.0, 0.9, 0.8, 1.2].map((v, i) => letter(s.report(`T${i}`, 3, v))),
      ["C", "C", "C", "S"],
    );
  });
});

describe("TV-ST-6 promotion (rung_levels [1,3], max_t 9)", () => {
  it("the schedule, the promotions and paused_trials()", () => {
    const s = make({ type: "asha-promotion", rung_levels: [1, 3], max_t: 9 });
    assert.ok(s instanceof AshaScheduler);
    const sched = (want: string) => {
      const g = s.suggest();
      const got =
        g.action === "new"
          ? `NEW ${g.trial}@${g.milestone}`
          : g.action === "promote"
            ? `PROMOTE ${g.trial} ${g.from}->${g.to}`
            : "WAIT";
      assert.equal(got, want);
    };
    const rep = (t: string, r: number, v: number, want: string) =>
      assert.equal(letter(s.report(t, r, v)), want, `${t}@${r}`);
    sched("NEW T0@1");
    rep("T0", 1, 0.5, "PAUSE");
    sched("NEW T1@1");
    rep("T1", 1, 0.4, "PAUSE");
    sched("PROMOTE T1 1->3");
    rep("T1", 2, 0.35, "C");
    rep("T1", 3, 0.3, "PAUSE");
    sched("NEW T2@1");
    rep("T2", 1, 0.6, "PAUSE");
    sched("NEW T3@1");
    rep("T3", 1, 0.45, "PAUSE");
    sched("PROMOTE T3 1->3");
    rep("T3", 2, 0.3, "C");
    rep("T3", 3, 0.25, "PAUSE");
    sched("PROMOTE T3 3->9");
    for (let r = 4; r <= 8; r++) rep("T3", r, 0.2, "C");
    rep("T3", 9, 0.2, "S");
    sched("NEW T4@1");
    rep("T4", 1, 0.7, "PAUSE");
    sched("NEW T5@1");
    rep("T5", 1, 0.1, "PAUSE");
    sched("PROMOTE T5 1->3");
    assert.deepEqual(
      s.pausedTrials().map((p) => [p.trial, p.rank, p.value, p.level]),
      [
        ["T1", 1, 0.3, 3],
        ["T0", 3, 0.5, 1],
        ["T2", 4, 0.6, 1],
        ["T4", 5, 0.7, 1],
      ],
    );
  });
});

describe("TV-ST-7 PASHA ranking", () => {
  const rk = (xs: [string, number][]) => xs.map(([trial, value]) => ({ trial, value }));
  const prevA = rk([
    ["0", 10.1],
    ["1", 19.7],
    ["2", 14.2],
    ["3", 11.5],
  ]);
  it("mode max, ε=0.1", () => {
    assert.ok(
      pashaRankingKept(
        rk([
          ["0", 10.0],
          ["1", 19.6],
          ["2", 14.3],
          ["3", 11.6],
        ]),
        prevA,
        0.1,
        "max",
      ),
    );
    assert.ok(
      !pashaRankingKept(
        rk([
          ["0", 10.0],
          ["1", 11.55],
          ["2", 14.3],
          ["3", 11.6],
        ]),
        prevA,
        0.1,
        "max",
      ),
    );
  });
  it("mode min, ε=0.3 / 0.03; mode max ε=0.3", () => {
    assert.ok(
      pashaRankingKept(
        rk([
          ["0", 10.0],
          ["1", 19.6],
          ["2", 14.3],
          ["3", 11.6],
        ]),
        prevA,
        0.3,
        "min",
      ),
    );
    const top = rk([
      ["0", 10.0],
      ["1", 14.6],
      ["2", 14.3],
      ["3", 11.6],
    ]);
    const prev = rk([
      ["0", 10.0],
      ["1", 14.2],
      ["2", 14.3],
      ["3", 11.6],
    ]);
    assert.ok(pashaRankingKept(top, prev, 0.3, "min"));
    assert.ok(!pashaRankingKept(top, prev, 0.03, "min"));
    assert.ok(pashaRankingKept(top, prev, 0.3, "max"));
  });
  it("a single ranking entry never increases the resource", () => {
    assert.ok(pashaRankingKept(rk([["0", 10.0]]), rk([["0", 99]]), 0, "max"));
  });
  it("initial state for [1,3,9,27,81], max_t 200: current max_t = 3", () => {
    const s = make({ type: "pasha", rung_levels: [1, 3, 9, 27, 81], max_t: 200 });
    assert.ok(s instanceof PashaScheduler);
    assert.equal(s.currentMaxT(), 3);
  });
});

describe("PASHA end to end (a changed ranking raises the maximum resource)", () => {
  it("trials collect at the current top until the ranking at 3 disagrees with the one at 1", () => {
    const s = make({ type: "pasha", rung_levels: [1, 3, 9], max_t: 27, epsilon: 0 }) as PashaScheduler;
    // T0 best at 1, T1 second; at 3 the order flips
    for (let i = 0; i < 6; i++) assert.equal(s.suggest().action, "new");
    [0.1, 0.2, 0.5, 0.6, 0.7, 0.8].forEach((v, i) => assert.equal(s.report(`T${i}`, 1, v), "pause"));
    const p1 = s.suggest();
    assert.deepEqual(p1, { action: "promote", trial: "T0", from: 1, to: 3 });
    assert.equal(s.report("T0", 3, 0.4), "pause");
    const p2 = s.suggest();
    assert.deepEqual(p2, { action: "promote", trial: "T1", from: 1, to: 3 });
    assert.equal(s.currentMaxT(), 3);
    assert.equal(s.report("T1", 3, 0.3), "pause");
    assert.equal(s.currentMaxT(), 9);
    assert.deepEqual(s.suggest(), { action: "promote", trial: "T1", from: 3, to: 9 });
  });
  it("TV-ST-10: a skipped epoch does not crash, and 2 rung levels work", () => {
    const s = make({ type: "pasha", rung_levels: [1, 3], max_t: 9 }) as PashaScheduler;
    assert.equal(s.currentMaxT(), 3);
    for (let i = 0; i < 4; i++) s.suggest();
    [0.5, 0.4, 0.6, 0.7].forEach((v, i) => assert.equal(s.report(`T${i}`, 1, v), "pause"));
    assert.deepEqual(s.suggest(), { action: "promote", trial: "T1", from: 1, to: 3 });
    assert.equal(s.report("T1", 3, 0.35), "pause"); // epoch 2 skipped
    assert.equal(s.currentMaxT(), 3);
  });
  it("one rung level behaves as promotion ASHA", () => {
    const s = make({ type: "pasha", rung_levels: [1], max_t: 9 }) as PashaScheduler;
    assert.equal(s.currentMaxT(), 9);
  });
});

describe("TV-ST-11 bracket distribution", () => {
  const approx = (a: number[], b: number[]) => a.forEach((x, i) => close(x, b[i] as number, 1e-5));
  it("probabilities", () => {
    approx(
      syneTuneBracketProbabilities([1, 3, 9, 27, 81, 200], 6),
      [0.585556, 0.234223, 0.097593, 0.043375, 0.021687, 0.017567],
    );
    approx(syneTuneBracketProbabilities([1, 3, 9, 27], 2), [0.692308, 0.307692]);
    approx(syneTuneBracketProbabilities([1, 3, 9, 27], 3), [0.6, 0.266667, 0.133333]);
    approx(syneTuneBracketProbabilities([1, 3, 9, 27], 4), [0.55102, 0.244898, 0.122449, 0.081633]);
  });
  it("num_brackets = min(brackets, len(rung_levels)+1); bracket b starts at rung b", () => {
    const s = make({ type: "hyperband", rung_levels: [1, 3, 9], max_t: 27, brackets: 10, seed: 7 });
    const milestones = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const g = s.suggest();
      if (g.action === "new") milestones.add(g.milestone);
    }
    assert.deepEqual(
      [...milestones].sort((a, b) => a - b),
      [1, 3, 9, 27],
    );
  });
});

describe("TV-ST-13 rank rule (Syne Tune's current ASHA) via single-objective MOASHA", () => {
  it("V0 and V0b", () => {
    const cfg: SchedulerConfigInput = { type: "moasha", metrics: ["loss"], max_t: 27, reduction_factor: 3 };
    const s = make(cfg);
    assert.deepEqual(
      [0.5, 0.4, 0.6, 0.45, 0.45].map((v, i) => letter(s.report(`T${i}`, 1, v))),
      ["C", "C", "S", "C", "C"],
    );
    assert.equal(letter(s.report("T0", 3, 0.3)), "C");
    assert.equal(letter(s.report("T1", 3, 0.38)), "S");
    assert.equal(letter(s.report("T5", 1, 0.1)), "C");
    assert.equal(letter(s.report("T5", 3, 0.39)), "S");
    const b = make(cfg);
    assert.deepEqual(
      [0.5, 0.4, 0.42].map((v, i) => letter(b.report(`T${i}`, 1, v))),
      ["C", "C", "C"],
    );
  });
});
