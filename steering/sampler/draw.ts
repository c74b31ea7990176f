// Drawing one value per method, and one whole point. Shared by the random and grid samplers so
// both follow the semantics documented in protocol/searchSpace.ts.
import { unreachable } from "../../protocol/errors.ts";
import type { Rng } from "../core/rng.ts";
import { type Parameter, type SearchSpace } from "../../protocol/searchSpace.ts";
import {
  conditionHolds,
  multipleRange,
  parameterOrder,
  quantize,
  type Point,
  type PointValue,
} from "../../protocol/points.ts";

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function logUniform(rng: Rng, low: number, high: number): number {
  const lo = Math.log(low);
  // exp(log(x)) can land one ulp outside the bounds; clamp so every value validates
  return clamp(Math.exp(lo + rng.next() * (Math.log(high) - lo)), low, high);
}

/** Standard normal by Box-Muller; both uniforms come from rng so its state stays the only state. */
function gaussian(rng: Rng): number {
  const u1 = 1 - rng.next(); // (0, 1]: log(0) is never taken
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

function toMultiple(x: number, low: number, high: number, q: number): number {
  const [kLo, kHi] = multipleRange(low, high, q);
  return quantize(clamp(Math.round(x / q), kLo, kHi), q);
}

export function drawValue(p: Parameter, rng: Rng): PointValue {
  switch (p.method) {
    case "categorical":
      // duplicates are kept: a value listed twice is drawn twice as often (hyperopt's choice)
      return rng.pick(p.dimension.categories);
    case "uniformint":
      return rng.int(p.dimension.low, p.dimension.high);
    case "uniform":
      return p.dimension.low + rng.next() * (p.dimension.high - p.dimension.low);
    case "loguniform":
      return logUniform(rng, p.dimension.low, p.dimension.high);
    case "quniform": {
      const { low, high, q } = p.dimension;
      return toMultiple(low + rng.next() * (high - low), low, high, q);
    }
    case "qloguniform": {
      const { low, high, q } = p.dimension;
      return toMultiple(logUniform(rng, low, high), low, high, q);
    }
    case "normal":
      return p.dimension.mu + p.dimension.sigma * gaussian(rng);
    case "lognormal":
      return Math.exp(p.dimension.mu + p.dimension.sigma * gaussian(rng));
    default:
      return unreachable(p, "parameter");
  }
}

/**
 * One point: parents before children (so conditions can be evaluated), values in `fixed` taken as
 * given, the rest drawn in that order; inactive parameters are left out. Keys come back in the
 * space's own order.
 */
export function samplePoint(
  space: SearchSpace,
  rng: Rng,
  fixed: Readonly<Point> = {},
  order = parameterOrder(space),
): Point {
  const drawn: Point = {};
  for (const name of order) {
    const p = space[name] as Parameter;
    if (!conditionHolds(p, drawn)) continue;
    drawn[name] = Object.hasOwn(fixed, name) ? (fixed[name] as PointValue) : drawValue(p, rng);
  }
  const point: Point = {};
  for (const name of Object.keys(space))
    if (Object.hasOwn(drawn, name)) point[name] = drawn[name] as PointValue;
  return point;
}
