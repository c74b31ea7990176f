// Search efficiency on LCBench (`npm run bench -- search`): the simulator (steering/sim), which
// drives steering's real task engine and schedulers, on every LCBench folder.
//  (a) compute and wall time each method needs to reach random search's final value (random
//      search trains 256 configurations fully; the others sample until they reach it), W = 4, 32;
//  (b) the PASHA paper's protocol (256 trials, η 3, W 4): accuracy and time of ASHA and PASHA;
//  (c) worker utilisation of synchronous SHA and ASHA (256 trials each, W 32);
//  (d) how long the simulator takes for 20 seeds × 4 methods on one folder.
//   node --import tsx bench/run.ts search [--seeds 20] [--plots docs/img/search]
// The data stays outside the repository: $GRIDTUNE_LCBENCH, else ../shared/data/lcbench.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { bestCurves, bestSvg } from "../simulate/report.ts";
import { runComparison, runConfigured, stat, type MethodSummary } from "../steering/sim/compare.ts";
import type { CurveSource } from "../steering/sim/curves.ts";
import { LCBENCH_HELP, lcbenchRoot, lcbenchSource, loadLcbench } from "../steering/sim/lcbench.ts";
import { METHODS, methodScheduler, simSpec, type Method } from "../steering/sim/methods.ts";
import type { SimResult } from "../steering/sim/simulator.ts";
import { arg } from "./args.ts";

const ROOT = resolve(import.meta.dirname, "..");

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "-");

function ratioCell(m: MethodSummary): string {
  return m.computeRatio
    ? `${f3(m.computeRatio.median)} (${f3(m.computeRatio.min)}–${f3(m.computeRatio.max)})`
    : "never";
}

function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, sd };
}

/** (b) 256 trials, η 3, W 4, each run to its end: the returned configuration's accuracy, and wall time. */
function pashaProtocol(source: CurveSource, seeds: number) {
  const out: Record<string, { acc: number[]; hours: number[]; compute: number[] }> = {};
  for (const m of ["asha-promotion", "pasha"] as const) {
    const spec = simSpec(source.space, methodScheduler(m, { maxT: source.maxResource }), 4, 256);
    const { runs } = runConfigured({ spec, source, workers: 4, seeds });
    out[m] = {
      acc: runs.map((r) => 100 - (r.result.incumbent?.full ?? Number.NaN)),
      hours: runs.map((r) => r.result.wall / 3600),
      compute: runs.map((r) => r.result.compute / 3600),
    };
  }
  return out as Record<"asha-promotion" | "pasha", { acc: number[]; hours: number[]; compute: number[] }>;
}

/** (c) utilisation of one method with 256 trials and W workers, run to its end. */
function utilisation(source: CurveSource, m: Method, workers: number, seeds: number): SimResult[] {
  const spec = simSpec(source.space, methodScheduler(m, { maxT: source.maxResource }), workers, 256);
  return runConfigured({ spec, source, workers, seeds }).runs.map((r) => r.result);
}

