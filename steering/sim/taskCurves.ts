// A finished gridtune task's own reports as curves ("what would ASHA have saved on the task I
// just ran without it?"). Each point's reports give its loss per resource level; the time of a
// level is when its report arrived, counted from the start of the attempt that sent it, plus the
// time of the levels earlier jobs of the point had trained (a promoted job resumes).
import { ValidationError } from "../../protocol/errors.ts";
import type { TaskDetail } from "../../protocol/api.ts";
import { tabularSource, type Curve, type CurveSource } from "./curves.ts";

export interface TaskCurves {
  source: CurveSource;
  /** Point ids behind the curves, in curve order. */
  pointIds: number[];
  /** Points left out: no timed reports, or trained short of the full level. */
  dropped: number;
}

export function taskCurves(d: TaskDetail): TaskCurves {
  const raw: Array<{ pointId: number; r: number[]; v: number[]; t: number[] }> = [];
  for (const p of d.points) {
    const starts = new Map<string, number>();
    for (const h of p.history ?? [])
      if (h.startedAt !== null) starts.set(`${h.job}/${h.attempt}`, h.startedAt);
    const reports = [...p.reports]
      .filter((x) => x.at !== undefined && Number.isFinite(x.loss))
      .sort((a, b) => a.resource - b.resource || (a.at ?? 0) - (b.at ?? 0));
    const c = { pointId: p.pointId, r: [] as number[], v: [] as number[], t: [] as number[] };
    let offset = 0; // seconds trained by the point's earlier jobs
    let job: number | undefined;
    let lastT = 0;
    let ok = reports.length > 0;
    for (const x of reports) {
      if (x.resource <= (c.r.at(-1) ?? Number.NEGATIVE_INFINITY)) continue; // a retry re-reported it
      const start = starts.get(`${x.job ?? 0}/${x.attempt ?? 1}`);
      if (start === undefined) {
        ok = false;
        break;
      }
      if (x.job !== job) {
        offset = lastT;
        job = x.job;
      }
      const t = offset + Math.max(0, ((x.at ?? start) - start) / 1000);
      lastT = Math.max(lastT, t);
      c.r.push(x.resource);
      c.v.push(x.loss);
      c.t.push(lastT);
    }
    if (ok) raw.push(c);
  }
  if (raw.length === 0)
    throw new ValidationError(
      "NOT_FOUND",
      `task ${d.taskId} has no timed progress reports to simulate from: a task without a scheduler does ` +
        `not forward them; run it with "scheduler": {"type": "fifo", "max_t": <epochs>} to record its learning curves`,
    );
  const full = Math.max(...raw.map((c) => c.r.at(-1) ?? 0));
  const kept = raw.filter((c) => (c.r.at(-1) ?? 0) >= full);
  if (kept.length < 2)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `task ${d.taskId}: only ${kept.length} point(s) trained to the full level ${full}; the simulator needs ` +
        `at least 2 complete curves (points stopped early cannot say what the rest of their training costs)`,
    );
  const curves: Curve[] = kept.map((c, id) => ({
    id,
    resources: Float64Array.from(c.r),
    values: Float64Array.from(c.v),
    times: Float64Array.from(c.t),
  }));
  return {
    source: tabularSource(`task ${d.taskId}`, curves, full),
    pointIds: kept.map((c) => c.pointId),
    dropped: d.points.length - kept.length,
  };
}
