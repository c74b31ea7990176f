// Learning curves for the simulator: what a trial reports at each resource level and how long it
// takes to get there. A curve source maps the sampler's points to curves, either because the
// benchmark's configurations are the search space (a categorical "trial" dimension) or by the
// nearest configuration for a user's own search space.
import { ValidationError } from "../../protocol/errors.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import type { Point } from "../../protocol/points.ts";

/** One recorded curve: ascending resource levels, the objective (minimised) and cumulative seconds. */
export interface Curve {
  readonly id: number;
  readonly resources: Float64Array;
  readonly values: Float64Array;
  /** Cumulative training time at the end of each level, in seconds. */
  readonly times: Float64Array;
}

/** The name of the search-space dimension that picks a benchmark configuration by its row. */
export const TRIAL_DIMENSION = "trial";

/** Where curves come from; `curveOf` maps a sampled point to the curve it trains along. */
export interface CurveSource {
  readonly name: string;
  readonly curves: readonly Curve[];
  /** The full-fidelity level (the scheduler's max_t by default): the last level every curve reaches. */
  readonly maxResource: number;
  /** The search space whose points this source maps (its configurations when it has no other). */
  readonly space: SearchSpace;
  curveOf(point: Point): Curve;
}

/** The index of the last level ≤ r (−1 when r is below the first level). */
function levelIndex(c: Curve, r: number): number {
  let lo = 0;
  let hi = c.resources.length - 1;
  if (hi < 0 || r < (c.resources[0] ?? 0)) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((c.resources[mid] ?? 0) <= r) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The value a trial reports at level r: the last recorded level at or below r. */
export function valueAt(c: Curve, r: number): number {
  const i = Math.max(0, levelIndex(c, r));
  return c.values[i] ?? Number.NaN;
}

/** Cumulative seconds to train to level r (0 at r = 0), interpolated between recorded levels. */
export function timeAt(c: Curve, r: number): number {
  if (r <= 0) return 0;
  const i = levelIndex(c, r);
  if (i < 0) {
    // below the first recorded level: a share of the first level's time
    const r0 = c.resources[0] ?? 1;
    return r0 > 0 ? ((c.times[0] ?? 0) * r) / r0 : 0;
  }
  const r0 = c.resources[i] ?? 0;
  const t0 = c.times[i] ?? 0;
  const r1 = c.resources[i + 1];
  const t1 = c.times[i + 1];
  if (r1 === undefined || t1 === undefined || r === r0) return t0;
  return t0 + ((t1 - t0) * (r - r0)) / (r1 - r0);
}

/** The levels a job from `from` to `target` reports at: the recorded ones in between, and the target. */
export function reportLevels(c: Curve, from: number, target: number): number[] {
  const out: number[] = [];
  for (const r of c.resources) if (r > from && r < target) out.push(r);
  out.push(target);
  return out;
}

/** The categorical search space whose values are the configurations' rows 0..n−1. */
export function trialSpace(n: number): SearchSpace {
  return {
    [TRIAL_DIMENSION]: {
      method: "categorical",
      dimension: { categories: Array.from({ length: n }, (_, i) => i), grid_search: 0 },
    },
  };
}

/** A source whose configurations are the search space: point.trial is the row of the curve. */
export function tabularSource(name: string, curves: readonly Curve[], maxResource: number): CurveSource {
  return {
    name,
    curves,
    maxResource,
    space: trialSpace(curves.length),
    curveOf(point) {
      const row = point[TRIAL_DIMENSION];
      const c = typeof row === "number" ? curves[row] : undefined;
      if (!c)
        throw new ValidationError(
          "INVALID_ARGUMENT",
          `point.${TRIAL_DIMENSION}: expected a configuration row 0..${curves.length - 1}, got ${String(row)}`,
        );
      return c;
    },
  };
}

/** The best full-fidelity value over every curve (regret is measured against it). */
export function bestFullValue(source: CurveSource): number {
  let best = Number.POSITIVE_INFINITY;
  for (const c of source.curves) best = Math.min(best, valueAt(c, source.maxResource));
  return best;
}
