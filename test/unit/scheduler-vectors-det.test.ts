// Spec asha-family.md §9.1 (Determined) and §1 V0, as unit tests of the scheduler core.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSchedulerConfig, type SchedulerConfigInput } from "../../protocol/scheduler.ts";
import {
  determinedBracketMaxConcurrent,
  determinedBracketMaxTrials,
  determinedBrackets,
  determinedRungUnits,
  determinedStopCounts,
} from "../../protocol/schedulerFormulas.ts";
import { AdaptiveAshaScheduler, createScheduler, type Scheduler } from "../../steering/scheduler/index.ts";
import { OrderStatTree } from "../../steering/scheduler/ostree.ts";

const make = (c: SchedulerConfigInput): Scheduler => createScheduler(parseSchedulerConfig(c));
const letter = (d: string) => (d === "continue" ? "C" : d === "stop" ? "S" : "PAUSE");

describe("TV V0: the five rules on the same five reports", () => {
  const values = [0.5, 0.4, 0.6, 0.45, 0.45];
  const run = (rule: "syne-tune" | "determined" | "ray" | "optuna") => {
    const s = make({ type: "asha-stopping", rule, reduction_factor: 3, rung_levels: [1, 3], max_t: 9 });
    return values.map((v, i) => letter(s.report(`T${i}`, 1, v)));
  };
  it("syne-tune C,C,S,C,C", () => assert.deepEqual(run("syne-tune"), ["C", "C", "S", "C", "C"]));
  it("ray C,C,S,C,C", () => assert.deepEqual(run("ray"), ["C", "C", "S", "C", "C"]));
  it("determined C,C,S,S,S", () => assert.deepEqual(run("determined"), ["C", "C", "S", "S", "S"]));
  it("optuna C,C,P,P,P", () => assert.deepEqual(run("optuna"), ["C", "C", "S", "S", "S"]));
  it("V0b: syne-tune C,C,S; ray C,C,C", () => {
    const v0b = (rule: "syne-tune" | "ray") => {
      const s = make({ type: "asha-stopping", rule, rung_levels: [1, 3], max_t: 9 });
      return [0.5, 0.4, 0.42].map((v, i) => letter(s.report(`T${i}`, 1, v)));
    };
    assert.deepEqual(v0b("syne-tune"), ["C", "C", "S"]);
    assert.deepEqual(v0b("ray"), ["C", "C", "C"]);
  });
});

describe("TV-DET-1..3 bracket and rung formulas", () => {
  it("getBracketMaxTrials", () => {
    assert.deepEqual(determinedBracketMaxTrials(20, 3, [3, 2, 1]), [12, 5, 3]);
    assert.deepEqual(determinedBracketMaxTrials(50, 3, [4, 3]), [35, 15]);
    assert.deepEqual(determinedBracketMaxTrials(50, 4, [3, 2]), [37, 13]);
    assert.deepEqual(determinedBracketMaxTrials(100, 4, [4, 3, 2]), [70, 22, 8]);
  });
  it("getBracketMaxConcurrentTrials", () => {
    assert.deepEqual(determinedBracketMaxConcurrent(0, 3, [9, 3, 1]), [3, 3, 3]);
    assert.deepEqual(determinedBracketMaxConcurrent(11, 3, [9, 3, 1]), [4, 4, 3]);
    assert.deepEqual(determinedBracketMaxConcurrent(0, 4, [40, 10]), [10, 10]);
  });
  it("makeRungs", () => {
    assert.deepEqual(determinedRungUnits(3, 3, 9), [1, 3, 9]);
    assert.deepEqual(determinedRungUnits(4, 2, 10), [1, 2, 5, 10]);
    assert.deepEqual(determinedRungUnits(1, 3, 9), [9]);
    assert.deepEqual(determinedRungUnits(3, 3, 900), [100, 300, 900]);
  });
});

