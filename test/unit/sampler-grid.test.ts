import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { validatePoint, type Point } from "../../protocol/points.ts";
import { createSampler, GridSampler, restoreSampler } from "../../steering/sampler/index.ts";

const space = parseSearchSpace({
  opt: { method: "categorical", dimension: { categories: ["sgd", "adam"], grid_search: 1 } },
  lr: { method: "loguniform", dimension: { low: 1e-4, high: 1e-1 } },
  depth: { method: "uniformint", dimension: { low: 1, high: 3, grid_search: true } },
  epoch: { method: "uniformint", dimension: { low: 5, high: 10 } },
});
const gridPart = (p: Point) => [p.opt, p.depth];

void describe("GridSampler: enumeration", () => {
  void it("issues the product in key order, last grid dimension fastest, then []", () => {
    const s = createSampler(space, { type: "grid", seed: 1 });
    const pts = s.ask(100);
    assert.deepEqual(pts.map(gridPart), [
      ["sgd", 1],
      ["sgd", 2],
      ["sgd", 3],
      ["adam", 1],
      ["adam", 2],
      ["adam", 3],
    ]);
    for (const p of pts) {
      validatePoint(space, p);
      assert.deepEqual(Object.keys(p), ["opt", "lr", "depth", "epoch"]);
    }
    assert.ok(new Set(pts.map((p) => p.lr)).size > 1, "unflagged dimensions are drawn for each point");
    assert.deepEqual(s.ask(1), []);
    assert.deepEqual(s.ask(5), []);
  });

  void it("returns fewer than asked when the grid runs out", () => {
    const s = createSampler(space, { type: "grid", seed: 1 });
    assert.equal(s.ask(4).length, 4);
    assert.equal(s.ask(4).length, 2);
    assert.deepEqual(s.ask(4), []);
  });

  void it("is deterministic for a seed, including the random dimensions", () => {
    const a = createSampler(space, { type: "grid", seed: 11 }).ask(6);
    assert.deepEqual(createSampler(space, { type: "grid", seed: 11 }).ask(6), a);
    assert.notDeepEqual(
      createSampler(space, { type: "grid", seed: 12 })
        .ask(6)
        .map((p) => p.lr),
      a.map((p) => p.lr),
    );
  });

  void it("de-duplicates categories (PanDA's [1, 1, 2]) and keeps their types", () => {
    const s = new GridSampler(
      parseSearchSpace({
        d: { method: "categorical", dimension: { categories: [1, 1, 2], grid_search: 1 } },
        b: { method: "categorical", dimension: { categories: [true, "true", true, null], grid_search: 1 } },
      }),
      0,
    );
    assert.deepEqual(s.ask(100), [
      { d: 1, b: true },
      { d: 1, b: "true" },
      { d: 1, b: null },
      { d: 2, b: true },
      { d: 2, b: "true" },
      { d: 2, b: null },
    ]);
  });

  void it("grids over the multiples of q for the quantized methods", () => {
    const s = new GridSampler(
      parseSearchSpace({
        drop: { method: "quniform", dimension: { low: 0.05, high: 0.5, q: 0.1, grid_search: 1 } },
        width: { method: "qloguniform", dimension: { low: 10, high: 40, q: 16, grid_search: 1 } },
      }),
      0,
    );
    const pts = s.ask(100);
    assert.deepEqual(
      pts.map((p) => p.drop).filter((_, i) => i % 2 === 0),
      [0.1, 0.2, 0.3, 0.4, 0.5],
    );
    assert.deepEqual(
      pts.slice(0, 2).map((p) => p.width),
      [16, 32],
    );
    assert.equal(pts.length, 10);
  });

  void it("issues each point of a conditional grid once", () => {
    const cond = parseSearchSpace({
      opt: { method: "categorical", dimension: { categories: ["sgd", "adam", "rms"], grid_search: 1 } },
      mom: {
        method: "quniform",
        dimension: { low: 0.4, high: 0.8, q: 0.2, grid_search: 1 },
        condition: { param: "opt", in: ["sgd", "rms"] },
      },
      nesterov: {
        method: "categorical",
        dimension: { categories: [true, false], grid_search: 1 },
        condition: { param: "opt", in: ["sgd"] },
      },
    });
    const pts = new GridSampler(cond, 0).ask(100);
    assert.deepEqual(pts, [
      { opt: "sgd", mom: 0.4, nesterov: true },
      { opt: "sgd", mom: 0.4, nesterov: false },
      { opt: "sgd", mom: 0.6, nesterov: true },
      { opt: "sgd", mom: 0.6, nesterov: false },
      { opt: "sgd", mom: 0.8, nesterov: true },
      { opt: "sgd", mom: 0.8, nesterov: false },
      { opt: "adam" },
      { opt: "rms", mom: 0.4 },
      { opt: "rms", mom: 0.6 },
      { opt: "rms", mom: 0.8 },
    ]);
  });

  void it("walks a huge grid lazily", () => {
    const big = parseSearchSpace({
      a: { method: "uniformint", dimension: { low: 0, high: 999_999, grid_search: 1 } },
      b: { method: "uniformint", dimension: { low: 0, high: 999_999, grid_search: 1 } },
    });
    const s = new GridSampler(big, 0);
    assert.equal(s.combinations, 1e12);
    assert.deepEqual(s.ask(3), [
      { a: 0, b: 0 },
      { a: 0, b: 1 },
      { a: 0, b: 2 },
    ]);
  });
});

