// A point of a search space (one value per active parameter) and the rules a value must follow:
// what validatePoint checks and the built-in samplers rely on.
import { z } from "zod";
import { unreachable, ValidationError } from "./errors.ts";
import type { Parameter, SearchSpace } from "./searchSpace.ts";
import { closest, show } from "./text.ts";

export const PointValue = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: (i) => `must be a string, number, boolean or null, got ${show(i.input)}`,
});
export type PointValue = z.infer<typeof PointValue>;
export const Point = z.record(z.string(), PointValue);
export type Point = z.infer<typeof Point>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The range of integers k with k*q inside [low, high]; empty when kLo > kHi. */
export function multipleRange(low: number, high: number, q: number): [number, number] {
  // the epsilon keeps 0.3 / 0.1 = 2.9999999999999996 from losing the bound 0.3
  return [Math.ceil(low / q - 1e-9), Math.floor(high / q + 1e-9)];
}

/** k*q rounded to q's decimal places, so 3 * 0.1 is 0.3 and not 0.30000000000000004. */
export function quantize(k: number, q: number): number {
  const [mant = "", exp = "0"] = q.toExponential().split("e");
  const decimals = Math.max(0, (mant.split(".")[1]?.length ?? 0) - Number(exp));
  const v = decimals > 0 ? Number((k * q).toFixed(Math.min(decimals, 100))) : k * q;
  // Math.round(-0.3) is -0: a point must survive JSON (which writes -0 as 0) unchanged
  return v === 0 ? 0 : v;
}

/** Whether v is inside [low, high], with a 1e-9 relative allowance for float round-off. */
function inRange(v: number, low: number, high: number): boolean {
  const tol = (b: number) => 1e-9 * Math.max(1, Math.abs(b));
  return v >= low - tol(low) && v <= high + tol(high);
}

/** Whether v is a value the parameter can take (the rule of validatePoint). */
export function valueAllowed(p: Parameter, v: PointValue): boolean {
  if (p.method === "categorical") return p.dimension.categories.some((c) => c === v);
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  switch (p.method) {
    case "uniformint":
      return Number.isInteger(v) && v >= p.dimension.low && v <= p.dimension.high;
    case "uniform":
    case "loguniform":
      return inRange(v, p.dimension.low, p.dimension.high);
    case "quniform":
    case "qloguniform": {
      const k = v / p.dimension.q;
      return (
        inRange(v, p.dimension.low, p.dimension.high) &&
        Math.abs(k - Math.round(k)) <= 1e-9 * Math.max(1, Math.abs(k))
      );
    }
    case "normal":
      return true;
    case "lognormal":
      return v > 0;
    default:
      return unreachable(p, "parameter");
  }
}

function describeAllowed(p: Parameter): string {
  const d = p.dimension as Record<string, unknown>;
  switch (p.method) {
    case "categorical":
      return `one of ${show(p.dimension.categories)}`;
    case "uniformint":
      return `an integer in [${p.dimension.low}, ${p.dimension.high}]`;
    case "quniform":
    case "qloguniform":
      return `a multiple of ${p.dimension.q} in [${p.dimension.low}, ${p.dimension.high}]`;
    case "normal":
      return "a finite number";
    case "lognormal":
      return "a positive number";
    case "uniform":
    case "loguniform":
      return `a number in [${show(d.low)}, ${show(d.high)}]`;
    default:
      return unreachable(p, "parameter");
  }
}

/** Whether a parameter's condition holds for the values already in the point. */
export function conditionHolds(p: Parameter, point: Readonly<Point>): boolean {
  if (!p.condition) return true;
  const { param } = p.condition;
  return Object.hasOwn(point, param) && p.condition.in.some((v) => v === point[param]);
}

/**
 * Parameter names with every condition parent before its children: at each step the first name in
 * key order whose parent is already placed (so a space without conditions keeps its key order).
 * This is the order the samplers draw in, so it is part of what a seed reproduces.
 */
export function parameterOrder(space: SearchSpace): string[] {
  const out: string[] = [];
  const placed = new Set<string>();
  const names = Object.keys(space);
  while (out.length < names.length) {
    const next = names.find((n) => {
      const parent = space[n]?.condition?.param;
      return !placed.has(n) && (parent === undefined || placed.has(parent));
    });
    if (next === undefined)
      throw new Error("search space conditions form a cycle; parse it with parseSearchSpace");
    out.push(next);
    placed.add(next);
  }
  return out;
}

/**
 * Checks a point against the space (e.g. one produced by an external steering container): every
 * active parameter present with an allowed value, no unknown keys, no key whose condition fails.
 * Throws ValidationError("INVALID_ARGUMENT") naming the offending key.
 */
export function validatePoint(space: SearchSpace, point: unknown): Point {
  const fail = (msg: string): never => {
    throw new ValidationError("INVALID_ARGUMENT", `point ${show(point)}: ${msg}`);
  };
  if (!isObject(point)) return fail('must be a JSON object {"<parameter>": value, ...}');
  for (const key of Object.keys(point)) {
    if (!Object.hasOwn(space, key)) {
      const hint = closest(key, Object.keys(space));
      fail(
        `unknown parameter "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}; the space defines ${Object.keys(space).join(", ")}`,
      );
    }
  }
  const checked: Point = {};
  for (const name of parameterOrder(space)) {
    const p = space[name] as Parameter;
    const present = Object.hasOwn(point, name);
    if (!conditionHolds(p, checked)) {
      if (present)
        fail(
          `"${name}" must be left out: its condition (${p.condition?.param} in ${show(p.condition?.in)}) does not hold`,
        );
      continue;
    }
    if (!present) fail(`"${name}" is missing; give ${describeAllowed(p)}`);
    const v = point[name];
    const parsed = PointValue.safeParse(v);
    if (!parsed.success || !valueAllowed(p, parsed.data))
      fail(`"${name}" is ${show(v)}; ${p.method} "${name}" takes ${describeAllowed(p)}`);
    checked[name] = v as PointValue;
  }
  return point as Point;
}
