import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSearchSpace, parseSearchSpaceFile, type SearchSpace } from "../../protocol/searchSpace.ts";

// PanDA's documented example, verbatim
const PANDA_EXAMPLE = {
  auto_lr: { method: "categorical", dimension: { categories: [true, false], grid_search: 0 } },
  batch_size: { method: "uniformint", dimension: { low: 10, high: 30 } },
  epoch: { method: "uniformint", dimension: { low: 5, high: 10 } },
  cnn_block_depths_1: { method: "categorical", dimension: { categories: [1, 1, 2], grid_search: 0 } },
  cnn_block_depths_2: { method: "uniformint", dimension: { low: 1, high: 3 } },
};

/** Asserts parseSearchSpace rejects json with INVALID_SEARCH_SPACE and a message containing every part. */
function rejects(json: unknown, ...parts: (string | RegExp)[]): string {
  let message = "";
  assert.throws(
    () => parseSearchSpace(json, "space.json"),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
      assert.equal(err.code, "INVALID_SEARCH_SPACE");
      message = err.message;
      assert.ok(message.startsWith("space.json: search space"), message);
      for (const p of parts)
        if (typeof p === "string")
          assert.ok(message.includes(p), `message lacks ${JSON.stringify(p)}:\n${message}`);
        else assert.match(message, p);
      return true;
    },
  );
  return message;
}

const one = (method: string, dimension: unknown, extra: object = {}) => ({
  x: { method, dimension, ...extra },
});

void describe("parseSearchSpace: valid spaces", () => {
  void it("parses PanDA's example unchanged (booleans, duplicate categories, grid_search 0)", () => {
    const space = parseSearchSpace(structuredClone(PANDA_EXAMPLE));
    assert.deepEqual(space, PANDA_EXAMPLE);
    assert.deepEqual(Object.keys(space), Object.keys(PANDA_EXAMPLE));
  });

  void it("parses every method, grid flags as 0/1/true/false, and conditions", () => {
    const json = {
      opt: {
        method: "categorical",
        dimension: { categories: ["sgd", "adam", null, 3.5], grid_search: true },
      },
      mom: {
        method: "uniform",
        dimension: { low: 0, high: 0.99 },
        condition: { param: "opt", in: ["sgd"] },
      },
      layers: { method: "uniformint", dimension: { low: -2, high: 2, grid_search: 1 } },
      lr: { method: "loguniform", dimension: { low: 1e-5, high: 1 } },
      drop: { method: "quniform", dimension: { low: 0, high: 0.5, q: 0.05, grid_search: false } },
      width: { method: "qloguniform", dimension: { low: 8, high: 512, q: 8 } },
      noise: { method: "normal", dimension: { mu: 0, sigma: 2 } },
      scale: { method: "lognormal", dimension: { mu: 1, sigma: 0.5, grid_search: 0 } },
      k: { method: "uniformint", dimension: { low: 3, high: 3 }, condition: { param: "layers", in: [1, 2] } },
    };
    const space: SearchSpace = parseSearchSpace(structuredClone(json));
    assert.deepEqual(space, json);
  });

  void it("accepts a single-value range (low == high)", () => {
    assert.doesNotThrow(() => parseSearchSpace(one("uniform", { low: 2, high: 2 })));
    assert.doesNotThrow(() => parseSearchSpace(one("quniform", { low: 0.3, high: 0.3, q: 0.1 })));
  });
});

