// Human views of a task for `phpo show`: header, segments, points, and rung tables.
import { unreachable } from "../protocol/errors.ts";
import type { FailureClass } from "../protocol/failures.ts";
import type { PointView, TaskDetail, TaskSummary } from "../protocol/api.ts";
import { formatDuration, formatNumber, formatTime, formatValues, renderTable } from "./format.ts";
import { renderSteering } from "./steeringView.ts";

export interface RungEntry {
  pointId: number;
  loss: number;
  /** The resource of the report recorded at the rung (the first at or past its level). */
  resource: number;
  /** Whether the trial went on to the next rung (it was continued or promoted). */
  promoted: boolean;
}
export interface RungTable {
  segment: string | null;
  resource: number;
  entries: RungEntry[];
  /** How many values the scheduler recorded at the rung (undefined: not said). */
  recorded: number | undefined;
}

/**
 * The scheduler's rungs (`d.rungs`: its real levels, none for FIFO or a task without a scheduler),
 * each listing the trials whose reports reached it, best first (steering reports losses, smaller
 * is better). A trial is recorded at a rung with its first report at or past the level, as the
 * schedulers record it.
 */
export function rungsOf(d: Pick<TaskDetail, "rungs" | "points">): RungTable[] {
  const levels = new Map<string | null, Map<number, number>>();
  for (const r of d.rungs ?? []) {
    const mine = levels.get(r.segment) ?? new Map<number, number>();
    // Hyperband brackets have rungs of their own at one level: one table per level
    mine.set(r.level, (mine.get(r.level) ?? 0) + (r.count ?? r.values.length));
    levels.set(r.segment, mine);
  }
  const out: RungTable[] = [];
  for (const [segment, byLevel] of levels) {
    const sorted = [...byLevel.keys()].sort((a, b) => a - b);
    sorted.forEach((level, i) => {
      const next = sorted[i + 1] ?? Number.POSITIVE_INFINITY;
      const entries: RungEntry[] = [];
      for (const p of d.points) {
        if (p.segment !== segment) continue;
        const at = p.reports.find((r) => r.resource >= level);
        if (!at) continue;
        const top = Math.max(...p.reports.map((r) => r.resource));
        // past the top rung, "continued" means it trained on beyond it (towards max_t)
        const promoted = Number.isFinite(next) ? top >= next : top > at.resource;
        entries.push({ pointId: p.pointId, loss: at.loss, resource: at.resource, promoted });
      }
      entries.sort((a, b) => a.loss - b.loss || a.pointId - b.pointId);
      out.push({ segment, resource: level, entries, recorded: byLevel.get(level) });
    });
  }
  return out;
}

export function renderRungs(rungs: readonly RungTable[], resourceKey: string): string {
  const out: string[] = [];
  let last: string | null | undefined;
  let i = 0;
  for (const r of rungs) {
    if (r.segment !== last) [last, i] = [r.segment, 0];
    const seg = r.segment === null ? "" : `segment ${r.segment}, `;
    const n = r.entries.length;
    out.push(
      `rung ${i++}: ${seg}${resourceKey} = ${formatNumber(r.resource)}, ${n} trial${n === 1 ? "" : "s"}`,
    );
    if (n === 0) continue;
    out.push(
      renderTable(
        ["rank", "trial", "loss", "continued"],
        r.entries.map((e, k) => [k + 1, `p${e.pointId}`, e.loss, e.promoted ? "yes" : ""]),
        { indent: "  ", align: ["r", "l", "r", "l"] },
      ).trimEnd(),
    );
  }
  return out.join("\n") + "\n";
}

/**
 * The resource trained in all, from the reports: an attempt that reports past everything the
 * point reported before resumed (from its checkpoint) and trained only the difference; one that
 * reports a level again started over and trained from 0. Exact when the payload reports every unit.
 */
export function resourceTrained(points: readonly PointView[]): number {
  let total = 0;
  for (const p of points) {
    let before = 0;
    const groups = new Map<string, number[]>();
    for (const r of p.reports) {
      const key = `${r.job ?? 0}/${r.attempt ?? 0}`;
      groups.set(key, [...(groups.get(key) ?? []), r.resource]);
    }
    for (const levels of groups.values()) {
      const first = levels[0] ?? 0;
      const top = Math.max(...levels);
      total += first > before ? top - before : top;
      before = Math.max(before, top);
    }
  }
  return total;
}

/** The resource a trial trains to when nothing stops it (the scheduler's max_t), if it has one. */
export function fullResource(spec: TaskDetail["spec"]): number | null {
  const s = spec.scheduler;
  if (!s) return null;
  if ("max_t" in s && typeof s.max_t === "number") return s.max_t;
  if ("max_time" in s && typeof s.max_time === "number") return s.max_time;
  return null;
}

/** "trained 81 epochs in all, against 729 to train all 27 trials fully: 89% saved". */
export function computeSaved(d: TaskDetail): string | null {
  const full = fullResource(d.spec);
  if (full === null || d.points.length === 0 || d.pointsNext !== null || d.pointsFrom !== 0) return null;
  const trained = resourceTrained(d.points);
  const all = full * d.points.length;
  const saved = all > 0 ? Math.round((100 * (all - trained)) / all) : 0;
  const k = d.spec.resourceKey;
  return `trained ${formatNumber(trained)} ${k} in all, against ${formatNumber(all)} to train all ${d.points.length} trials to ${formatNumber(full)}: ${saved}% saved`;
}

