// Scheduler-core benchmark: 100,000 trials through each scheduler (a simulated cluster of 64
// workers, learning curves that are a deterministic function of the trial number), decisions per
// second and retained heap; then, side by side, Optuna 3.1's SuccessiveHalvingPruner and
// gridtune's "optuna" rule on the same recorded report sequence, with the decisions compared.
//   node --import tsx bench/scheduler.ts [--trials N] [--optuna-trials N]
import { spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parseSchedulerConfig, type SchedulerConfigInput } from "../protocol/scheduler.ts";
import { createScheduler, type Metrics, type Scheduler } from "../steering/scheduler/index.ts";

const PYTHON = "/usr/bin/python3";
const MAX_T = 81;
const WORKERS = 64;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A learning curve: a per-trial quality plus a 1/r decay and a little deterministic noise. */
function curve(trial: number, r: number): number {
  const h = Math.imul(trial ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  const base = (h % 10_000) / 10_000;
  const noise = ((Math.imul(h ^ (r * 0x27d4eb2d), 0x165667b1) >>> 0) % 1000) / 50_000;
  return base + 0.5 / r + noise;
}

interface RunResult {
  decisions: number;
  reports: number;
  trials: number;
  seconds: number;
  heapMB: number;
  sequence?: { t: number; s: number; v: number; d: string }[];
}

/** Runs one scheduler to completion (or until `maxTrials` trials have been created and drained). */
function drive(
  make: () => Scheduler,
  metrics: (t: number, r: number) => number | Metrics,
  record = false,
): RunResult {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const s = make();
  const ladder = [...new Set([...s.rungs().map((r) => r.level), MAX_T])]
    .filter((l) => l <= MAX_T)
    .sort((a, b) => a - b);
  const running = new Map<string, { r: number }>();
  const sequence: { t: number; s: number; v: number; d: string }[] = [];
  let decisions = 0;
  let reports = 0;
  let created = 0;
  let idle = 0;
  const start = process.hrtime.bigint();
  for (;;) {
    while (running.size < WORKERS) {
      const g = s.suggest();
      decisions++;
      if (g.action === "wait") break;
      if (g.action === "new") {
        created++;
        running.set(g.trial, { r: 0 });
      } else running.set(g.trial, { r: g.from });
    }
    if (running.size === 0) {
      if (s.isDone() || ++idle > 2) break;
      continue;
    }
    idle = 0;
    for (const [trial, st] of running) {
      // report at the next rung level (a worker trains straight to it)
      const next = ladder.find((l) => l > st.r) ?? MAX_T;
      st.r = next;
      const t = Number(trial.slice(1));
      const m = metrics(t, next);
      const d = s.report(trial, next, m);
      decisions++;
      reports++;
      if (record)
        sequence.push({ t, s: next, v: m as number, d: d === "stop" ? (next >= MAX_T ? "S" : "P") : "C" });
      if (d !== "continue") running.delete(trial);
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  gc();
  const heapMB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  if (s.rungs().length < 0) throw new Error("unreachable: keeps the scheduler alive until measured");
  return { decisions, reports, trials: created, seconds, heapMB, ...(record ? { sequence } : {}) };
}

function configs(n: number): { name: string; config: SchedulerConfigInput; trials: number }[] {
  const ladder = { max_t: MAX_T, reduction_factor: 3, max_trials: n };
  const small = Math.min(n, 10_000);
  return [
    { name: "fifo", config: { type: "fifo", max_t: MAX_T, max_trials: n }, trials: n },
    { name: "sha (synchronous)", config: { type: "sha", ...ladder }, trials: n },
    {
      name: "asha-stopping syne-tune",
      config: { type: "asha-stopping", rule: "syne-tune", ...ladder },
      trials: n,
    },
    {
      name: "asha-stopping determined",
      config: { type: "asha-stopping", rule: "determined", ...ladder },
      trials: n,
    },
    { name: "asha-stopping ray", config: { type: "asha-stopping", rule: "ray", ...ladder }, trials: n },
    { name: "asha-stopping optuna", config: { type: "asha-stopping", rule: "optuna", ...ladder }, trials: n },
    { name: "asha-promotion syne-tune", config: { type: "asha-promotion", ...ladder }, trials: n },
    {
      name: "asha-promotion determined",
      config: { type: "asha-promotion", rule: "determined", ...ladder },
      trials: n,
    },
    { name: "hyperband (stopping, 5 brackets)", config: { type: "hyperband", ...ladder }, trials: n },
    {
      name: "adaptive-asha (Determined)",
      config: {
        type: "adaptive-asha",
        max_trials: n,
        max_time: MAX_T,
        divisor: 3,
        max_concurrent_trials: WORKERS,
      },
      trials: n,
    },
    { name: "pasha", config: { type: "pasha", ...ladder }, trials: n },
    {
      name: "moasha linear",
      config: {
        type: "moasha",
        metrics: ["loss", "cost"],
        priority: { type: "linear" },
        max_t: MAX_T,
        max_trials: n,
      },
      trials: n,
    },
    {
      name: `moasha nondominated (${small} trials)`,
      config: { type: "moasha", metrics: ["loss", "cost"], max_t: MAX_T, max_trials: small },
      trials: small,
    },
    {
      name: "sockeye (r 1, u 20, R 81, p 3)",
      config: { type: "sockeye", r: 1, u: 20, R: MAX_T, p: 3, max_trials: n, mode: "min" },
      trials: n,
    },
  ];
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const fmt = (cells: string[]) =>
    "| " +
    cells.map((x, c) => (c === 0 ? x.padEnd(widths[c] ?? 0) : x.padStart(widths[c] ?? 0))).join(" | ") +
    " |";
  return [
    fmt(headers),
    "|" + widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|",
    ...rows.map(fmt),
  ].join("\n");
}

const int = (x: number) => Math.round(x).toLocaleString("en-US");

/** Makes sure /usr/bin/python3 can import optuna; returns an explanation when it cannot. */
function ensureOptuna(): string | null {
  const probe = () => spawnSync(PYTHON, ["-c", "import optuna"], { encoding: "utf8" }).status === 0;
  if (probe()) return null;
  if (process.getuid?.() === 0) {
    spawnSync("apt-get", ["install", "-y", "python3-optuna"], { stdio: "inherit" });
    if (probe()) return null;
  }
  return `${PYTHON} cannot import optuna: install the Debian package python3-optuna (apt-get install -y python3-optuna, as root)`;
}

function optunaSideBySide(trials: number): string {
  const run = drive(
    () =>
      createScheduler(
        parseSchedulerConfig({
          type: "asha-stopping",
          rule: "optuna",
          max_t: MAX_T,
          reduction_factor: 3,
          max_trials: trials,
        }),
      ),
    curve,
    true,
  );
  const seq = run.sequence ?? [];
  // gridtune on exactly the recorded reports, without the simulation around it
  const replayed = createScheduler(
    parseSchedulerConfig({ type: "asha-stopping", rule: "optuna", max_t: MAX_T, reduction_factor: 3 }),
  );
  const t0 = process.hrtime.bigint();
  const ours = seq.map((x) => {
    const d = replayed.report(`T${x.t}`, x.s, x.v);
    return d === "stop" ? (x.s >= MAX_T ? "S" : "P") : "C";
  });
  const oursSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const missing = ensureOptuna();
  const header = `Same ${int(seq.length)} reports of ${int(trials)} trials (min_resource 1, reduction_factor 3, minimize, max_t ${MAX_T}):`;
  const gridRow = ['gridtune rule "optuna"', int(seq.length / oursSeconds), (oursSeconds * 1000).toFixed(1)];
  if (missing)
    return `${header}\n\n${table(["implementation", "decisions/s", "ms"], [gridRow])}\n\nOptuna not run: ${missing}\n`;
  const dir = mkdtempSync(join(tmpdir(), "gridtune-bench-"));
  try {
    const file = join(dir, "reports.jsonl");
    writeFileSync(file, seq.map((x) => JSON.stringify({ t: x.t, s: x.s, v: x.v })).join("\n") + "\n");
    const py = spawnSync(PYTHON, [join(import.meta.dirname, "optuna_sha.py"), file, String(MAX_T), "3"], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    if (py.status !== 0) return `${header}\n\nOptuna run failed: ${py.stderr.slice(-2000)}\n`;
    const res = JSON.parse(py.stdout) as {
      optuna: string;
      seconds: number;
      decisions: string;
      maxrss_kb: number;
    };
    const agree = ours.filter((d, i) => d === res.decisions[i]).length;
    const rows = [
      gridRow,
      [
        `Optuna ${res.optuna} SuccessiveHalvingPruner (in-memory)`,
        int(seq.length / res.seconds),
        (res.seconds * 1000).toFixed(1),
      ],
    ];
    return (
      `${header}\n\n${table(["implementation", "decisions/s", "ms"], rows)}\n\n` +
      `Decisions identical on ${int(agree)} of ${int(seq.length)} reports; Optuna peak RSS ${int(res.maxrss_kb / 1024)} MB; ` +
      `speed-up ${(res.seconds / oursSeconds).toFixed(0)}×.\n`
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchScheduler(opts: { trials?: number; optunaTrials?: number } = {}): Promise<void> {
  const n = opts.trials ?? 100_000;
  const rows: string[][] = [];
  for (const c of configs(n)) {
    const config = parseSchedulerConfig(c.config, c.name);
    const metrics =
      config.type === "moasha"
        ? (t: number, r: number) => ({ loss: curve(t, r), cost: curve(t + 7, 1) * r })
        : curve;
    const res = drive(() => createScheduler(config), metrics);
    rows.push([
      c.name,
      int(res.trials),
      int(res.reports),
      int(res.decisions),
      int(res.decisions / res.seconds),
      res.seconds.toFixed(2),
      res.heapMB < 0.1 ? "<0.1" : res.heapMB.toFixed(1),
    ]);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const out = [
    `Scheduler core, ${int(n)} trials each, ${WORKERS} simulated workers, max_t ${MAX_T}, η 3 (Node ${process.version}):`,
    "",
    table(["scheduler", "trials", "reports", "decisions", "decisions/s", "seconds", "heap MB"], rows),
    "",
    optunaSideBySide(opts.optunaTrials ?? 2_000),
  ];
  process.stdout.write(out.join("\n"));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  await benchScheduler({ trials: arg("--trials"), optunaTrials: arg("--optuna-trials") });
}