void describe("parseSearchSpace: every error names the parameter and field and says the fix", () => {
  void it("rejects a top level that is not an object", () => {
    rejects(3, "must be a JSON object", "got 3");
    rejects(null, "must be a JSON object", "got null");
    rejects([PANDA_EXAMPLE], "got a list", "one space per segment");
  });

  void it("rejects an empty space", () => void rejects({}, "is empty", "define at least one parameter"));

  void it("rejects an entry that is not an object", () =>
    void rejects({ lr: 0.1 }, `"lr" must be {"method"`, "got 0.1"));

  void it("rejects a missing method and lists the methods", () =>
    void rejects(
      { lr: { dimension: { low: 0, high: 1 } } },
      `"lr".method is missing`,
      "categorical, uniformint, uniform",
    ));

  void it("rejects an unknown method and suggests the closest", () => {
    rejects(one("unifrom", { low: 0, high: 1 }), `"x": unknown method "unifrom"`, `did you mean "uniform"?`);
    rejects(one("log-uniform", { low: 1, high: 2 }), `did you mean "loguniform"?`);
    rejects(one("UniformInt", { low: 1, high: 2 }), `did you mean "uniformint"?`);
    rejects(one("randint", { low: 1, high: 2 }), `unknown method "randint"`, "use one of categorical");
    rejects({ x: { method: 7, dimension: {} } }, "unknown method 7", "use one of");
  });

  void it("rejects unknown fields in the entry and in the dimension, listing the allowed ones", () => {
    rejects(
      one("uniform", { low: 0, hgih: 1 }),
      `"x".dimension: unknown field "hgih"; allowed fields: low, high, grid_search`,
    );
    rejects(
      { x: { method: "uniform", dimensions: { low: 0, high: 1 } } },
      `"x": unknown field "dimensions"; allowed fields: method, dimension, condition`,
      `"x".dimension: must be an object`,
    );
  });

  void it("rejects missing or mistyped bounds", () => {
    rejects(one("uniform", { low: "0.1", high: 1 }), `"x".dimension.low: must be a number, got "0.1"`);
    rejects(one("uniform", { low: 0 }), `"x".dimension.high: is missing; add a number`);
    rejects(one("uniformint", { low: 1, high: 2.5 }), `"x".dimension.high: must be an integer, got 2.5`);
  });

  void it("rejects low > high", () =>
    void rejects(
      { batch_size: { method: "uniformint", dimension: { low: 30, high: 10 } } },
      `"batch_size".dimension.low: 30 is greater than high (10); low must be <= high`,
    ));

  void it("rejects a non-positive low for the log methods", () => {
    rejects(
      one("loguniform", { low: 0, high: 1 }),
      `"x".dimension.low: 0 is not > 0; loguniform needs a positive low`,
    );
    rejects(one("qloguniform", { low: -1, high: 8, q: 1 }), `"x".dimension.low: -1 is not > 0; qloguniform`);
  });

  void it("rejects a bad quantization step", () => {
    rejects(one("quniform", { low: 0, high: 1, q: 0 }), `"x".dimension.q: must be > 0`);
    rejects(one("quniform", { low: 0, high: 1 }), `"x".dimension.q: is missing; add a step q > 0`);
    rejects(
      one("quniform", { low: 1, high: 3, q: 4 }),
      `"x".dimension.q: no multiple of q (4) lies in [1, 3]; choose a smaller q or widen the range`,
    );
  });

  void it("rejects bad grid_search flags and grids over continuous dimensions", () => {
    rejects(
      one("categorical", { categories: [1], grid_search: 2 }),
      `"x".dimension.grid_search: must be 0, 1, true or false, got 2`,
    );
    for (const [m, dim] of [
      ["uniform", { low: 0, high: 1 }],
      ["loguniform", { low: 1, high: 2 }],
      ["normal", { mu: 0, sigma: 1 }],
      ["lognormal", { mu: 0, sigma: 1 }],
    ] as const)
      rejects(
        one(m, { ...dim, grid_search: 1 }),
        `"x".dimension.grid_search: ${m} has no finite set`,
        "use quniform",
      );
  });

  void it("rejects bad categories", () => {
    rejects(one("categorical", { categories: [] }), `"x".dimension.categories: is empty`);
    rejects(
      one("categorical", { categories: "a,b" }),
      `"x".dimension.categories: must be a list of values, got "a,b"`,
    );
    rejects(
      one("categorical", { categories: [1, [2]] }),
      `"x".dimension.categories[1]: must be a string, number, boolean or null, got [2]`,
    );
  });

  void it("rejects a non-positive sigma", () =>
    void rejects(one("normal", { mu: 0, sigma: -1 }), `"x".dimension.sigma: must be > 0`));

  void it("rejects an empty parameter name", () =>
    void rejects({ "": { method: "uniform", dimension: { low: 0, high: 1 } } }, "must not be empty"));

  void it("reports every problem, one line each", () => {
    const msg = rejects(
      {
        a: { method: "uniform", dimension: { low: 2, high: 1 } },
        b: { method: "uniformint", dimension: { low: 0.5, high: 1 } },
      },
      `"a".dimension.low`,
      `"b".dimension.low`,
    );
    assert.equal(msg.split("\n").length, 2);
  });
});

