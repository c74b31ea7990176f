// Read models for the client API, derived from a task engine.
import {
  RUNG_VALUES_SHOWN,
  type PointView,
  type TaskDetail,
  type TaskSummary,
} from "../protocol/messages.ts";
import type { PointRec, TaskEngine } from "./engine/taskEngine.ts";

export function summarize(e: TaskEngine): TaskSummary {
  const counts = { points: 0, done: 0, failed: 0, running: 0, queued: 0, jobs: 0 };
  let best: TaskSummary["best"] = null;
  for (const p of e.points.values()) {
    counts.points++;
    counts.jobs += p.attempts;
    if (p.state === "done") counts.done++;
    else if (p.state === "failed") counts.failed++;
    else if (p.state === "running") counts.running++;
    else if (p.state === "queued") counts.queued++;
    if (p.state === "done" && p.loss !== null && (best === null || p.loss < best.loss)) {
      best = { pointId: p.pointId, loss: p.loss, values: p.values };
    }
  }
  return {
    taskId: e.taskId,
    user: e.user,
    outDS: e.spec.outDS,
    state: e.state,
    createdAt: e.createdAt,
    finishedAt: e.finishedAt,
    maxPoints: e.spec.maxPoints * (e.spec.segments?.length ?? 1),
    counts,
    best,
  };
}

function pointView(e: TaskEngine, p: PointRec): PointView {
  return {
    pointId: p.pointId,
    segment: e.segmentName(p.segment),
    values: p.values,
    state: p.state,
    loss: p.loss,
    attempts: p.attempts,
    resource: p.resource,
    reports: p.reports.map(({ resource, loss, metrics, job, attempt, at, site }) => ({
      resource,
      loss,
      metrics,
      job,
      attempt,
      at,
      site,
    })),
    history: p.history,
    site: p.site,
    agent: p.agent,
    error: p.error,
    metricsKeys: p.metricsKeys,
    logKeys: p.logKeys,
    checkpointKey: p.checkpointKey,
    ...(p.trial === null ? {} : { trial: p.trial, target: p.job.target, jobs: p.jobs }),
  };
}

/** A page of a reply stays under this many bytes of points (NATS's max_payload is 1 MiB). */
export const POINTS_PAGE_BYTES = 512 * 1024;

/** The task with one page of its points: from `from`, at most `limit`, at most POINTS_PAGE_BYTES. */
export function detail(
  e: TaskEngine,
  from = 0,
  limit = Number.POSITIVE_INFINITY,
  rungValues = RUNG_VALUES_SHOWN,
): TaskDetail {
  const points = [...e.points.values()].sort((a, b) => a.pointId - b.pointId);
  const page: PointView[] = [];
  let bytes = 0;
  let i = from;
  for (; i < points.length && page.length < limit; i++) {
    const v = pointView(e, points[i]!);
    bytes += JSON.stringify(v).length;
    // at least one point per page, so a page always moves on
    if (bytes > POINTS_PAGE_BYTES && page.length > 0) break;
    page.push(v);
  }
  const segments = e.segmentNames.map((name, i) => {
    const mine = points.filter((p) => p.segment === i);
    const losses = mine.filter((p) => p.state === "done" && p.loss !== null).map((p) => p.loss as number);
    return { name, points: mine.length, best: losses.length ? Math.min(...losses) : null };
  });
  const rungs = e.schedulers
    ? e.rungs().map((r) => {
        const values = r.values.filter(Number.isFinite);
        return {
          segment: e.segmentName(r.segment),
          level: r.level,
          values: values.slice(0, rungValues), // best first: the best ones are kept
          count: values.length,
        };
      })
    : undefined;
  return {
    ...summarize(e),
    spec: e.spec,
    points: page,
    pointsFrom: from,
    pointsNext: i < points.length ? i : null,
    segments,
    ...(rungs ? { rungs } : {}),
  };
}
