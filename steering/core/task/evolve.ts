// The fold of one task's log events into its state (TaskData): evolve(t, ev) is the only writer.
// The switch over the event types is exhaustive: an event type added to core/events.ts and not
// handled here is a compile error (the `unreachable` guard), so replay never drops one silently.
import { unreachable } from "../../../protocol/errors.ts";
import type { LogEvent, LogEventOf } from "../events.ts";
import { endQueued, feed, jobFinished, jobLost, requeue } from "./attemptOutcome.ts";
import { newPoint, type PointRec } from "./records.ts";
import type { TaskData } from "./taskData.ts";

/** Folds one logged event of the task into its state, and keeps the point indexes up to date. */
export function evolve(t: TaskData, ev: LogEvent): void {
  // the point of a job event, found before the fold (a retry or promotion renames the job)
  const touched = "jobId" in ev ? t.jobs.get(ev.jobId) : undefined;
  fold(t, ev);
  if (touched) t.index.update(touched);
  else if (ev.type === "points-added") for (const { pointId } of ev.points) reindex(t, pointId);
  else if (ev.type === "trial-suggested") reindex(t, ev.pointId);
  else if (ev.type === "points-requeued") for (const id of ev.pointIds) reindex(t, id);
  else if (ev.type === "task-state") for (const p of t.points.values()) t.index.update(p);
}

function reindex(t: TaskData, pointId: number): void {
  const p = t.points.get(pointId);
  if (p) t.index.update(p);
}

function fold(t: TaskData, ev: LogEvent): void {
  // "suggest() said wait with nothing running" only holds until the next event
  if (t.schedulers) for (const s of t.schedulers) s.stalled = false;
  switch (ev.type) {
    case "task-created":
      return;
    case "points-added":
      return pointsAdded(t, ev);
    case "job-dispatched": {
      const p = t.current(ev.jobId, ev.attempt);
      if (!p || p.job.state !== "queued") return;
      Object.assign(p.job, { state: "dispatched", site: ev.site, agent: null, dispatchedAt: ev.at });
      p.attempts++;
      t.attemptsUsed[p.segment] = (t.attemptsUsed[p.segment] ?? 0) + 1;
      return;
    }
    case "job-claimed": {
      const p = t.current(ev.jobId, ev.attempt);
      if (!p || p.job.state !== "dispatched") return;
      Object.assign(p.job, { state: "running", agent: ev.agent, claimedAt: ev.at });
      Object.assign(p, { state: "running", site: ev.site, agent: ev.agent });
      return;
    }
    case "job-progress":
      return jobProgress(t, ev);
    case "job-checkpoint": {
      const p = t.current(ev.jobId, ev.attempt);
      if (!p) return;
      p.checkpointKey = ev.artifact.key;
      p.checkpointResource = ev.resource;
      return;
    }
    case "job-finished":
      return jobFinished(t, ev);
    case "job-artifact":
      return lateArtifact(t, ev);
    case "job-lost":
      return jobLost(t, ev);
    case "task-state":
      t.state = ev.state;
      if (ev.state === "killed" || ev.state === "finished") {
        t.finishedAt = ev.at;
        for (const p of t.points.values()) if (p.state === "queued") endQueued(t, p, ev.state);
      }
      return;
    case "points-requeued":
      return pointsRequeued(t, ev);
    case "trial-suggested":
      return trialSuggested(t, ev);
    case "steering-iteration":
      return t.steering.apply(ev);
    default:
      return unreachable(ev, "log event");
  }
}

function pointsAdded(t: TaskData, ev: LogEventOf<"points-added">): void {
  const seg = t.segments[ev.segment];
  if (!seg) return;
  seg.restore(ev.sampler, ev.points.length, ev.exhausted, ev.more);
  for (const { pointId, values } of ev.points)
    addPoint(t, newPoint(t.taskId, pointId, ev.segment, values, null, null));
}

function addPoint(t: TaskData, p: PointRec): void {
  t.points.set(p.pointId, p);
  t.jobs.set(p.job.jobId, p);
  t.nextPointId = Math.max(t.nextPointId, p.pointId + 1);
}

