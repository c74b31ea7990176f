import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { validatePoint, type Point } from "../../protocol/points.ts";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";
import { createSampler, RandomSampler, restoreSampler } from "../../steering/sampler/index.ts";
import { specInput } from "./fixtures/engineKit.ts";

const N = 4000;
const draws = (dimension: object, method: string, seed = 1, n = N): number[] => {
  const s = new RandomSampler(parseSearchSpace({ x: { method, dimension } }), seed);
  return s.ask(n).map((p) => p.x as number);
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const counts = <T>(xs: T[]) => {
  const m = new Map<T, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};

void describe("RandomSampler: distributions", () => {
  void it("uniformint covers both ends, integers only, about evenly", () => {
    const xs = draws({ low: 1, high: 3 }, "uniformint");
    const c = counts(xs);
    assert.deepEqual([...c.keys()].sort(), [1, 2, 3]);
    for (const [, k] of c) assert.ok(Math.abs(k / N - 1 / 3) < 0.04, `frequency ${k / N}`);
  });

  void it("uniform stays in [low, high) with the right mean", () => {
    const xs = draws({ low: -2, high: 6 }, "uniform");
    assert.ok(xs.every((x) => x >= -2 && x < 6));
    assert.ok(Math.abs(mean(xs) - 2) < 0.15, `mean ${mean(xs)}`);
    assert.ok(Math.min(...xs) < -1.9 && Math.max(...xs) > 5.9);
  });

  void it("loguniform has its median near the geometric mean, and a quarter of the mass per decade", () => {
    const xs = draws({ low: 1e-4, high: 1 }, "loguniform");
    assert.ok(xs.every((x) => x >= 1e-4 && x <= 1));
    assert.ok(Math.abs(Math.log10(median(xs)) + 2) < 0.1, `median ${median(xs)}`);
    const belowMilli = xs.filter((x) => x < 1e-3).length / N;
    assert.ok(Math.abs(belowMilli - 0.25) < 0.03, `fraction below 1e-3: ${belowMilli}`); // uniform would give 0.001
  });

  void it("quniform gives exact multiples of q inside the bounds, every one reachable", () => {
    const xs = draws({ low: 0.1, high: 0.5, q: 0.1 }, "quniform");
    assert.deepEqual([...counts(xs).keys()].sort(), [0.1, 0.2, 0.3, 0.4, 0.5]); // 0.3, not 0.30000000000000004
    const ys = draws({ low: 1, high: 10, q: 4 }, "quniform");
    assert.deepEqual(
      [...counts(ys).keys()].sort((a, b) => a - b),
      [4, 8],
    ); // 0 and 12 are out of bounds
  });

  void it("qloguniform gives multiples of q, denser at the low end", () => {
    const xs = draws({ low: 8, high: 1024, q: 8 }, "qloguniform");
    assert.ok(xs.every((x) => x % 8 === 0 && x >= 8 && x <= 1024));
    assert.ok(xs.includes(8) && xs.includes(1024));
    assert.ok(Math.abs(Math.log2(median(xs)) - 6.5) < 0.3, `median ${median(xs)}`); // geometric mean 2^6.5
  });

  void it("normal and lognormal have the configured location and spread", () => {
    const xs = draws({ mu: 5, sigma: 2 }, "normal");
    const m = mean(xs);
    const sd = Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
    assert.ok(Math.abs(m - 5) < 0.15 && Math.abs(sd - 2) < 0.15, `mean ${m} sd ${sd}`);
    const ys = draws({ mu: 1, sigma: 0.5 }, "lognormal");
    assert.ok(ys.every((y) => y > 0));
    assert.ok(Math.abs(Math.log(median(ys)) - 1) < 0.05, `median ${median(ys)}`);
  });

  void it("categorical returns the values typed as given; a duplicated value is drawn twice as often", () => {
    const s = new RandomSampler(
      parseSearchSpace({
        a: { method: "categorical", dimension: { categories: [true, 1, "1", null, 2.5] } },
        b: { method: "categorical", dimension: { categories: [1, 1, 2] } },
      }),
      9,
    );
    const pts = s.ask(N);
    const a = counts(pts.map((p) => p.a));
    assert.deepEqual(new Set(a.keys()), new Set([true, 1, "1", null, 2.5]));
    const ones = pts.filter((p) => p.b === 1).length / N;
    assert.ok(Math.abs(ones - 2 / 3) < 0.03, `P(b = 1) = ${ones}`);
  });

  void it("draws a conditional parameter only when its parent allows it", () => {
    const space = parseSearchSpace({
      opt: { method: "categorical", dimension: { categories: ["sgd", "adam"] } },
      mom: { method: "uniform", dimension: { low: 0, high: 1 }, condition: { param: "opt", in: ["sgd"] } },
    });
    const pts = new RandomSampler(space, 4).ask(500);
    for (const p of pts) assert.equal("mom" in p, p.opt === "sgd");
    assert.ok(pts.some((p) => "mom" in p) && pts.some((p) => !("mom" in p)));
  });
});

const PANDA = parseSearchSpace({
  auto_lr: { method: "categorical", dimension: { categories: [true, false], grid_search: 0 } },
  batch_size: { method: "uniformint", dimension: { low: 10, high: 30 } },
  epoch: { method: "uniformint", dimension: { low: 5, high: 10 } },
  cnn_block_depths_1: { method: "categorical", dimension: { categories: [1, 1, 2], grid_search: 0 } },
  cnn_block_depths_2: { method: "uniformint", dimension: { low: 1, high: 3 } },
  lr: { method: "loguniform", dimension: { low: 1e-5, high: 1e-1 } },
});

void describe("RandomSampler: determinism and state", () => {
  void it("gives the same points for the same seed and different ones for another", () => {
    const a = createSampler(PANDA, { type: "random", seed: 42 }).ask(20);
    const b = createSampler(PANDA, { type: "random", seed: 42 }).ask(20);
    const c = createSampler(PANDA, { type: "random", seed: 43 }).ask(20);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    for (const p of a) validatePoint(PANDA, p);
    assert.deepEqual(Object.keys(a[0] as Point), Object.keys(PANDA));
  });

  void it("asking in pieces gives the same sequence as asking at once", () => {
    const whole = createSampler(PANDA, { type: "random", seed: 5 }).ask(10);
    const s = createSampler(PANDA, { type: "random", seed: 5 });
    assert.deepEqual([...s.ask(3), ...s.ask(7)], whole);
  });

  void it("defaults the seed to 0 (when the spec is parsed)", () => {
    const config = parseTaskSpec(specInput({ sampler: { type: "random" } })).sampler!;
    assert.deepEqual(
      createSampler(PANDA, config).ask(3),
      createSampler(PANDA, { type: "random", seed: 0 }).ask(3),
    );
  });

  void it("restores from a JSON snapshot and continues the identical sequence", () => {
    const s = createSampler(PANDA, { type: "random", seed: 7 });
    s.ask(13);
    const saved = JSON.parse(JSON.stringify(s.snapshot())) as unknown;
    const expected = s.ask(10);
    const r = restoreSampler(PANDA, { type: "random", seed: 7 }, saved);
    assert.deepEqual(r.ask(10), expected);
    assert.deepEqual(r.snapshot(), s.snapshot());
  });

  void it("tell checks the point and the loss and leaves the sequence alone", () => {
    const a = createSampler(PANDA, { type: "random", seed: 3 });
    const b = createSampler(PANDA, { type: "random", seed: 3 });
    const [p] = a.ask(1) as [Point];
    b.ask(1);
    a.tell(p, 0.5);
    a.tell(p, null);
    assert.deepEqual(a.ask(5), b.ask(5));
    assert.throws(() => a.tell({ ...p, epoch: 11 }, 0.1), /"epoch" is 11/);
    assert.throws(() => a.tell(p, Number.NaN), /loss must be a finite number or null, got NaN/);
  });

  void it("rejects ask counts that are not positive integers", () => {
    const s = createSampler(PANDA, { type: "random", seed: 1 });
    for (const n of [0, -1, 2.5, Number.NaN])
      assert.throws(
        () => s.ask(n),
        (e: unknown) =>
          e instanceof ValidationError && /ask\(n\): n must be a positive integer/.test(e.message),
      );
  });
});

void describe("createSampler / restoreSampler: bad input", () => {
  // the config is parsed with the task's spec, once (createSampler takes it parsed)
  const configError = (config: unknown, part: RegExp) =>
    assert.throws(
      () => parseTaskSpec(specInput({ sampler: config as never })),
      (e: unknown) => e instanceof ValidationError && e.code === "INVALID_CONFIG" && part.test(e.message),
    );

  void it("names the bad config field", () => {
    configError({ type: "grd" }, /^sampler\.type: /);
    configError({ type: "random", seed: -1 }, /^sampler\.seed: must be >= 0/);
    configError({ type: "random", seed: 1.5 }, /^sampler\.seed: must be an integer seed/);
    configError({ type: "random", seed: 2 ** 32 }, /^sampler\.seed: must be <= 4294967295/);
    configError({ type: "random", sed: 1 }, /sed/);
  });

  void it("rejects a state of another type or of the wrong shape", () => {
    const state = createSampler(PANDA, { type: "random", seed: 1 }).snapshot();
    assert.throws(
      () => restoreSampler(PANDA, { type: "grid", seed: 1 }, state),
      /sampler state is for a "random" sampler but the config says "grid"/,
    );
    assert.throws(
      () => restoreSampler(PANDA, { type: "random", seed: 1 }, { type: "random", rng: [1, 2, 3] }),
      (e: unknown) => e instanceof ValidationError && e.message.startsWith("sampler state.rng"),
    );
  });
});
