// `phpo simulate` and `phpo preview --simulate`: a task's cost before it runs, and what the ASHA
// family would save, on recorded learning curves (an LCBench folder, or a finished task's own
// reports). This folder composes client/ (config compilation, the user's API, output) with
// steering's simulator (steering/sim), which drives steering's real task engine and schedulers.
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { specFromOptions } from "../client/compile.ts";
import type { VerbContext } from "../client/context.ts";
import type { SimulateFlags } from "../client/extensions.ts";
import { printJson } from "../client/io.ts";
import { loadJsonOptions, resolveOptions } from "../client/optionValues.ts";
import { fetchDetail, parseIntArg, parseTaskArg } from "../client/verbs/common.ts";
import { ValidationError } from "../protocol/errors.ts";
import type { SearchSpace } from "../protocol/searchSpace.ts";
import { parseTaskSpec, type TaskSpec } from "../protocol/taskConfig.ts";
import {
  bestPossibleValue,
  runComparison,
  runConfigured,
  type MethodSummary,
  type SeedRun,
} from "../steering/sim/compare.ts";
import type { CurveSource } from "../steering/sim/curves.ts";
import {
  LCBENCH_ENV,
  LCBENCH_HELP,
  lcbenchRoot,
  lcbenchSource,
  loadLcbench,
} from "../steering/sim/lcbench.ts";
import { methodScheduler, parseMethods } from "../steering/sim/methods.ts";
import { taskCurves } from "../steering/sim/taskCurves.ts";
import { bestCurves, bestSvg, bestTable, summaryTable } from "./report.ts";

export interface SimulateOptions extends SimulateFlags {
  compare?: string;
  plot?: string;
  overhead?: string;
  failureRate?: string;
  firstSeed?: string;
}

/** With --curves DIR and no config: the methods compared by default. */
export const DEFAULT_COMPARE = "random,asha-promotion,hyperband,pasha";

function positive(value: string | undefined, what: string, fallback: number, min = 1): number {
  return value === undefined ? fallback : parseIntArg(value, what, min);
}