describe("TV-DET-4 makeBrackets and preview counts", () => {
  const cases = [
    {
      opts: { maxTrials: 10, maxTime: 100, maxConcurrentTrials: 2 },
      brackets: [
        [2, 7, 1, [25, 100]],
        [1, 3, 1, [100]],
      ],
      counts: [
        [25, 6],
        [100, 4],
      ],
    },
    {
      opts: {
        maxTrials: 10,
        maxTime: 1000,
        mode: "conservative" as const,
        divisor: 3,
        maxConcurrentTrials: 5,
      },
      brackets: [
        [3, 7, 2, [111, 333, 1000]],
        [2, 2, 2, [333, 1000]],
        [1, 1, 1, [1000]],
      ],
      counts: [
        [111, 5],
        [333, 2],
        [1000, 3],
      ],
    },
    {
      opts: { maxTrials: 10, maxTime: 900, divisor: 3, maxRungs: 10, maxConcurrentTrials: 5 },
      brackets: [
        [3, 7, 3, [100, 300, 900]],
        [2, 3, 2, [300, 900]],
      ],
      counts: [
        [100, 5],
        [300, 3],
        [900, 2],
      ],
    },
    {
      opts: { maxTrials: 9, maxTime: 90, divisor: 3, maxConcurrentTrials: 3 },
      brackets: [
        [3, 6, 2, [10, 30, 90]],
        [2, 3, 1, [30, 90]],
      ],
      counts: [
        [10, 4],
        [30, 3],
        [90, 2],
      ],
    },
  ];
  for (const [i, c] of cases.entries()) {
    it(`case ${"abcd"[i]}`, () => {
      const opts = { mode: "standard" as const, divisor: 4, maxRungs: 5, bracketRungs: [], ...c.opts };
      const b = determinedBrackets(opts);
      assert.deepEqual(
        b.map((x) => [x.numRungs, x.maxTrials, x.maxConcurrentTrials, x.units]),
        c.brackets,
      );
      assert.deepEqual(
        determinedStopCounts(b, opts.divisor).map((x) => [x.units, x.trials]),
        c.counts,
      );
    });
  }
});

describe("TV-DET-5 insertMetric (insert before equal values)", () => {
  const insertIndex = (v: number, list: number[]) => {
    const t = new OrderStatTree();
    list.forEach((x, i) => t.insert(x, i));
    return t.countLess(v);
  };
  it("indices", () => {
    assert.equal(insertIndex(1.2, [0.0, 1.5, 2.1]), 1);
    assert.equal(insertIndex(3.0, [0.0, 1.5, 2.0]), 3);
    assert.equal(insertIndex(-3.4, [-3, -2, -1]), 0);
    assert.equal(insertIndex(1.2, []), 0);
    assert.equal(insertIndex(0.45, [0.4, 0.45, 0.5]), 1);
  });
});

describe("TV-DET-6 doEarlyStopping (divisor 3, rungs [1,3,9])", () => {
  const det = () =>
    make({ type: "asha-stopping", rule: "determined", reduction_factor: 3, rung_levels: [1, 3], max_t: 9 });
  it("(a) first report continues and is recorded", () => {
    const s = det();
    assert.equal(s.report("T1", 1, 0.5), "continue");
    assert.deepEqual(s.rungs()[0], { level: 1, values: [0.5], trials: ["T1"] });
  });
  it("(b) a better second value continues", () => {
    const s = det();
    s.report("T1", 1, 0.5);
    assert.equal(s.report("T2", 1, 0.4), "continue");
    assert.deepEqual(s.rungs()[0]?.values, [0.4, 0.5]);
  });
  it("(c) a worse second value stops and is recorded", () => {
    const s = det();
    s.report("T1", 1, 0.5);
    assert.equal(s.report("T2", 1, 0.6), "stop");
    assert.deepEqual(s.rungs()[0]?.values, [0.5, 0.6]);
  });
});

/** TV-DET-8 harness: trials in creation order; reports at 0, P, 2P, … with an ever-worse metric. */
function runDeterminedHarness(s: Scheduler, period: number, maxUnits: number) {
  const queue: string[] = [];
  const fill = () => {
    for (let g = s.suggest(); g.action === "new"; g = s.suggest()) queue.push(g.trial);
  };
  fill();
  let metric = 0;
  const stoppedAt = new Map<string, number>();
  while (queue.length > 0) {
    const trial = queue.shift() as string;
    for (let j = 0; j <= maxUnits; j += period) {
      metric += 1;
      if (s.report(trial, j, metric) === "stop") {
        stoppedAt.set(trial, j);
        break;
      }
    }
    fill();
  }
  return stoppedAt;
}

