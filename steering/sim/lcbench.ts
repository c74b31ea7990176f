// The LCBench tabular benchmark as a curve source: configs.csv (one configuration per row) and
// curves.csv (one row per configuration and epoch, with the cumulative training time). The data
// stays outside the repository; the folder comes from --curves or GRIDTUNE_LCBENCH.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ValidationError } from "../../protocol/errors.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import { tabularSource, type Curve, type CurveSource } from "./curves.ts";
import { nearestSource, type ConfigTable } from "./nearest.ts";

/** The environment variable naming the folder that holds the LCBench data sets. */
export const LCBENCH_ENV = "GRIDTUNE_LCBENCH";

export const LCBENCH_HELP =
  "LCBench (Zimmer et al. 2021, https://github.com/automl/LCBench, Apache-2.0) gives configs.csv " +
  "(trial,<hyperparameters>) and curves.csv (trial,epoch,val_accuracy,...,time) per data set; " +
  `point --curves at one data set's folder, or ${LCBENCH_ENV} at the folder holding several`;

/** What the simulator minimises: 100 − val_accuracy (percent), or val_cross_entropy. */
export type LcbenchObjective = "error" | "cross-entropy";

export interface LcbenchData {
  readonly name: string;
  readonly curves: Curve[];
  readonly configs: ConfigTable;
  /** The last epoch every configuration reaches (the full fidelity). */
  readonly maxEpoch: number;
}

/** The folder of the LCBench data sets: the flag, else the environment variable; null if neither. */
export function lcbenchRoot(env: NodeJS.ProcessEnv = process.env): string | null {
  const dir = env[LCBENCH_ENV];
  return dir ? resolve(dir) : null;
}

function need(dir: string, file: string): string {
  const path = join(dir, file);
  if (!existsSync(path))
    throw new ValidationError("NOT_FOUND", `--curves ${dir}: no ${file} there. ${LCBENCH_HELP}`);
  return path;
}

function headerIndex(header: string[], name: string, file: string): number {
  const i = header.indexOf(name);
  if (i < 0)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${file}: no column "${name}" (columns: ${header.join(", ")}). ${LCBENCH_HELP}`,
    );
  return i;
}

function bad(file: string, line: number, what: string): ValidationError {
  return new ValidationError("INVALID_ARGUMENT", `${file} line ${line}: ${what}`);
}

/** Parses one data set folder. curves.csv is read once and split by hand (timed in bench/search.ts). */
export function loadLcbench(dir: string, objective: LcbenchObjective = "error"): LcbenchData {
  const curvesPath = need(dir, "curves.csv");
  const configsPath = need(dir, "configs.csv");
  const configLines = readFileSync(configsPath, "utf8").split("\n");
  const cHeader = (configLines[0] ?? "").trim().split(",");
  const trialCol = headerIndex(cHeader, "trial", configsPath);
  const columns = cHeader.filter((_, i) => i !== trialCol);
  const rows: number[][] = [];
  for (let ln = 1; ln < configLines.length; ln++) {
    const line = configLines[ln]?.trim();
    if (!line) continue;
    const cells = line.split(",").map(Number);
    const trial = cells[trialCol];
    if (trial !== rows.length || cells.length !== cHeader.length || cells.some((x) => !Number.isFinite(x)))
      throw bad(configsPath, ln + 1, `expected trial ${rows.length} and ${cHeader.length} numbers`);
    rows.push(cells.filter((_, i) => i !== trialCol));
  }
  const text = readFileSync(curvesPath, "utf8");
  const firstEnd = text.indexOf("\n");
  const header = text.slice(0, firstEnd).trim().split(",");
  const ti = headerIndex(header, "trial", curvesPath);
  const ei = headerIndex(header, "epoch", curvesPath);
  const vi = headerIndex(header, objective === "error" ? "val_accuracy" : "val_cross_entropy", curvesPath);
  const si = headerIndex(header, "time", curvesPath);
  const per: Array<{ r: number[]; v: number[]; t: number[] }> = rows.map(() => ({ r: [], v: [], t: [] }));
  let pos = firstEnd + 1;
  let ln = 1;
  while (pos < text.length) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = text.length;
    ln++;
    if (end > pos + 1) {
      const cells = text.slice(pos, end).split(",");
      const trial = Number(cells[ti]);
      const epoch = Number(cells[ei]);
      const raw = Number(cells[vi]);
      const time = Number(cells[si]);
      const c = per[trial];
      if (!c || !Number.isFinite(epoch) || !Number.isFinite(raw) || !Number.isFinite(time))
        throw bad(curvesPath, ln, `expected trial 0..${rows.length - 1}, epoch, value and time numbers`);
      if (c.r.length > 0 && epoch <= (c.r.at(-1) ?? 0))
        throw bad(curvesPath, ln, `epochs of trial ${trial} must ascend`);
      c.r.push(epoch);
      c.v.push(objective === "error" ? 100 - raw : raw);
      c.t.push(time);
    }
    pos = end + 1;
  }
  const curves = per.map((c, id) => ({
    id,
    resources: Float64Array.from(c.r),
    values: Float64Array.from(c.v),
    times: Float64Array.from(c.t),
  }));
  const empty = curves.findIndex((c) => c.resources.length === 0);
  if (empty >= 0) throw bad(curvesPath, ln, `configuration ${empty} has no curve`);
  const maxEpoch = Math.min(...curves.map((c) => c.resources.at(-1) ?? 0));
  return { name: dir.split("/").filter(Boolean).at(-1) ?? dir, curves, configs: { columns, rows }, maxEpoch };
}

/** The curve source of a data set: its configurations as the space, or a user's space mapped to them. */
export function lcbenchSource(data: LcbenchData, space?: SearchSpace): CurveSource {
  return space
    ? nearestSource(data.name, data.curves, data.maxEpoch, data.configs, space)
    : tabularSource(data.name, data.curves, data.maxEpoch);
}
