// Methods side by side on the same seeds: random search (256 configurations trained fully) sets
// the bar, its final best value; every other method samples until its best full-fidelity value
// reaches that bar, and its worker-seconds and wall time are divided by random search's own.
import type { TaskSpec } from "../../protocol/taskConfig.ts";
import { valueAt, type CurveSource } from "./curves.ts";
import { methodScheduler, simSpec, type Method, type MethodDefaults } from "./methods.ts";
import { simulate, type SimResult } from "./simulator.ts";

export interface CompareOptions {
  source: CurveSource;
  methods: readonly Method[];
  workers: number;
  seeds: number;
  /** First seed (seeds are first, first + 1, ...). */
  firstSeed?: number;
  defaults?: Partial<MethodDefaults>;
  /** Random search's configurations (256, as in the PASHA protocol). */
  randomTrials?: number;
  /**
   * Trial budget of the asynchronous methods (they stop earlier when they reach the bar).
   * Synchronous SHA runs one bracket of randomTrials: it cannot stop a bracket half-way.
   */
  maxTrials?: number;
  overhead?: number;
  failureRate?: number;
  /** A user's task spec to keep its options (its scheduler is replaced per method). */
  base?: TaskSpec;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface MethodSummary {
  method: string;
  workers: number;
  seeds: number;
  /** Seeds on which the method reached random search's final value (null: no comparison ran). */
  reached: number | null;
  /** Worker-seconds until the bar was reached ÷ random search's total (reached seeds only). */
  computeRatio: Stat | null;
  wallRatio: Stat | null;
  /** Absolute figures over all seeds (worker-hours, hours; the run until the bar or its end). */
  computeHours: Stat;
  wallHours: Stat;
  utilisation: Stat;
  /** The best full-fidelity value found (over the seeds that trained one to the end). */
  best: Stat;
  /** Final regret: best full-fidelity value − the best of all curves (null where none finished). */
  regret: Stat | null;
}

export interface SeedRun {
  method: string;
  seed: number;
  result: SimResult;
}

export interface Comparison {
  methods: MethodSummary[];
  runs: SeedRun[];
  /** The bar per seed: random search's final best value. */
  bars: number[];
  bestPossible: number;
}

export function stat(xs: readonly number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const median =
    n === 0 ? Number.NaN : n % 2 ? (s[(n - 1) / 2] ?? 0) : ((s[n / 2 - 1] ?? 0) + (s[n / 2] ?? 0)) / 2;
  return { median, min: s[0] ?? Number.NaN, max: s[n - 1] ?? Number.NaN };
}

/** Medians over seeds of one method's runs; ratios against random search's run of the same seed. */
export function summarise(
  method: string,
  workers: number,
  mine: readonly SeedRun[],
  randomOf: ((seed: number) => SimResult | undefined) | null,
  bestPossible: number,
): MethodSummary {
  const ratios = (pick: (r: SimResult) => number, reachedPick: (r: SimResult) => number | null) =>
    mine.flatMap(({ seed, result }) => {
      const base = randomOf?.(seed);
      const got = method === "random" ? pick(result) : reachedPick(result);
      return base && got !== null && pick(base) > 0 ? [got / pick(base)] : [];
    });
  const compute = ratios(
    (r) => r.compute,
    (r) => r.reached?.compute ?? null,
  );
  const wall = ratios(
    (r) => r.wall,
    (r) => r.reached?.wall ?? null,
  );
  const regrets = mine.flatMap(({ result }) => (result.best === null ? [] : [result.best - bestPossible]));
  return {
    method,
    workers,
    seeds: mine.length,
    reached:
      randomOf === null
        ? null
        : method === "random"
          ? mine.length
          : mine.filter((r) => r.result.reached !== null).length,
    computeRatio: compute.length > 0 ? stat(compute) : null,
    wallRatio: wall.length > 0 ? stat(wall) : null,
    computeHours: stat(mine.map((r) => r.result.compute / 3600)),
    wallHours: stat(mine.map((r) => r.result.wall / 3600)),
    utilisation: stat(mine.map((r) => r.result.utilisation)),
    best: stat(mine.flatMap((r) => (r.result.best === null ? [] : [r.result.best]))),
    regret: regrets.length > 0 ? stat(regrets) : null,
  };
}

/** The best full-fidelity value of all curves (the zero of regret). */
export function bestPossibleValue(source: CurveSource, maxT: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (const c of source.curves)
    if ((c.resources[c.resources.length - 1] ?? 0) >= maxT) best = Math.min(best, valueAt(c, maxT));
  return best;
}

/** A task as configured (its own scheduler, or none), over seeds: what it would cost. */
export function runConfigured(o: {
  spec: TaskSpec;
  source: CurveSource;
  workers: number;
  seeds: number;
  firstSeed?: number;
  overhead?: number;
  failureRate?: number;
  label?: string;
}): { summary: MethodSummary; runs: SeedRun[] } {
  const sched = o.spec.scheduler;
  const label = o.label ?? sched?.type ?? "fifo (no scheduler)";
  const maxT = sched && "max_t" in sched ? sched.max_t : o.source.maxResource;
  const runs: SeedRun[] = [];
  for (let k = 0; k < o.seeds; k++) {
    const seed = (o.firstSeed ?? 0) + k;
    const result = simulate({ ...o, spec: o.spec, seed });
    runs.push({ method: label, seed, result });
  }
  return {
    summary: summarise(label, o.workers, runs, null, bestPossibleValue(o.source, maxT)),
    runs,
  };
}

export function runComparison(o: CompareOptions): Comparison {
  const maxT = o.defaults?.maxT ?? o.source.maxResource;
  const defaults: MethodDefaults = { ...o.defaults, maxT };
  const first = o.firstSeed ?? 0;
  const randomTrials = o.randomTrials ?? 256;
  const maxTrials = o.maxTrials ?? 2048;
  let bestPossible = Number.POSITIVE_INFINITY;
  for (const c of o.source.curves) {
    const v = c.values[c.values.length - 1];
    if (v !== undefined && (c.resources[c.resources.length - 1] ?? 0) >= maxT)
      bestPossible = Math.min(bestPossible, v);
  }
  const spec = (m: Method, trials: number) =>
    simSpec(o.source.space, methodScheduler(m, defaults), o.workers, trials, o.base);
  const run = (m: Method, seed: number, trials: number, target?: number) =>
    simulate({
      spec: spec(m, trials),
      source: o.source,
      workers: o.workers,
      seed,
      overhead: o.overhead,
      failureRate: o.failureRate,
      target,
    });
  const runs: SeedRun[] = [];
  const bars: number[] = [];
  const randoms: SimResult[] = [];
  for (let k = 0; k < o.seeds; k++) {
    const seed = first + k;
    const random = run("random", seed, randomTrials);
    randoms.push(random);
    bars.push(random.best ?? Number.POSITIVE_INFINITY);
    if (o.methods.includes("random")) runs.push({ method: "random", seed, result: random });
    for (const m of o.methods)
      if (m !== "random")
        runs.push({ method: m, seed, result: run(m, seed, m === "sha" ? randomTrials : maxTrials, bars[k]) });
  }
  const methods = o.methods.map((method) =>
    summarise(
      method,
      o.workers,
      runs.filter((r) => r.method === method),
      (seed) => randoms[seed - first],
      bestPossible,
    ),
  );
  return { methods, runs, bars, bestPossible };
}
