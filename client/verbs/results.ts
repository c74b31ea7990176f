// phpo results TASK [--csv | --json]: one row per report (the loss at a resource level) and one row
// per point's final loss, with the point's hyperparameters, for pandas, R or a spreadsheet.
import type { TaskDetail } from "../../protocol/messages.ts";
import type { VerbContext } from "../context.ts";
import { printJson } from "../io.ts";
import { fetchDetail, parseTaskArg } from "./common.ts";

export interface ResultRow {
  taskId: string;
  pointId: number;
  segment: string | null;
  /** "report": an intermediate (or final-resource) report; "final": the point's registered loss. */
  row: "report" | "final";
  resource: number | null;
  loss: number | null;
  attempts: number;
  state: string;
  site: string | null;
  values: Record<string, string | number | boolean | null>;
}

export function resultRows(d: TaskDetail): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const p of d.points) {
    const base = {
      taskId: d.taskId,
      pointId: p.pointId,
      segment: p.segment,
      attempts: p.attempts,
      state: p.state,
      site: p.site,
      values: p.values,
    };
    for (const r of [...p.reports].sort((a, b) => a.resource - b.resource))
      rows.push({ ...base, row: "report", resource: r.resource, loss: r.loss });
    rows.push({ ...base, row: "final", resource: p.resource, loss: p.loss });
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
  for (const r of rows) for (const k of Object.keys(r.values)) if (!params.includes(k)) params.push(k);
  const head = [
    "task_id",
    "point_id",
    "segment",
    "row",
    "resource",
    "loss",
    "attempts",
    "state",
    "site",
    ...params,
  ];
  const lines = rows.map((r) =>
    [
      r.taskId,
      r.pointId,
      r.segment,
      r.row,
      r.resource,
      r.loss,
      r.attempts,
      r.state,
      r.site,
      ...params.map((k) => r.values[k]),
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