void describe("GridSampler: state", () => {
  void it("restores mid-grid from a JSON snapshot and continues identically", () => {
    const s = createSampler(space, { type: "grid", seed: 5 });
    s.ask(2);
    const saved = JSON.parse(JSON.stringify(s.snapshot())) as unknown;
    assert.equal((saved as { cursor: number }).cursor, 2);
    const rest = s.ask(10);
    const r = restoreSampler(space, { type: "grid", seed: 5 }, saved);
    assert.deepEqual(r.ask(10), rest);
    assert.deepEqual(r.ask(1), []);
  });

  void it("restores an exhausted grid as exhausted", () => {
    const s = createSampler(space, { type: "grid", seed: 5 });
    s.ask(6);
    assert.deepEqual(restoreSampler(space, { type: "grid", seed: 5 }, s.snapshot()).ask(1), []);
  });

  void it("rejects a cursor past the end of the grid", () => {
    const state = { type: "grid", rng: [1, 2, 3, 4], cursor: 7 };
    assert.throws(
      () => restoreSampler(space, { type: "grid", seed: 5 }, state),
      (e: unknown) =>
        e instanceof ValidationError && /cursor 7 is past the grid's 6 combinations/.test(e.message),
    );
  });
});

void describe("GridSampler: bad spaces", () => {
  void it("needs at least one grid dimension", () => {
    const plain = parseSearchSpace({
      x: { method: "uniformint", dimension: { low: 0, high: 3, grid_search: 0 } },
    });
    assert.throws(
      () => createSampler(plain, { type: "grid", seed: 0 }),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.code === "INVALID_CONFIG" &&
        /needs at least one parameter with "grid_search": 1/.test(e.message),
    );
  });

  void it("rejects a conditional grid dimension whose parent is not gridded", () => {
    const s = parseSearchSpace({
      opt: { method: "categorical", dimension: { categories: ["sgd", "adam"] } },
      mom: {
        method: "categorical",
        dimension: { categories: [0.9, 0.99], grid_search: 1 },
        condition: { param: "opt", in: ["sgd"] },
      },
    });
    assert.throws(
      () => new GridSampler(s, 0),
      /"mom" depends on "opt", which is not a grid dimension; flag "opt" with "grid_search": 1/,
    );
  });

  void it("rejects a grid too large to count", () => {
    const huge = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [
        `p${i}`,
        { method: "uniformint", dimension: { low: 0, high: 999_999, grid_search: 1 } },
      ]),
    );
    assert.throws(() => new GridSampler(parseSearchSpace(huge), 0), /more than 2\^53 combinations/);
  });
});
