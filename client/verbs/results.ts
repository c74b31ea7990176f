// phpo results TASK [--csv | --json]: one row per report (the loss at a resource level) and one row
// per point's final loss, with the point's hyperparameters, for pandas, R or a spreadsheet.
import type { TaskDetail } from "../../protocol/api.ts";
import type { VerbContext } from "../context.ts";
import { printJson } from "../io.ts";
import { fetchDetail, parseTaskArg } from "./common.ts";

export interface ResultRow {
  taskId: string;
  pointId: number;
  segment: string | null;
  /** "report": an intermediate (or final-resource) report; "final": the point's registered loss. */
  row: "report" | "final";
  /** The job (1 + promotions) and attempt that produced the row, when known. */
  job: number | null;
  attempt: number | null;
  resource: number | null;
  loss: number | null;
  /** ISO times: when a report arrived; when the final attempt started and finished. */
  time: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
  state: string;
  site: string | null;
  values: Record<string, string | number | boolean | null>;
  metrics: Record<string, number>;
}

const iso = (t: number | null | undefined): string | null =>
  typeof t === "number" ? new Date(t).toISOString() : null;

export function resultRows(d: TaskDetail): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const p of d.points) {
    const base = {
      taskId: d.taskId,
      pointId: p.pointId,
      segment: p.segment,
      attempts: p.attempts,
      state: p.state,
      values: p.values,
    };
    const reports = [...p.reports].sort((a, b) => (a.at ?? 0) - (b.at ?? 0) || a.resource - b.resource);
    for (const r of reports) {
      rows.push({
        ...base,
        row: "report",
        job: r.job ?? null,
        attempt: r.attempt ?? null,
        resource: r.resource,
        loss: r.loss,
        time: iso(r.at),
        startedAt: null,
        finishedAt: null,
        site: r.site ?? p.site,
        metrics: r.metrics ?? { loss: r.loss },
      });
    }
    // The attempt that registered the point's loss: the last one that ended (ok, or its last failure).
    const last = p.history?.at(-1);
    rows.push({
      ...base,
      row: "final",
      job: last?.job ?? null,
      attempt: last?.attempt ?? null,
      resource: p.resource,
      loss: p.loss,
      time: null,
      startedAt: iso(last?.startedAt),
      finishedAt: iso(last?.finishedAt),
      site: last?.site ?? p.site,
      metrics: p.loss === null ? {} : { loss: p.loss },
    });
  }
  return rows;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s =
    typeof v === "string"
      ? v
      : typeof v === "number" || typeof v === "boolean"
        ? String(v)
        : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function resultsCsv(rows: readonly ResultRow[]): string {
  const params: string[] = [];
  const metrics: string[] = [];
  for (const r of rows) {
    for (const k of Object.keys(r.values)) if (!params.includes(k)) params.push(k);
    for (const k of Object.keys(r.metrics)) if (k !== "loss" && !metrics.includes(k)) metrics.push(k);
  }
  const head = [
    "task_id",
    "point_id",
    "segment",
    "row",
    "job",
    "attempt",
    "resource",
    "loss",
    "time",
    "started_at",
    "finished_at",
    "attempts",
    "state",
    "site",
    ...params,
    ...metrics.map((m) => `metric_${m}`),
  ];
  const lines = rows.map((r) =>
    [
      r.taskId,
      r.pointId,
      r.segment,
      r.row,
      r.job,
      r.attempt,
      r.resource,
      r.loss,
      r.time,
      r.startedAt,
      r.finishedAt,
      r.attempts,
      r.state,
      r.site,
      ...params.map((k) => r.values[k]),
      ...metrics.map((m) => r.metrics[m]),
    ]
      .map(csvCell)
      .join(","),
  );
  return [head.join(","), ...lines].join("\n") + "\n";
}

export async function resultsVerb(ctx: VerbContext, task: string): Promise<number> {
  const rows = resultRows(await fetchDetail(ctx, parseTaskArg(task)));
  if (ctx.json) printJson(ctx.io, rows);
  else ctx.io.stdout.write(resultsCsv(rows));
  return 0;
}
