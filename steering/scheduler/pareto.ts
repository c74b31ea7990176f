// Multi-objective priorities (spec §3.7) and non-dominated sorting. Every objective vector here is
// min-oriented (a max metric is negated first). A point dominates another when it is ≤ in every
// coordinate and < in at least one.

export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let strict = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x > y) return false;
    if (x < y) strict = true;
  }
  return strict;
}

/** Lexicographic order of vectors; dominators always come before the points they dominate. */
export function compareLex(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Front index of each point of a lexicographically sorted list (0 = the Pareto front), as repeated
 * peeling of non-dominated fronts gives it. Two objectives: a sweep with one binary search per
 * point (O(n log F)); more: O(n²·d).
 */
export function frontsOfSorted(sorted: readonly (readonly number[])[]): number[] {
  const n = sorted.length;
  const level = new Array<number>(n).fill(0);
  if (n === 0) return level;
  if ((sorted[0] as readonly number[]).length === 2) {
    const minY: number[] = []; // per front, the smallest second coordinate so far (non-decreasing in the front index)
    for (let i = 0; i < n; i++) {
      const p = sorted[i] as readonly number[];
      const prev = sorted[i - 1];
      if (prev && prev[0] === p[0] && prev[1] === p[1]) {
        level[i] = level[i - 1] ?? 0; // identical points share a front
        continue;
      }
      // every earlier point has x ≤ p.x, so front f dominates p iff its smallest y is ≤ p.y
      let lo = 0;
      let hi = minY.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((minY[mid] ?? Infinity) <= (p[1] ?? 0)) lo = mid + 1;
        else hi = mid;
      }
      level[i] = lo;
      minY[lo] = p[1] ?? 0;
    }
    return level;
  }
  for (let i = 0; i < n; i++) {
    let l = 0;
    for (let j = 0; j < i; j++) {
      if (
        (level[j] ?? 0) + 1 > l &&
        dominates(sorted[j] as readonly number[], sorted[i] as readonly number[])
      )
        l = (level[j] ?? 0) + 1;
    }
    level[i] = l;
  }
  return level;
}

/** Front index of each point, in the input order (0 = non-dominated). */
export function nondominatedFronts(points: readonly (readonly number[])[]): number[] {
  const order = points
    .map((_, i) => i)
    .sort((a, b) => compareLex(points[a] as number[], points[b] as number[]) || a - b);
  const levels = frontsOfSorted(order.map((i) => points[i] as readonly number[]));
  const out = new Array<number>(points.length).fill(0);
  order.forEach((idx, k) => (out[idx] = levels[k] ?? 0));
  return out;
}

/** Syne Tune LinearScalarizationPriority: mean(obj * w) per point (weights default to ones). */
export function linearScalarization(
  points: readonly (readonly number[])[],
  weights?: readonly number[],
): number[] {
  return points.map((p) => linearPriority(p, weights));
}

export function linearPriority(p: readonly number[], weights?: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += (p[i] ?? 0) * (weights?.[i] ?? 1);
  return sum / p.length;
}

/** Syne Tune FixedObjectivePriority: the objective `dim` of each point. */
export function fixedObjective(points: readonly (readonly number[])[], dim: number): number[] {
  return points.map((p) => p[dim] ?? 0);
}

/**
 * sockeye-recipes3 `utils/pareto.py`: front levels with higher = better (the worst front is 0).
 * `opt[i]` is 1 when objective i is maximised and -1 when it is minimised.
 */
export function sockeyePareto(points: readonly (readonly number[])[], opt: readonly (1 | -1)[]): number[] {
  const fronts = nondominatedFronts(points.map((p) => p.map((v, i) => -(opt[i] ?? 1) * v)));
  const worst = Math.max(0, ...fronts);
  return fronts.map((f) => worst - f);
}