function fraction(value: string | undefined, what: string, max: number): number {
  if (value === undefined) return 0;
  const x = Number(value);
  if (value.trim() === "" || !Number.isFinite(x) || x < 0 || x > max)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${what} ${JSON.stringify(value)} must be a number in [0, ${max}]`,
    );
  return x;
}

/** --curves names a data set folder, or one inside $GRIDTUNE_LCBENCH. */
export function curvesDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const root = lcbenchRoot(env);
  if (flag === undefined) {
    const sets =
      root && existsSync(root)
        ? readdirSync(root).filter((d) => existsSync(join(root, d, "curves.csv")))
        : [];
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `give the learning curves: --curves DIR or --from-task N. ${LCBENCH_HELP}` +
        (sets.length ? ` (${LCBENCH_ENV} holds: ${sets.join(", ")})` : ""),
    );
  }
  const direct = resolve(flag);
  if (existsSync(direct) || !root) return direct;
  const inRoot = join(root, flag);
  return existsSync(inRoot) ? inRoot : direct;
}

interface Loaded {
  source: CurveSource;
  note: string;
}

async function loadSource(
  ctx: VerbContext,
  o: SimulateFlags,
  space: SearchSpace | undefined,
): Promise<Loaded> {
  if (o.curves !== undefined && o.fromTask !== undefined)
    throw new ValidationError("INVALID_ARGUMENT", "give either --curves DIR or --from-task N, not both");
  if (o.fromTask !== undefined) {
    const detail = await fetchDetail(ctx, parseTaskArg(o.fromTask));
    const t = taskCurves(detail);
    return {
      source: t.source,
      note: `${t.source.curves.length} curves of task ${detail.taskId} (its points are the search space${t.dropped ? `; ${t.dropped} points without a full timed curve left out` : ""})`,
    };
  }
  const dir = curvesDir(o.curves, ctx.env);
  const data = loadLcbench(dir);
  return {
    source: lcbenchSource(data, space),
    note: `${data.curves.length} curves of ${data.name} (${space ? "each point mapped to the nearest configuration" : "its configurations are the search space"}; objective 100 − val_accuracy)`,
  };
}

/** The config's task with W workers over the source's space, ready for the engine. */
function simTask(spec: TaskSpec, source: CurveSource, workers: number): TaskSpec {
  return parseTaskSpec({
    ...spec,
    searchSpace: source.space,
    segments: undefined,
    segmentSearchSpaces: undefined,
    // a steering program's points cannot be simulated: the built-in sampler stands in for it
    steeringExec: undefined,
    steeringContainer: undefined,
    nParallelEvaluation: workers,
  });
}

function compile(ctx: VerbContext, config: string): TaskSpec {
  const loaded = loadJsonOptions(config, (m) => ctx.warn(m));
  return specFromOptions(resolveOptions({}, loaded.values), { cwd: process.cwd(), jsonDir: loaded.dir });
}

interface Outcome {
  header: string;
  methods: MethodSummary[];
  runs: SeedRun[];
  /** The best full-fidelity value of all curves (regret 0). */
  bestPossible: number;
}

/** The run settings, every flag checked before any curve is loaded (a typo costs nothing). */
interface Settings {
  workers: number;
  seeds: number;
  firstSeed: number;
  overhead: number;
  failureRate: number;
}

function settings(o: SimulateOptions, defaultWorkers: number, defaultSeeds: number): Settings {
  return {
    workers: positive(o.workers, "--workers", defaultWorkers),
    seeds: positive(o.seeds, "--seeds", defaultSeeds),
    firstSeed: positive(o.firstSeed, "--first-seed", 0, 0),
    overhead: fraction(o.overhead, "--overhead", 1e9),
    failureRate: fraction(o.failureRate, "--failure-rate", 1),
  };
}

/** The scheduler's full fidelity (max_t), else the curves' last level. */
function maxTOf(spec: TaskSpec | undefined, source: CurveSource): number {
  const sched = spec?.scheduler;
  return sched && "max_t" in sched ? sched.max_t : source.maxResource;
}

/** The configured task over seeds, beside the same task without early stopping (FIFO to max_t). */
function configured(spec: TaskSpec, source: CurveSource, s: Settings) {
  const own = runConfigured({ ...s, source, spec: simTask(spec, source, s.workers) });
  const out = [own];
  if (spec.scheduler && spec.scheduler.type !== "fifo") {
    const scheduler = methodScheduler("random", { maxT: maxTOf(spec, source) });
    const fifo = simTask({ ...spec, scheduler }, source, s.workers);
    out.push(runConfigured({ ...s, source, spec: fifo, label: "without early stopping" }));
  }
  return { methods: out.map((x) => x.summary), runs: out.flatMap((x) => x.runs) };
}

async function run(ctx: VerbContext, config: string | undefined, o: SimulateOptions): Promise<Outcome> {
  const spec = config === undefined ? undefined : compile(ctx, config);
  const s = settings(o, spec?.nParallelEvaluation ?? 4, 10);
  const compare = o.compare ?? (spec === undefined ? DEFAULT_COMPARE : undefined);
  const methods = compare === undefined ? null : parseMethods(compare);
  const { source, note } = await loadSource(ctx, o, o.fromTask === undefined ? spec?.searchSpace : undefined);
  const header = `simulated on ${note}; ${s.workers} workers, ${s.seeds} seeds`;
  if (methods === null && spec) {
    const r = configured(spec, source, s);
    return { header, ...r, bestPossible: bestPossibleValue(source, maxTOf(spec, source)) };
  }
  const sched = spec?.scheduler;
  const c = runComparison({
    ...s,
    source,
    methods: methods ?? parseMethods(DEFAULT_COMPARE),
    defaults: {
      maxT: maxTOf(spec, source),
      ...(sched && "reduction_factor" in sched && sched.reduction_factor !== undefined
        ? { reductionFactor: sched.reduction_factor }
        : {}),
      ...(sched && "grace_period" in sched ? { gracePeriod: sched.grace_period } : {}),
    },
    base: spec ? simTask(spec, source, s.workers) : undefined,
  });
  return { header, methods: c.methods, runs: c.runs, bestPossible: c.bestPossible };
}

export async function simulateVerb(
  ctx: VerbContext,
  config: string | undefined,
  o: SimulateOptions,
): Promise<number> {
  const r = await run(ctx, config, o);
  const curves = bestCurves(r.runs, "compute");
  const wall = bestCurves(r.runs, "wall");
  if (o.plot !== undefined)
    writeFileSync(o.plot, bestSvg(r.header, curves, "regret of the best so far (log scale)", r.bestPossible));
  if (ctx.json) {
    printJson(ctx.io, {
      methods: r.methods,
      bestPossible: r.bestPossible,
      bestSoFar: { workerHours: curves, wallHours: wall },
    });
    return 0;
  }
  const out = [r.header, "", summaryTable(r.methods).trimEnd()];
  if (r.methods.some((m) => m.reached !== null))
    out.push(
      "compute/wall ratio: worker-seconds (wall time) until the best full-fidelity value first reached random " +
        "search's final one (256 configurations trained fully, same seed) ÷ random search's total; median [min–max] " +
        "over the seeds that reached it",
    );
  out.push("", "best value so far (median over seeds) against worker-hours:", bestTable(curves, "compute"));
  out.push("best value so far (median over seeds) against wall time:", bestTable(wall, "wall"));
  if (o.plot !== undefined) out.push(`plot written to ${o.plot}`);
  ctx.io.stdout.write(out.join("\n") + "\n");
  return 0;
}

/** `phpo preview --simulate`: the configured task's simulated cost, beside the same without early stopping. */
export async function previewSimulation(
  ctx: VerbContext,
  spec: TaskSpec,
  flags: SimulateFlags,
): Promise<{ text: string; json: unknown }> {
  const s = settings(flags, spec.nParallelEvaluation, 5);
  const space = flags.fromTask === undefined ? spec.searchSpace : undefined;
  const { source, note } = await loadSource(ctx, flags, space);
  const r = configured(spec, source, s);
  const header = `simulated cost on ${note}; ${s.workers} workers, ${s.seeds} seeds (medians):`;
  return {
    text: `${header}\n${summaryTable(r.methods)}`,
    json: { workers: s.workers, seeds: s.seeds, methods: r.methods },
  };
}