export function benchSearch(): Promise<void> {
  const root = lcbenchRoot() ?? resolve(ROOT, "../shared/data/lcbench");
  if (!existsSync(root)) {
    process.stdout.write(`skipped: no LCBench data at ${root}. ${LCBENCH_HELP}\n`);
    return Promise.resolve();
  }
  const seeds = arg("seeds", 20);
  const plots = textArg("plots");
  if (plots) mkdirSync(plots, { recursive: true });
  const folders = readdirSync(root)
    .filter((d) => existsSync(join(root, d, "curves.csv")))
    .sort();
  const w = (s: string) => process.stdout.write(s + "\n");
  const a: string[] = [];
  const b: string[] = [];
  const c: string[] = [];
  const timing: string[] = [];
  /** (a)'s W = 32 utilisation until the bar was reached, per folder and method. */
  const untilBar = new Map<string, MethodSummary>();
  for (const folder of folders) {
    const t0 = performance.now();
    const data = loadLcbench(join(root, folder));
    timing.push(
      `${folder}: loading configs.csv and curves.csv: ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    const source = lcbenchSource(data);
    for (const workers of [4, 32]) {
      const cmp = runComparison({ source, methods: METHODS, workers, seeds });
      if (workers === 32) for (const m of cmp.methods) untilBar.set(`${folder}/${m.method}`, m);
      for (const m of cmp.methods)
        a.push(
          `| ${folder} | ${workers} | ${m.method} | ${m.reached}/${m.seeds} | ${ratioCell(m)} | ` +
            `${m.wallRatio ? f3(m.wallRatio.median) : "never"} | ${f2(m.computeHours.median)} | ${f2(m.wallHours.median)} |`,
        );
      if (plots && workers === 4) {
        const svg = bestSvg(
          `${folder}: regret of the best so far, W 4, ${seeds} seeds (median, min–max band)`,
          bestCurves(cmp.runs),
          "regret, 100 − val_accuracy (log scale)",
          cmp.bestPossible,
        );
        writeFileSync(join(plots, `${folder}-w4.svg`), svg);
      }
      w(`${folder} W=${workers}: done`);
    }
    const p = pashaProtocol(source, seeds);
    const asha = { acc: meanSd(p["asha-promotion"].acc), h: meanSd(p["asha-promotion"].hours) };
    const pasha = { acc: meanSd(p.pasha.acc), h: meanSd(p.pasha.hours) };
    b.push(
      `| ${folder} | ${f2(asha.acc.mean)} ± ${f2(asha.acc.sd)} | ${f2(asha.h.mean)} | ` +
        `${f2(pasha.acc.mean)} ± ${f2(pasha.acc.sd)} | ${f2(pasha.h.mean)} | ${f2(asha.h.mean / pasha.h.mean)}× | ` +
        `${f2(stat(p["asha-promotion"].hours.map((h, i) => h / (p.pasha.hours[i] ?? Number.NaN))).median)}× |`,
    );
    for (const m of ["sha", "asha-promotion", "asha-stopping"] as const) {
      const runs = utilisation(source, m, 32, seeds);
      const u = stat(runs.map((r) => r.utilisation * 100));
      const bar = untilBar.get(`${folder}/${m}`)?.utilisation;
      c.push(
        `| ${folder} | ${m} | ${f2(u.median)} % (${f2(u.min)}–${f2(u.max)}) | ${f2(stat(runs.map((r) => r.wall / 3600)).median)} | ` +
          (bar ? `${f2(bar.median * 100)} % (${f2(bar.min * 100)}–${f2(bar.max * 100)})` : "-") +
          " |",
      );
    }
    if (folder === folders[0]) {
      const t1 = performance.now();
      runComparison({
        source,
        methods: ["random", "asha-promotion", "hyperband", "pasha"],
        workers: 4,
        seeds: 20,
      });
      timing.push(
        `${folder}: 20 seeds × 4 methods (random, asha-promotion, hyperband, pasha), W 4: ${((performance.now() - t1) / 1000).toFixed(1)} s`,
      );
    }
  }
  w(
    `\n(a) compute to reach random search's final value (${seeds} seeds; ratio median (min–max) over the seeds that reached it)\n`,
  );
  w("| folder | W | method | reached | compute ratio | wall ratio | worker-hours | wall hours |");
  w("|---|---|---|---|---|---|---|---|");
  a.forEach((l) => w(l));
  w(
    `\n(b) PASHA protocol: 256 trials, η 3, W 4, ${seeds} seeds; accuracy (mean ± sd) of the returned configuration at full fidelity\n`,
  );
  w(
    "| folder | ASHA accuracy % | ASHA hours | PASHA accuracy % | PASHA hours | speed-up (means) | speed-up (median per seed) |",
  );
  w("|---|---|---|---|---|---|---|");
  b.forEach((l) => w(l));
  w(
    `\n(c) utilisation with W 32 (${seeds} seeds): a whole run of 256 trials, and (a)'s run until it reached random search's value\n`,
  );
  w(
    "| folder | method | 256 trials: utilisation median (min–max) | wall hours | until the bar: utilisation median (min–max) |",
  );
  w("|---|---|---|---|---|");
  c.forEach((l) => w(l));
  w("\n(d) simulator speed\n");
  timing.forEach((l) => w(l));
  return Promise.resolve();
}

if (import.meta.url === `file://${process.argv[1]}`) await benchSearch();