function jobProgress(t: TaskData, ev: LogEventOf<"job-progress">): void {
  const p = t.current(ev.jobId, ev.attempt);
  if (!p) return;
  const loss = ev.metrics.loss;
  const { seq: job, attempt, site, agent } = p.job;
  // a redelivered report (steering crashed between storing and acking it), or one the
  // agent sent twice, is stored twice in the log: the rung table shows it once
  const last = p.reports.at(-1);
  const repeated = last?.job === job && last.attempt === attempt && ev.resource <= last.resource;
  if (loss !== undefined && !repeated) {
    p.reports.push({
      resource: ev.resource,
      loss,
      metrics: ev.metrics,
      job,
      attempt,
      at: ev.at,
      site,
      agent,
    });
  }
  p.resource = Math.max(p.resource ?? 0, ev.resource);
  feed(t, p, ev.resource, ev.metrics);
}

/** A missing artifact arrived (its key is recorded) or was given up (its reason is kept). */
function lateArtifact(t: TaskData, ev: LogEventOf<"job-artifact">): void {
  const p = t.pointOfAnyJob(ev.jobId);
  const i =
    p?.missing.findIndex(
      (m) => m.jobId === ev.jobId && m.attempt === ev.attempt && m.kind === ev.kind && m.pending,
    ) ?? -1;
  if (!p || i < 0) return;
  if (ev.artifact === null) {
    Object.assign(p.missing[i]!, { pending: false, reason: ev.reason ?? p.missing[i]!.reason });
    return;
  }
  p.missing.splice(i, 1);
  if (ev.kind === "metrics") p.metricsKeys.push(ev.artifact.key);
  if (ev.kind === "log") p.logKeys.push(ev.artifact.key);
}

function pointsRequeued(t: TaskData, ev: LogEventOf<"points-requeued">): void {
  // A killed task stays killed: steering refuses a retry of one, and a log from before it
  // did may hold a requeue behind a kill, which replays as nothing (its points would only
  // wait forever, since a killed task dispatches nothing).
  if (t.state === "killed") return;
  for (const id of ev.pointIds) {
    const p = t.points.get(id);
    if (!p || (p.state !== "failed" && p.state !== "cancelled" && p.state !== "budget-spent")) continue;
    requeue(t, p, p.job.seq + 1, 1);
    p.state = "queued";
    p.failures = 0;
    p.siteFailures = 0;
    p.failureClass = null;
    p.loss = null;
    p.error = null;
    p.errorCode = null;
  }
  if (t.state === "finished") {
    t.state = "running";
    t.finishedAt = null;
  }
}

// A recorded suggestion: the scheduler confirms it (replay re-runs suggest()), then a new point
// gets its first job, or a paused point a new job (seq + 1, attempt 1) to the next milestone.
function trialSuggested(t: TaskData, ev: LogEventOf<"trial-suggested">): void {
  const sched = t.schedulers?.[ev.segment];
  const seg = t.segments[ev.segment];
  if (!sched || !seg || !sched.confirm(ev.suggestion, ev.pointId)) return;
  const s = ev.suggestion;
  const target = sched.targetOf(s);
  if (s.action === "new") {
    seg.restore(ev.sampler, ev.values ? 1 : 0, ev.exhausted);
    if (ev.values === null) {
      // the sampler had nothing left for a trial the scheduler had already created
      sched.fail(s.trial);
      t.nextPointId = Math.max(t.nextPointId, ev.pointId + 1);
      return;
    }
    addPoint(t, newPoint(t.taskId, ev.pointId, ev.segment, ev.values, target, s.trial));
    return;
  }
  const p = t.points.get(ev.pointId);
  if (!p || p.state !== "paused") {
    sched.fault ??= `promotion of ${s.trial}: point ${ev.pointId} is not paused`;
    return;
  }
  requeue(t, p, p.job.seq + 1, 1);
  Object.assign(p.job, { target, stop: null, stopLoss: null, stopResource: null, decision: null });
  Object.assign(p, {
    state: "queued",
    failures: 0,
    siteFailures: 0,
    error: null,
    errorCode: null,
    failureClass: null,
  });
  p.jobs++;
}
