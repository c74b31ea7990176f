// The reference formulas of the ASHA family (spec asha-family.md §2–§6), as pure functions.
// Each is written so that its rounding matches the reference runtime: Python's banker's rounding
// for Syne Tune rung levels, Go/V8 `Math.log` for Determined, numpy's linear interpolation.

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Syne Tune `successive_halving_rung_levels` (§3.2): explicit levels, a linear increment, or
 * `int(round(grace * rf^k))` while `grace * rf^k < max_t`. A final entry equal to max_t is dropped,
 * so every level is below max_t.
 */
export function syneTuneRungLevels(opts: {
  maxT: number;
  gracePeriod: number;
  reductionFactor?: number | undefined;
  rungIncrement?: number | undefined;
  rungLevels?: readonly number[] | undefined;
}): number[] {
  const { maxT, gracePeriod } = opts;
  let levels: number[];
  if (opts.rungLevels !== undefined) levels = [...opts.rungLevels];
  else if (opts.reductionFactor === undefined && opts.rungIncrement !== undefined) {
    levels = [];
    for (let l = gracePeriod; l < maxT; l += opts.rungIncrement) levels.push(l);
  } else {
    const rf = opts.reductionFactor ?? 3;
    levels = [];
    for (let k = 0; gracePeriod * Math.pow(rf, k) < maxT; k++)
      levels.push(roundHalfEven(gracePeriod * Math.pow(rf, k)));
  }
  if (levels.length > 0 && levels[levels.length - 1] === maxT) levels.pop();
  return levels;
}

/** Ray `_Bracket` milestones, ascending (§4): `min_t * rf^(k+s)` for k < int(log(max_t/min_t)/log(rf) - s + 1). */
export function rayMilestones(maxT: number, minT: number, rf: number, s: number): number[] {
  const maxRungs = Math.trunc(Math.log(maxT / minT) / Math.log(rf) - s + 1);
  const out: number[] = [];
  for (let k = 0; k < maxRungs; k++) out.push(minT * Math.pow(rf, k + s));
  return out;
}

/** Determined `makeRungs` (§2.3): `max(uint64(max_time / d^(n-1-i)), 1)`. */
export function determinedRungUnits(numRungs: number, divisor: number, maxTime: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < numRungs; i++)
    out.push(Math.max(Math.trunc(maxTime / Math.pow(divisor, numRungs - 1 - i)), 1));
  return out;
}

/** Determined `getBracketMaxTrials` (§2.2). */
export function determinedBracketMaxTrials(
  maxTrials: number,
  divisor: number,
  bracketRungs: readonly number[],
): number[] {
  const weights = bracketRungs.map((n) => Math.pow(divisor, n - 1) / n);
  const total = weights.reduce((a, b) => a + b, 0);
  const trials = weights.map((w) => Math.max(Math.trunc((w / total) * maxTrials), 1));
  const assigned = trials.reduce((a, b) => a + b, 0);
  trials[0] = (trials[0] ?? 0) + Math.max(maxTrials - assigned, 0);
  return trials;
}

/** Determined `getBracketMaxConcurrentTrials` (§2.2), including the #1719 fix `mct = max(mct, nb)`. */
export function determinedBracketMaxConcurrent(
  mct: number,
  divisor: number,
  maxTrials: readonly number[],
): number[] {
  const nb = maxTrials.length;
  if (mct === 0) {
    const each = Math.max(maxTrials[nb - 1] ?? 1, Math.trunc(divisor));
    return maxTrials.map(() => each);
  }
  const m = Math.max(mct, nb);
  return maxTrials.map((_, i) => Math.trunc(m / nb) + (i < m % nb ? 1 : 0));
}

export type DeterminedMode = "aggressive" | "standard" | "conservative";

export interface DeterminedBracket {
  numRungs: number;
  units: number[];
  maxTrials: number;
  maxConcurrentTrials: number;
}

/** Determined `makeBrackets` (§2.2): rung counts, sorted descending, with their budgets. */
export function determinedBrackets(opts: {
  maxTrials: number;
  maxTime: number;
  divisor: number;
  maxRungs: number;
  mode: DeterminedMode;
  maxConcurrentTrials: number;
  bracketRungs: readonly number[];
}): DeterminedBracket[] {
  let rungs = [...opts.bracketRungs];
  if (rungs.length === 0) {
    const maxRungs = Math.min(
      opts.maxRungs,
      Math.trunc(Math.log(opts.maxTime) / Math.log(opts.divisor)) + 1,
      Math.trunc(Math.log(opts.maxTrials) / Math.log(opts.divisor)) + 1,
    );
    if (opts.mode === "conservative") for (let n = 1; n <= maxRungs; n++) rungs.push(n);
    else if (opts.mode === "standard")
      for (let n = Math.trunc((maxRungs - 1) / 2) + 1; n <= maxRungs; n++) rungs.push(n);
    else rungs = [maxRungs];
  }
  rungs.sort((a, b) => b - a);
  const trials = determinedBracketMaxTrials(opts.maxTrials, opts.divisor, rungs);
  const conc = determinedBracketMaxConcurrent(opts.maxConcurrentTrials, opts.divisor, trials);
  return rungs.map((n, i) => ({
    numRungs: n,
    units: determinedRungUnits(n, opts.divisor, opts.maxTime),
    maxTrials: trials[i] ?? 1,
    maxConcurrentTrials: conc[i] ?? 1,
  }));
}

