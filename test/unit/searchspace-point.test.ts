import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { parameterOrder, quantize, validatePoint } from "../../protocol/points.ts";

const space = parseSearchSpace({
  layers: { method: "uniformint", dimension: { low: 1, high: 3 } },
  opt: { method: "categorical", dimension: { categories: ["sgd", "adam", true, null] } },
  nesterov: {
    method: "categorical",
    dimension: { categories: [true, false] },
    condition: { param: "mom_on", in: [1] },
  },
  mom_on: { method: "uniformint", dimension: { low: 0, high: 1 }, condition: { param: "opt", in: ["sgd"] } },
  lr: { method: "loguniform", dimension: { low: 1e-4, high: 1e-1 } },
  drop: { method: "quniform", dimension: { low: 0.1, high: 0.5, q: 0.1 } },
  noise: { method: "normal", dimension: { mu: 0, sigma: 1 } },
  scale: { method: "lognormal", dimension: { mu: 0, sigma: 1 } },
});
const base = { layers: 2, opt: "adam", lr: 0.01, drop: 0.3, noise: -4.2, scale: 0.5 };

function bad(point: unknown, ...parts: string[]) {
  assert.throws(
    () => validatePoint(space, point),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.code, "INVALID_ARGUMENT");
      for (const p of parts)
        assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}:\n${e.message}`);
      return true;
    },
  );
}

void describe("validatePoint", () => {
  void it("accepts valid points, with conditional keys exactly when their chain holds", () => {
    assert.deepEqual(validatePoint(space, base), base);
    validatePoint(space, { ...base, opt: "sgd", mom_on: 0 });
    validatePoint(space, { ...base, opt: "sgd", mom_on: 1, nesterov: false });
    validatePoint(space, { ...base, opt: null, layers: 3, lr: 1e-4, drop: 0.5 });
    validatePoint(space, { ...base, lr: 0.1 * (1 + 1e-12) }); // float round-off at a bound
  });

  void it("rejects a point that is not an object", () => {
    bad([1, 2], "must be a JSON object");
    bad(null, "must be a JSON object");
  });

  void it("names an unknown key and suggests the closest", () =>
    bad({ ...base, lrr: 0.1 }, `unknown parameter "lrr" (did you mean "lr"?)`));

  void it("names a missing key and what it takes", () => {
    const { lr: _lr, ...rest } = base;
    bad(rest, `"lr" is missing; give a number in [0.0001, 0.1]`);
    bad({ ...base, opt: "sgd" }, `"mom_on" is missing; give an integer in [0, 1]`);
    bad({ ...base, opt: "sgd", mom_on: 1 }, `"nesterov" is missing; give one of [true,false]`);
  });

  void it("rejects a conditional key whose condition does not hold", () => {
    bad({ ...base, mom_on: 1 }, `"mom_on" must be left out: its condition (opt in ["sgd"]) does not hold`);
    bad({ ...base, opt: "sgd", mom_on: 0, nesterov: true }, `"nesterov" must be left out`);
  });

  void it("rejects values outside the dimension, naming key and allowed values", () => {
    bad({ ...base, layers: 4 }, `"layers" is 4; uniformint "layers" takes an integer in [1, 3]`);
    bad({ ...base, layers: 1.5 }, `"layers" is 1.5`);
    bad({ ...base, layers: "2" }, `"layers" is "2"`);
    bad({ ...base, opt: "SGD" }, `"opt" is "SGD"; categorical "opt" takes one of ["sgd","adam",true,null]`);
    bad({ ...base, opt: "true" }, `"opt" is "true"`); // typed: the string is not the boolean
    bad({ ...base, lr: 0.2 }, `"lr" is 0.2; loguniform "lr" takes a number in [0.0001, 0.1]`);
    bad({ ...base, drop: 0.35 }, `"drop" is 0.35; quniform "drop" takes a multiple of 0.1 in [0.1, 0.5]`);
    bad({ ...base, drop: 0 }, `"drop" is 0`);
    bad({ ...base, scale: 0 }, `"scale" is 0; lognormal "scale" takes a positive number`);
    bad({ ...base, noise: { v: 1 } }, `"noise" is {"v":1}`);
  });
});

void describe("search-space helpers", () => {
  void it("orders condition parents before their children, otherwise keeping key order", () => {
    assert.deepEqual(parameterOrder(space), [
      "layers",
      "opt",
      "mom_on",
      "nesterov",
      "lr",
      "drop",
      "noise",
      "scale",
    ]);
  });

  void it("quantize rounds to the step's decimals", () => {
    assert.equal(quantize(3, 0.1), 0.3);
    assert.equal(quantize(7, 0.05), 0.35);
    assert.equal(quantize(3, 1e-7), 3e-7);
    assert.equal(quantize(5, 8), 40);
  });

  void it("quantize never returns -0 (JSON would turn the point into another one)", () => {
    assert.ok(Object.is(quantize(-0, 5), 0));
    assert.ok(Object.is(quantize(Math.round(-0.3), 0.1), 0));
  });
});