/** The loss and resource of a point's last report, when it differs from the point's own. */
function lastReport(p: PointView): string {
  const r = p.reports.at(-1);
  if (!r) return "";
  return `${formatNumber(r.loss)} @ ${formatNumber(r.resource)}`;
}

export function renderPoints(points: readonly PointView[], scheduled = false): string {
  const segmented = points.some((p) => p.segment !== null);
  const headers = [
    "id",
    ...(segmented ? ["segment"] : []),
    "state",
    "loss",
    "resource",
    ...(scheduled ? ["last report"] : []),
    "attempts",
    ...(scheduled ? ["jobs"] : []),
    "site",
    "values",
  ];
  const rows = points.map((p) => [
    p.pointId,
    ...(segmented ? [p.segment] : []),
    p.state,
    p.loss,
    p.resource,
    ...(scheduled ? [lastReport(p)] : []),
    p.attempts,
    ...(scheduled ? [p.jobs ?? 1] : []),
    p.site,
    formatValues(p.values),
  ]);
  return renderTable(headers, rows, {
    align: headers.map((h) =>
      ["id", "loss", "attempts", "jobs", "resource", "last report"].includes(h) ? "r" : "l",
    ),
  });
}

/** "budget spent (20/20 jobs)" once a segment has dispatched its maxEvaluationJobs, else null. */
export function budgetNote(s: TaskSummary): string | null {
  return s.budget?.spent ? `budget spent (${s.budget.used}/${s.budget.limit} jobs)` : null;
}

/** "27 points: 1 done, 0 failed, 20 stopped, 6 paused, …": every state, adding up to the points. */
export function countsLine(s: TaskSummary): string {
  const c = s.counts;
  const parts = [`${c.done} done`, `${c.failed} failed`];
  if (c.stopped) parts.push(`${c.stopped} stopped`);
  if (c.paused) parts.push(`${c.paused} paused`);
  if (c.budgetSpent) parts.push(`${c.budgetSpent} budget-spent`);
  parts.push(`${c.running} running`, `${c.queued} queued`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  const jobs = c.pointJobs > c.points ? `${c.pointJobs} jobs, ` : "";
  const budget = budgetNote(s);
  return `${c.points}/${s.maxPoints} points: ${parts.join(", ")}; ${jobs}${c.jobs} attempts dispatched${budget ? `; ${budget}` : ""}`;
}

export function renderShow(d: TaskDetail): string {
  const out: string[] = [];
  const ended =
    d.finishedAt !== null
      ? `, finished ${formatTime(d.finishedAt)} (${formatDuration(d.finishedAt - d.createdAt)})`
      : "";
  out.push(`task ${d.taskId}  ${d.state}  outDS ${d.outDS}`);
  out.push(`created ${formatTime(d.createdAt)}${ended}`);
  out.push(countsLine(d));
  const scheduled = d.spec.scheduler !== undefined;
  const at = (id: number) => {
    const p = d.points.find((x) => x.pointId === id);
    return scheduled && p?.resource != null ? ` (${d.spec.resourceKey} ${formatNumber(p.resource)})` : "";
  };
  out.push(
    d.best
      ? `best loss ${formatNumber(d.best.loss)} at point ${d.best.pointId}${at(d.best.pointId)}: ${formatValues(d.best.values)}`
      : "best: none yet",
  );
  const sampler = d.spec.steeringExec ? "steeringExec" : (d.spec.sampler?.type ?? "random");
  out.push(`sampler ${sampler}; scheduler ${d.spec.scheduler?.type ?? "none (every point trains fully)"}`);
  const saved = computeSaved(d);
  if (saved) out.push(saved);
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
  out.push(d.points.length ? renderPoints(d.points, scheduled).trimEnd() : "  none yet");
  const failed = d.points.filter((p) => p.error);
  if (failed.length) {
    out.push("", "errors:");
    for (const p of failed)
      out.push(`  p${p.pointId}${p.failureClass ? ` [${failureLabel(p.failureClass)}]` : ""}: ${p.error}`);
  }
  const missing = d.points.flatMap((p) => (p.missing ?? []).map((m) => ({ pointId: p.pointId, ...m })));
  if (missing.length) {
    out.push("", "missing artifacts (the loss counts without them):");
    for (const m of missing) out.push(`  ${describeMissing(m)}`);
  }
  out.push(...renderSteering(d));
  const rungs = rungsOf(d);
  if (rungs.length > 0) {
    out.push(
      "",
      "rungs (the scheduler's levels; each trial's first report at or past the level, best first):",
    );
    out.push(renderRungs(rungs, d.spec.resourceKey).trimEnd());
  }
  return out.join("\n") + "\n";
}

/** A failure class in words, as `phpo show` prints it beside the point's reason. */
export function failureLabel(c: FailureClass): string {
  switch (c) {
    case "payload":
      return "payload error";
    case "image":
      return "image missing or refused";
    case "oom":
      return "out of memory";
    case "timeout":
      return "wall-clock limit";
    case "preempted":
      return "preempted";
    case "node-lost":
      return "node lost";
    case "infrastructure":
      return "infrastructure";
    default:
      return unreachable(c, "failure class");
  }
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
