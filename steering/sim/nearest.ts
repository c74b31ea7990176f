// A user's own search space over a tabular benchmark: each sampled point is mapped to the nearest
// benchmark configuration. Both sides are first put on a common [0, 1] scale by quantile: a
// parameter's value by where it lies in its own distribution, a benchmark column's value by its
// rank among the configurations. Parameters are paired with columns by name where the names
// agree, the others in order with the columns left over. It is an approximation (the curve of the
// nearest configuration stands for the point); with no config, the benchmark's configurations
// themselves are the search space and nothing is approximated (curves.ts, tabularSource).
import { ValidationError } from "../../protocol/errors.ts";
import { type Parameter, type SearchSpace } from "../../protocol/searchSpace.ts";
import { parameterOrder, type Point } from "../../protocol/points.ts";
import type { Curve, CurveSource } from "./curves.ts";

/** The benchmark's configurations: column names and one row of numbers per curve. */
export interface ConfigTable {
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly number[]>;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0.5;
}

/** The standard normal CDF (Abramowitz–Stegun 7.1.26 for erf; error below 1.5e-7). */
function phi(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Where `v` lies in the distribution of parameter `p`, in [0, 1] (0.5 when absent or unknown). */
export function quantileOf(p: Parameter, v: Point[string] | undefined): number {
  if (v === undefined || v === null) return 0.5;
  if (p.method === "categorical") {
    const i = p.dimension.categories.findIndex((c) => c === v);
    return i < 0 ? 0.5 : (i + 0.5) / p.dimension.categories.length;
  }
  if (typeof v !== "number") return 0.5;
  switch (p.method) {
    case "uniformint":
      return clamp01((v - p.dimension.low + 0.5) / (p.dimension.high - p.dimension.low + 1));
    case "uniform":
    case "quniform":
      return clamp01((v - p.dimension.low) / (p.dimension.high - p.dimension.low));
    case "loguniform":
    case "qloguniform":
      return clamp01(Math.log(v / p.dimension.low) / Math.log(p.dimension.high / p.dimension.low));
    case "normal":
      return phi((v - p.dimension.mu) / p.dimension.sigma);
    case "lognormal":
      return v > 0 ? phi((Math.log(v) - p.dimension.mu) / p.dimension.sigma) : 0;
    default: {
      const never: never = p;
      throw new Error(`quantileOf: unknown method ${JSON.stringify(never)}`);
    }
  }
}

/** Each column's values replaced by their rank quantile among the rows ((rank + 0.5) / n). */
function rankQuantiles(table: ConfigTable, column: number): Float64Array {
  const n = table.rows.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (table.rows[a]?.[column] ?? 0) - (table.rows[b]?.[column] ?? 0),
  );
  const q = new Float64Array(n);
  order.forEach((row, rank) => (q[row] = (rank + 0.5) / n));
  return q;
}

/** Pairs each parameter with a column: same name first, then the unused columns in order. */
export function pairColumns(space: SearchSpace, columns: readonly string[]): Array<[string, number]> {
  const names = parameterOrder(space);
  const used = new Set<number>();
  const pairs = new Map<string, number>();
  for (const name of names) {
    const i = columns.indexOf(name);
    if (i >= 0) {
      pairs.set(name, i);
      used.add(i);
    }
  }
  let next = 0;
  for (const name of names) {
    if (pairs.has(name)) continue;
    while (used.has(next)) next++;
    if (next >= columns.length) break; // more parameters than columns: the rest are ignored
    pairs.set(name, next);
    used.add(next);
  }
  return names.flatMap((n) => (pairs.has(n) ? [[n, pairs.get(n) as number] as [string, number]] : []));
}

/** A source that maps points of `space` to the nearest of the table's configurations. */
export function nearestSource(
  name: string,
  curves: readonly Curve[],
  maxResource: number,
  table: ConfigTable,
  space: SearchSpace,
): CurveSource {
  if (table.rows.length !== curves.length)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${name}: ${table.rows.length} configurations but ${curves.length} curves; every configuration needs its curve`,
    );
  const pairs = pairColumns(space, table.columns);
  if (pairs.length === 0)
    throw new ValidationError("INVALID_CONFIG", `searchSpace: no parameter to match with ${name}'s columns`);
  const columnQ = pairs.map(([, col]) => rankQuantiles(table, col));
  const cache = new Map<string, Curve>();
  return {
    name,
    curves,
    maxResource,
    space,
    curveOf(point) {
      const key = JSON.stringify(pairs.map(([n]) => point[n] ?? null));
      const hit = cache.get(key);
      if (hit) return hit;
      const q = pairs.map(([n]) => quantileOf(space[n] as Parameter, point[n]));
      let best = 0;
      let bestD = Number.POSITIVE_INFINITY;
      for (let row = 0; row < curves.length; row++) {
        let d = 0;
        for (let k = 0; k < q.length; k++) {
          const diff = (q[k] ?? 0) - (columnQ[k]?.[row] ?? 0);
          d += diff * diff;
        }
        if (d < bestD) {
          bestD = d;
          best = row;
        }
      }
      const c = curves[best] as Curve;
      cache.set(key, c);
      return c;
    },
  };
}