describe("TV-DET-8 end to end", () => {
  it("(a) async_halving: 1 stopped at 900, 9 at 100", () => {
    const s = make({
      type: "adaptive-asha",
      bracket_rungs: [3],
      divisor: 3,
      max_time: 900,
      max_trials: 10,
      max_concurrent_trials: 3,
    });
    const stopped = [...runDeterminedHarness(s, 100, 900).values()];
    assert.equal(stopped.length, 10);
    assert.equal(stopped.filter((x) => x === 900).length, 1);
    assert.equal(stopped.filter((x) => x === 100).length, 9);
    assert.ok(s.isDone());
  });
  it("(b) adaptive standard: brackets [10,30,90] × 6 and [30,90] × 3", () => {
    const s = make({
      type: "adaptive-asha",
      divisor: 3,
      max_rungs: 5,
      max_time: 90,
      max_trials: 9,
      max_concurrent_trials: 3,
    });
    assert.ok(s instanceof AdaptiveAshaScheduler);
    assert.deepEqual(
      s.plan().map((b) => b.units),
      [
        [10, 30, 90],
        [30, 90],
      ],
    );
    const stopped = runDeterminedHarness(s, 10, 90);
    assert.equal(stopped.size, 9);
    const per = (b: number) => [...stopped].filter(([t]) => s.bracketIndexOf(t) === b).map(([, j]) => j);
    const count = (xs: number[], v: number) => xs.filter((x) => x === v).length;
    assert.equal(per(0).length, 6);
    assert.deepEqual([count(per(0), 10), count(per(0), 90)], [5, 1]);
    assert.equal(per(1).length, 3);
    assert.deepEqual([count(per(1), 30), count(per(1), 90)], [2, 1]);
  });
});

describe("TV-DET-9 legacy promotion ASHA", () => {
  /** FIFO queue of ops; each op is a validation at a target; `exitAt` trial fails at its first op. */
  function run(config: SchedulerConfigInput, metrics: number[], exitAt?: string) {
    const s = make(config);
    const targets = new Map<string, number[]>();
    const queue: { trial: string; target: number }[] = [];
    const drain = () => {
      for (let g = s.suggest(); g.action !== "wait"; g = s.suggest()) {
        const target = g.action === "new" ? g.milestone : g.to;
        targets.set(g.trial, [...(targets.get(g.trial) ?? []), target]);
        queue.push({ trial: g.trial, target });
      }
    };
    drain();
    while (queue.length > 0) {
      const op = queue.shift() as { trial: string; target: number };
      if (op.trial === exitAt && targets.get(op.trial)?.length === 1) s.fail(op.trial);
      else s.report(op.trial, op.target, metrics[Number(op.trial.slice(1))] as number);
      drain();
    }
    return targets;
  }
  const config: SchedulerConfigInput = {
    type: "asha-promotion",
    rule: "determined",
    grace_period: 1000,
    reduction_factor: 3,
    max_t: 9000,
    max_trials: 12,
  };
  it("early exit of T3 promotes T1", () => {
    // spec trials T1..T12 are T0..T11 here
    const t = run(config, [0.1, 0.11, 0.12, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09], "T2");
    assert.deepEqual(t.get("T0"), [1000, 3000]);
    assert.deepEqual(t.get("T1"), [1000]);
    assert.deepEqual(t.get("T2"), [1000]);
    assert.deepEqual(t.get("T3"), [1000, 3000, 9000]);
    for (const n of [4, 5, 6]) assert.deepEqual(t.get(`T${n}`), [1000, 3000]);
    for (const n of [7, 8, 9, 10, 11]) assert.deepEqual(t.get(`T${n}`), [1000]);
  });
  it("metrics .01–.12 in order", () => {
    const t = run(config, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12]);
    assert.deepEqual(t.get("T0"), [1000, 3000, 9000]);
    for (const n of [1, 2, 3]) assert.deepEqual(t.get(`T${n}`), [1000, 3000]);
    for (let n = 4; n < 12; n++) assert.deepEqual(t.get(`T${n}`), [1000]);
  });
  it("one rung, four trials: all train to 9000", () => {
    const t = run({ ...config, rung_levels: [9000], max_trials: 4 }, [0.1, 0.2, 0.3, 0.4]);
    for (let n = 0; n < 4; n++) assert.deepEqual(t.get(`T${n}`), [9000]);
  });
});
