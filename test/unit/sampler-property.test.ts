// Property tests over generated search spaces: whatever the space, the built-in samplers only
// produce points that validatePoint accepts, snapshots continue identical sequences, and the grid
// enumerates exactly the product of the flagged dimensions.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { validatePoint, type Point } from "../../protocol/points.ts";
import { createSampler, restoreSampler } from "../../steering/sampler/index.ts";

const flag = fc.constantFrom(undefined, 0, 1, true, false);
const withFlag = (dimension: Record<string, unknown>, g: unknown) =>
  g === undefined ? dimension : { ...dimension, grid_search: g };
const finite = (min: number, max: number) =>
  fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x)); // no -0: JSON drops it
const qStep = fc.constantFrom(0.01, 0.05, 0.1, 0.25, 1, 5);
const value = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.integer({ min: -5, max: 5 }),
  finite(-10, 10),
  fc.boolean(),
  fc.constant(null),
);

// Grids are kept small (at most 5 values a dimension) so a whole grid can be enumerated.
const parameter = fc.oneof(
  fc.record({ v: fc.array(value, { minLength: 1, maxLength: 5 }), g: flag }).map(({ v, g }) => ({
    method: "categorical",
    dimension: withFlag({ categories: v }, g),
  })),
  fc
    .record({ lo: fc.integer({ min: -50, max: 50 }), n: fc.integer({ min: 0, max: 4 }), g: flag })
    .map(({ lo, n, g }) => ({
      method: "uniformint",
      dimension: withFlag({ low: lo, high: lo + n }, g),
    })),
  fc
    .record({ lo: finite(-1e6, 1e6), w: finite(0, 1e6) })
    .map(({ lo, w }) => ({ method: "uniform", dimension: { low: lo, high: lo + w } })),
  fc
    .record({ lo: finite(1e-8, 1e3), f: finite(1, 1e6) })
    .map(({ lo, f }) => ({ method: "loguniform", dimension: { low: lo, high: lo * f } })),
  fc
    .record({ lo: finite(-100, 100), q: qStep, r: finite(0, 3), g: flag, log: fc.boolean() })
    .map(({ lo, q, r, g, log }) => ({
      method: log ? "qloguniform" : "quniform",
      dimension: withFlag(
        { low: log ? Math.abs(lo) + 1e-3 : lo, high: (log ? Math.abs(lo) + 1e-3 : lo) + q * (1 + r), q },
        g,
      ),
    })),
  fc.record({ mu: finite(-10, 10), s: finite(0.01, 5), log: fc.boolean() }).map(({ mu, s, log }) => ({
    method: log ? "lognormal" : "normal",
    dimension: { mu, sigma: s },
  })),
);
const spaceJson = fc
  .uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/), { minLength: 1, maxLength: 6 })
  .chain((names) => fc.tuple(...names.map((n) => parameter.map((p) => [n, p] as const))))
  .map((entries) => Object.fromEntries(entries));

const isGrid = (p: { dimension: { grid_search?: unknown } }) =>
  p.dimension.grid_search === 1 || p.dimension.grid_search === true;

/** Distinct values of a grid dimension, counted by brute force rather than by the sampler's code. */
function distinctCount(p: { method: string; dimension: Record<string, unknown> }): number {
  const d = p.dimension;
  if (p.method === "categorical") return new Set(d.categories as unknown[]).size;
  if (p.method === "uniformint") return (d.high as number) - (d.low as number) + 1;
  const [low, high, q] = [d.low as number, d.high as number, d.q as number];
  let n = 0;
  for (let k = Math.floor(low / q) - 2; k <= Math.ceil(high / q) + 2; k++)
    if (k * q >= low - 1e-9 && k * q <= high + 1e-9) n++;
  return n;
}

void describe("samplers over generated spaces", () => {
  void it("random: every point validates and survives a JSON round trip with its types", () => {
    fc.assert(
      fc.property(spaceJson, fc.integer({ min: 0, max: 0xffffffff }), (json, seed) => {
        const space = parseSearchSpace(json);
        for (const p of createSampler(space, { type: "random", seed }).ask(20)) {
          validatePoint(space, p);
          assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
        }
      }),
      { numRuns: 200 },
    );
  });

  void it("random and grid: a restored snapshot continues the identical sequence", () => {
    fc.assert(
      fc.property(
        spaceJson,
        fc.nat(),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom("random", "grid"),
        (json, seed, k, type) => {
          const space = parseSearchSpace(json);
          if (type === "grid" && !Object.values(space).some(isGrid)) return;
          const config = { type, seed } as const;
          const s = createSampler(space, config);
          s.ask(k);
          const restored = restoreSampler(space, config, JSON.parse(JSON.stringify(s.snapshot())));
          assert.deepEqual(restored.ask(7), s.ask(7));
        },
      ),
      { numRuns: 200 },
    );
  });

  void it("grid: exactly the product of the flagged dimensions' distinct values, each once, in index order", () => {
    fc.assert(
      fc.property(spaceJson, fc.nat(), (json, seed) => {
        const space = parseSearchSpace(json);
        const grid = Object.entries(space).filter(([, p]) => isGrid(p));
        if (grid.length === 0) return;
        const s = createSampler(space, { type: "grid", seed });
        const pts: Point[] = [];
        for (let batch = s.ask(7); batch.length > 0; batch = s.ask(7)) pts.push(...batch);
        const expected = grid.reduce((acc, [, p]) => acc * distinctCount(p), 1);
        assert.equal(pts.length, expected);
        for (const p of pts) validatePoint(space, p);
        const keys = pts.map((p) => JSON.stringify(grid.map(([n]) => p[n])));
        assert.equal(new Set(keys).size, pts.length);
        // the last grid dimension varies fastest: its value changes between consecutive points
        // unless it has a single value
        const [lastName, last] = grid[grid.length - 1] as [string, (typeof grid)[number][1]];
        if (distinctCount(last) > 1 && pts.length > 1)
          assert.notEqual(pts[0]?.[lastName], pts[1]?.[lastName]);
      }),
      { numRuns: 200 },
    );
  });
});
