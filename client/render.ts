// Human views of a task for `phpo show`: header, segments, points, and rung tables.
import type { PointView, TaskDetail } from "../protocol/messages.ts";
import { formatDuration, formatNumber, formatTime, formatValues, renderTable } from "./format.ts";

export interface RungEntry {
  pointId: number;
  loss: number;
  /** Whether the trial also reported at a higher resource level (it was continued or promoted). */
  promoted: boolean;
}
export interface Rung {
  resource: number;
  entries: RungEntry[];
}

/**
 * Rungs from the points' reports: one per resource level that was reported, each listing the
 * trials that reached it, best first (sorted by loss: steering reports losses, smaller is better).
 */
export function rungsOf(points: readonly PointView[]): Rung[] {
  const byLevel = new Map<number, RungEntry[]>();
  for (const p of points) {
    const top = Math.max(...p.reports.map((r) => r.resource));
    for (const r of p.reports) {
      const list = byLevel.get(r.resource) ?? [];
      list.push({ pointId: p.pointId, loss: r.loss, promoted: r.resource < top });
      byLevel.set(r.resource, list);
    }
  }
  return [...byLevel.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([resource, entries]) => ({
      resource,
      entries: entries.sort((a, b) => a.loss - b.loss || a.pointId - b.pointId),
    }));
}

export function renderRungs(rungs: readonly Rung[], resourceKey: string): string {
  const out: string[] = [];
  rungs.forEach((r, i) => {
    out.push(
      `rung ${i}: ${resourceKey} = ${formatNumber(r.resource)}, ${r.entries.length} trial${r.entries.length === 1 ? "" : "s"}`,
    );
    out.push(
      renderTable(
        ["rank", "trial", "loss", "continued"],
        r.entries.map((e, k) => [k + 1, `p${e.pointId}`, e.loss, e.promoted ? "yes" : ""]),
        { indent: "  ", align: ["r", "l", "r", "l"] },
      ).trimEnd(),
    );
  });
  return out.join("\n") + "\n";
}

export function renderPoints(points: readonly PointView[]): string {
  const segmented = points.some((p) => p.segment !== null);
  const headers = [
    "id",
    ...(segmented ? ["segment"] : []),
    "state",
    "loss",
    "attempts",
    "resource",
    "site",
    "values",
  ];
  const rows = points.map((p) => [
    p.pointId,
    ...(segmented ? [p.segment] : []),
    p.state,
    p.loss,
    p.attempts,
    p.resource,
    p.site,
    formatValues(p.values),
  ]);
  return renderTable(headers, rows, {
    align: headers.map((h) => (["id", "loss", "attempts", "resource"].includes(h) ? "r" : "l")),
  });
}

export function renderShow(d: TaskDetail): string {
  const c = d.counts;
  const out: string[] = [];
  const ended =
    d.finishedAt !== null
      ? `, finished ${formatTime(d.finishedAt)} (${formatDuration(d.finishedAt - d.createdAt)})`
      : "";
  out.push(`task ${d.taskId}  ${d.state}  outDS ${d.outDS}`);
  out.push(`created ${formatTime(d.createdAt)}${ended}`);
  out.push(
    `points ${c.points}/${d.maxPoints}: ${c.done} done, ${c.failed} failed, ${c.running} running, ${c.queued} queued; ${c.jobs} jobs`,
  );
  out.push(
    d.best
      ? `best loss ${formatNumber(d.best.loss)} at point ${d.best.pointId}: ${formatValues(d.best.values)}`
      : "best: none yet",
  );
  const sampler = d.spec.steeringExec ? "steeringExec" : (d.spec.sampler?.type ?? "random");
  out.push(`sampler ${sampler}; scheduler ${d.spec.scheduler?.type ?? "none (every point trains fully)"}`);
  if (d.segments.some((s) => s.name !== null)) {
    out.push("", "segments:");
    out.push(
      renderTable(
        ["segment", "points", "best loss"],
        d.segments.map((s) => [s.name, s.points, s.best]),
        { indent: "  " },
      ).trimEnd(),
    );
  }
  out.push("", "points:");
  out.push(d.points.length ? renderPoints(d.points).trimEnd() : "  none yet");
  const failed = d.points.filter((p) => p.error);
  if (failed.length) {
    out.push("", "errors:");
    for (const p of failed) out.push(`  p${p.pointId}: ${p.error}`);
  }
  const missing = d.points.flatMap((p) => (p.missing ?? []).map((m) => ({ pointId: p.pointId, ...m })));
  if (missing.length) {
    out.push("", "missing artifacts (the loss counts without them):");
    for (const m of missing) out.push(`  ${describeMissing(m)}`);
  }
  const rungs = rungsOf(d.points);
  if (rungs.length > 0) {
    out.push("", "rungs (from the reports, best first):");
    out.push(renderRungs(rungs, d.spec.resourceKey).trimEnd());
  }
  return out.join("\n") + "\n";
}

/** One missing artifact as `phpo show` and `phpo download` print it. */
export function describeMissing(m: {
  pointId: number;
  attempt: number;
  kind: string;
  reason: string;
  pending: boolean;
}): string {
  const state = m.pending ? "missing, the agent is still uploading it" : "missing for good";
  return `p${m.pointId} attempt ${m.attempt} ${m.kind}: ${state} (${m.reason})`;
}
