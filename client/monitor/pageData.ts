// What the task page is sent: the task without its reports, the learning curves of one metric as
// uPlot draws them (the union of the reported resources, one row of values per point), and the
// ladder with each rung's values and fates as plain arrays. A 10,000-trial × 20-report task is
// 40 MB as `show` JSON, a few MB in this form; a point's page asks for the point in full.
import type { PointView, TaskDetail } from "../../protocol/api.ts";
import type { Ladder, RungFate } from "./ladder.ts";

/** Significant digits of a curve value: enough to draw and to read in the tip. */
const CURVE_DIGITS = 6;
/** Trials listed by name per rung (all of them are drawn). */
const RUNG_TRIALS_LISTED = 200;
/** Most metric names offered (a payload may report many). */
const MAX_METRIC_NAMES = 32;

/** An ended attempt, as an array: [startedAt, finishedAt, status, loss, site, agent]. */
export type PageRun = [number | null, number, string, number | null, string | null, string | null];

/** What the task page uses of a point (its own page asks for the rest). */
export type PagePoint = Pick<
  PointView,
  "pointId" | "segment" | "values" | "state" | "loss" | "attempts" | "site" | "agent" | "error"
> & { trial: string | null; nReports: number; firstReportAt: number | null; runs: PageRun[] };

/** A point's error as the points table filters on it (its page shows it whole). */
const ERROR_CHARS = 300;

export interface PageCurves {
  metric: string;
  metrics: string[];
  x: number[];
  /** One row per point, in the points' order; null where the point did not report at that x. */
  y: (number | null)[][];
}

const FATES: readonly RungFate[] = ["promoted", "stopped", "waiting", "running"];

export interface PageLadder extends Omit<Ladder, "rungs"> {
  rungs: {
    segment: string | null;
    level: number;
    recorded: number;
    cutoff: number | null;
    counts: Record<RungFate, number>;
    /** Best first, every trial at the rung. */
    values: number[];
    /** Index into `fates` per value. */
    fate: number[];
    /** The best RUNG_TRIALS_LISTED, with their names. */
    top: Ladder["rungs"][number]["trials"];
  }[];
  fates: readonly RungFate[];
}

export interface TaskPage {
  task: Omit<TaskDetail, "points"> & { points: PagePoint[] };
  curves: PageCurves;
  ladder: PageLadder | null;
}

const round = (v: number) => Number(v.toPrecision(CURVE_DIGITS));

function metricOf(r: PointView["reports"][number], metric: string): number | undefined {
  return metric === "loss" ? r.loss : r.metrics?.[metric];
}

export function taskPage(d: TaskDetail, ladder: Ladder | null, metric: string): TaskPage {
  const names = new Set<string>(["loss"]);
  const xs = new Set<number>();
  for (const p of d.points) {
    for (const r of p.reports) {
      xs.add(r.resource);
      if (names.size < MAX_METRIC_NAMES && r.metrics) for (const k of Object.keys(r.metrics)) names.add(k);
    }
  }
  const x = [...xs].sort((a, b) => a - b);
  const column = new Map(x.map((v, i) => [v, i]));
  const y = d.points.map((p) => {
    const row = new Array<number | null>(x.length).fill(null);
    for (const r of p.reports) {
      const v = metricOf(r, metric);
      if (v !== undefined && Number.isFinite(v)) row[column.get(r.resource) as number] = round(v);
    }
    return row;
  });
  const points = d.points.map((p): PagePoint => {
    let first: number | null = null;
    for (const r of p.reports) if (r.at !== undefined && (first === null || r.at < first)) first = r.at;
    return {
      pointId: p.pointId,
      segment: p.segment,
      values: p.values,
      state: p.state,
      loss: p.loss,
      attempts: p.attempts,
      site: p.site,
      agent: p.agent,
      error: p.error === null ? null : p.error.slice(0, ERROR_CHARS),
      trial: p.trial ?? null,
      nReports: p.reports.length,
      firstReportAt: first,
      runs: (p.history ?? []).map((a) => [a.startedAt, a.finishedAt, a.status, a.loss, a.site, a.agent]),
    };
  });
  return {
    task: { ...d, points },
    curves: { metric, metrics: [...names], x, y },
    ladder: ladder && {
      ...ladder,
      fates: FATES,
      rungs: ladder.rungs.map(({ trials, ...r }) => ({
        ...r,
        values: trials.map((t) => round(t.value)),
        fate: trials.map((t) => FATES.indexOf(t.fate)),
        top: trials.slice(0, RUNG_TRIALS_LISTED),
      })),
    },
  };
}