void describe("parseSearchSpace: conditions", () => {
  const opt = { method: "categorical", dimension: { categories: ["sgd", "adam"] } };
  const mom = (condition: unknown) => ({ method: "uniform", dimension: { low: 0, high: 1 }, condition });

  void it("rejects an unknown parent and suggests the closest name", () =>
    void rejects(
      { optimizer: opt, m: mom({ param: "optimiser", in: ["sgd"] }) },
      `"m".condition.param: unknown parameter "optimiser"; did you mean "optimizer"?`,
    ));

  void it("rejects a continuous parent", () =>
    void rejects(
      { lr: mom(undefined), m: mom({ param: "lr", in: [0.5] }) },
      `"m".condition.param: "lr" is uniform; a condition's parent must be categorical or uniformint`,
    ));

  void it("rejects values the parent cannot take", () => {
    rejects(
      { opt, m: mom({ param: "opt", in: ["sgd", "SGD"] }) },
      `"m".condition.in[1]: "SGD" is not a value of "opt"`,
    );
    const layers = { method: "uniformint", dimension: { low: 1, high: 3 } };
    rejects(
      { layers, m: mom({ param: "layers", in: [4] }) },
      `"m".condition.in[0]: 4 is not a value of "layers"; use one of its integers`,
    );
  });

  void it("rejects an empty or missing value list", () => {
    rejects({ opt, m: mom({ param: "opt", in: [] }) }, `"m".condition.in: is empty`);
    rejects({ opt, m: mom({ param: "opt" }) }, `"m".condition.in: must be a list`);
  });

  void it("rejects cycles, including a parameter conditioned on itself", () => {
    const c = (param: string) => ({
      method: "categorical",
      dimension: { categories: [1, 2] },
      condition: { param, in: [1] },
    });
    rejects({ a: c("b"), b: c("a") }, `"a".condition.param: conditions form a cycle a -> b -> a`);
    rejects({ a: c("a") }, "cycle a -> a");
  });
});

void describe("parseSearchSpaceFile", () => {
  void it("clones a single space for every segment", () => {
    const spaces = parseSearchSpaceFile(PANDA_EXAMPLE, 3);
    assert.equal(spaces.length, 3);
    for (const s of spaces) assert.deepEqual(s, PANDA_EXAMPLE);
    assert.notEqual(spaces[0], spaces[1]);
    assert.notEqual(spaces[0]?.auto_lr, spaces[1]?.auto_lr);
  });

  void it("takes a list with one space per segment, in order", () => {
    const a = one("uniform", { low: 0, high: 1 });
    const b = one("uniformint", { low: 0, high: 1 });
    assert.deepEqual(parseSearchSpaceFile([a, b], 2), [a, b]);
  });

  void it("rejects a list whose length is not the segment count", () => {
    assert.throws(
      () => parseSearchSpaceFile([PANDA_EXAMPLE, PANDA_EXAMPLE], 3, "ss.json"),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.code === "INVALID_SEARCH_SPACE" &&
        e.message.includes("ss.json holds a list of 2 search spaces but the task has 3 segments") &&
        e.message.includes("one space per segment"),
    );
  });

  void it("names the list element of a bad space", () => {
    assert.throws(
      () => parseSearchSpaceFile([PANDA_EXAMPLE, one("uniform", { low: 1, high: 0 })], 2, "ss.json"),
      (e: unknown) =>
        e instanceof ValidationError && e.message.startsWith(`ss.json[1]: search space "x".dimension.low`),
    );
  });

  void it("rejects a bad segment count", () => {
    for (const n of [0, -1, 1.5])
      assert.throws(() => parseSearchSpaceFile(PANDA_EXAMPLE, n), /nSegments must be a positive integer/);
  });
});