/**
 * Determined `Simulate` (§2.6): how many trials stop at each training length. The counts are summed
 * over brackets and sorted by units; zero counts are kept.
 */
export function determinedStopCounts(
  brackets: readonly { units: readonly number[]; maxTrials: number }[],
  divisor: number,
) {
  const counts = new Map<number, number>();
  for (const b of brackets) {
    let remaining = b.maxTrials;
    b.units.forEach((u, i) => {
      const top = i === b.units.length - 1;
      const cont = Math.max(Math.trunc(remaining / divisor), 1);
      const stopped = top ? remaining : remaining - cont;
      counts.set(u, (counts.get(u) ?? 0) + stopped);
      remaining = cont;
    });
  }
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([units, trials]) => ({ units, trials }));
}

/** numpy's `_lerp` (numpy ≥ 1.22), which interpolates from the nearer end when t ≥ 0.5. */
function numpyLerp(a: number, b: number, t: number): number {
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** numpy "linear" quantile of n sorted values read through `get(i)` (ascending). */
export function numpyQuantile(n: number, get: (i: number) => number, q: number): number {
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return numpyLerp(get(lo), get(hi), h - lo);
}

/** numpy quantile of a plain array (sorts a copy; for tests and small inputs only). */
export function numpyQuantileOf(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return numpyQuantile(sorted.length, (i) => sorted[i] ?? NaN, q);
}

/** Syne Tune `DefaultHyperbandBracketDistribution` (§3.5): `p_s ∝ S / ((S - s) * L[s])`. */
export function syneTuneBracketProbabilities(
  levelsWithMaxT: readonly number[],
  numBrackets: number,
): number[] {
  const S = levelsWithMaxT.length;
  const raw: number[] = [];
  for (let s = 0; s < numBrackets; s++) raw.push(S / ((S - s) * (levelsWithMaxT[s] ?? 1)));
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((p) => p / total);
}

/** Ray / MOASHA bracket draw (§3.7, §4): `p_b ∝ e^(len(rungs_b) - max)`. */
export function softmaxBracketProbabilities(rungCounts: readonly number[]): number[] {
  const max = Math.max(...rungCounts);
  const raw = rungCounts.map((n) => Math.exp(n - max));
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((p) => p / total);
}

/** Optuna `HyperbandPruner` bracket budgets (§5): `ceil(n_brackets * rf^s / (s+1))`, s = n_brackets-1-b. */
export function optunaBracketBudgets(nBrackets: number, rf: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < nBrackets; b++) {
    const s = nBrackets - 1 - b;
    out.push(Math.ceil((nBrackets * Math.pow(rf, s)) / (s + 1)));
  }
  return out;
}

/** Optuna's number of brackets: `floor(log(max/min, rf)) + 1` (math.log(x, b) = log(x)/log(b)). */
export function optunaBracketCount(minResource: number, maxResource: number, rf: number): number {
  return Math.floor(Math.log(maxResource / minResource) / Math.log(rf)) + 1;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib crc32 of a UTF-8 string (Optuna assigns Hyperband brackets with it). */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (const byte of Buffer.from(text, "utf8")) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Optuna's bracket of a trial: `crc32(f"{study}_{number}") % total`, then subtract budgets until < 0. */
export function optunaBracketOf(studyName: string, trialNumber: number, budgets: readonly number[]): number {
  const total = budgets.reduce((a, b) => a + b, 0);
  let n = crc32(`${studyName}_${trialNumber}`) % total;
  for (let b = 0; b < budgets.length; b++) {
    n -= budgets[b] ?? 0;
    if (n < 0) return b;
  }
  return budgets.length - 1;
}

/** Draws an index from a probability vector with one uniform number in [0, 1). */
export function drawIndex(probabilities: readonly number[], u: number): number {
  let acc = 0;
  for (let i = 0; i < probabilities.length; i++) {
    acc += probabilities[i] ?? 0;
    if (u < acc) return i;
  }
  return probabilities.length - 1;
}

/** sockeye-recipes3 rung count (§6): `min(floor(log_p n), ceil((R-r)/u) + 1)`. */
export function sockeyeMaxRung(n: number, p: number, r: number, u: number, R: number): number {
  return Math.min(Math.floor(Math.log(n) / Math.log(p)), Math.ceil((R - r) / u) + 1);
}

/** Total checkpoints a config has trained when it finishes rung t: `min(r + u*t, R)`. */
export function sockeyeRungTotal(t: number, r: number, u: number, R: number): number {
  return Math.min(r + u * t, R);
}
