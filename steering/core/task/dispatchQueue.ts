// What the dispatcher asks of a task on every pump: the next job to dispatch (FIFO by point,
// within nParallelEvaluation and maxEvaluationJobs, after each retry's back-off), whether the task
// is over, which running attempts must be told to stop, the budget, and whether a retry fits it.
// Pure reads of the task's state.
import type { JobRec, PointRec, StopRequest } from "./records.ts";
import type { TaskData } from "./taskData.ts";

/** When a queued job may be dispatched (the retry back-off); 0 for at once. */
export type ReadyAt = (p: PointRec) => number;

/** A segment whose maxEvaluationJobs cannot run the points a retry asks for (requeueShortfall). */
export interface Shortfall {
  segment: number;
  points: number;
  used: number;
  limit: number;
  queued: number;
}

/**
 * The next job to dispatch at `now`, skipping retries whose back-off (`readyAt`) has not passed;
 * `wakeAt` is the earliest time one of those becomes ready.
 */
export function nextReady(
  t: TaskData,
  now: number,
  readyAt: ReadyAt,
): { job: JobRec | null; wakeAt: number | null } {
  if (t.state !== "running" || t.inFlight() >= t.spec.nParallelEvaluation) return { job: null, wakeAt: null };
  const budget = t.task.maxEvaluationJobs;
  // FIFO by point: the lowest point id among the ready queued jobs with budget left
  let first: PointRec | null = null;
  let wakeAt: number | null = null;
  for (const p of t.index.queued) {
    if (t.attemptsUsedIn(p.segment) >= budget) continue;
    const at = readyAt(p);
    if (at > now) wakeAt = Math.min(wakeAt ?? at, at);
    else if (first === null || p.pointId < first.pointId) first = p;
  }
  return { job: first?.job ?? null, wakeAt };
}

/** True when nothing more will happen: all sampling over and no job queued or in flight. */
export function isComplete(t: TaskData): boolean {
  if (t.state !== "running") return false;
  if (t.inFlight() > 0) return false;
  const budget = t.task.maxEvaluationJobs;
  for (let i = 0; i < t.segments.length; i++) {
    const queued = [...t.index.queued].some((p) => p.segment === i);
    const budgetLeft = t.attemptsUsedIn(i) < budget;
    if (queued && budgetLeft) return false;
    const sched = t.schedulers?.[i];
    const over = sched
      ? sched.fault !== null || sched.stalled || sched.isDone()
      : t.segments[i]!.finishedSampling(t.spec);
    if (budgetLeft && !over) return false;
  }
  return true;
}

/** Running attempts whose scheduler decided to stop them: the agents must be told (again). */
export function stopRequests(t: TaskData): Array<{ job: JobRec; reason: StopRequest }> {
  const out: Array<{ job: JobRec; reason: StopRequest }> = [];
  // in point order, as a walk over the points would give
  for (const p of [...t.index.active].sort((a, b) => a.pointId - b.pointId))
    if (p.job.stop && p.job.state === "running") out.push({ job: p.job, reason: p.job.stop });
  return out;
}

/** maxEvaluationJobs over all segments: attempts dispatched, the limit, and whether a segment spent its own. */
export function budget(t: TaskData): { used: number; limit: number; spent: boolean } {
  const per = t.task.maxEvaluationJobs;
  return {
    used: t.attemptsUsed.reduce((a, b) => a + b, 0),
    limit: per * t.attemptsUsed.length,
    spent: t.attemptsUsed.some((_, i) => t.budgetSpentIn(i)),
  };
}

/**
 * The segments whose maxEvaluationJobs cannot run these points again (retry): each needs one
 * more job at least, and the points already queued in the segment need theirs. A point requeued
 * beyond the budget is never dispatched and ends cancelled, its failure record lost, so a retry
 * is refused unless every segment can run its points. Empty when all fit.
 */
export function requeueShortfall(t: TaskData, pointIds: readonly number[]): Shortfall[] {
  const limit = t.task.maxEvaluationJobs;
  const wanted = new Map<number, number>();
  for (const id of pointIds) {
    const p = t.points.get(id);
    if (p) wanted.set(p.segment, (wanted.get(p.segment) ?? 0) + 1);
  }
  const short: Shortfall[] = [];
  for (const [segment, points] of [...wanted].sort((a, b) => a[0] - b[0])) {
    const used = t.attemptsUsedIn(segment);
    const queued = [...t.index.queued].filter((p) => p.segment === segment).length;
    if (used + queued + points > limit) short.push({ segment, points, used, limit, queued });
  }
  return short;
}
