// How an attempt ends and what that does to its point, its trial and the task: a result (done,
// paused at a milestone, stopped, handed back), a failure or a loss (retried while attempts
// remain), or the task ending around a queued point. Called by the fold (evolve.ts) only.
import type { ErrorCode } from "../../../protocol/errors.ts";
import {
  classOfError,
  countsAgainstAttempts,
  MAX_SITE_FAILURES,
  type FailureClass,
} from "../../../protocol/failures.ts";
import { FAILED_POINT_LOSS } from "../../../protocol/files.ts";
import type { ArtifactKind } from "../../../protocol/messages.ts";
import { jobIdOf } from "../../../protocol/names.ts";
import type { Metrics } from "../../scheduler/index.ts";
import type { LogEventOf } from "../events.ts";
import { undecided, type PointRec } from "./records.ts";
import type { TaskData } from "./taskData.ts";

/** The job's scheduler asked it to pause (or will, once its report is judged): it is ending. */
export function pausing(p: PointRec): boolean {
  return p.job.stop === "paused" || (p.job.stop === null && p.job.decision === "pause");
}

// Scheduler reports, in log order: each resource level once per point (a retry or a resumed
// job re-reports levels it already passed). A stop or pause before the job's target becomes a
// stop request for the agent; at the target the job ends on its own.
export function feed(t: TaskData, p: PointRec, resource: number, metrics: Metrics): void {
  const sched = t.schedulers?.[p.segment];
  if (!sched || p.trial === null || p.closed || p.job.stop || resource <= p.fed) return;
  const d = sched.report(p.trial, resource, metrics);
  if (d === null) return;
  p.fed = resource;
  p.job.decision = d;
  if (d === "stop") p.closed = true;
  if (d !== "continue" && resource < (p.job.target ?? Number.POSITIVE_INFINITY)) {
    p.job.stop = d === "stop" ? "pruned" : "paused";
    p.job.stopLoss = metrics.loss ?? null;
    p.job.stopResource = resource;
  }
}

/** A scheduled point's job ended with a result: paused at a milestone, or done for good. */
function finishScheduled(t: TaskData, p: PointRec, ev: LogEventOf<"job-finished">, loss: number): void {
  feed(t, p, ev.resource ?? p.job.target ?? 0, { ...ev.metrics, loss });
  const paused = pausing(p);
  p.job.state = "done";
  p.state = paused ? "paused" : "done";
  p.loss = loss;
  p.error = null;
  p.errorCode = null;
  p.failureClass = null;
  if (!paused) closeTrial(t, p, "complete");
}

/** A job that steering asked to stop has ended (stopped, or it finished, failed or vanished first). */
function endStopped(p: PointRec): void {
  const paused = p.job.stop === "paused";
  p.job.state = "stopped";
  p.state = paused ? "paused" : "stopped";
  if (p.job.stopLoss !== null) p.loss = p.job.stopLoss;
}

export function closeTrial(t: TaskData, p: PointRec, how: "complete" | "fail"): void {
  const sched = t.schedulers?.[p.segment];
  if (!sched || p.trial === null || p.closed) return;
  p.closed = true;
  if (how === "complete") sched.complete(p.trial);
  else sched.fail(p.trial);
}

/** The agent's class of a failed result; derived from its error for an agent from before classes. */
function classOf(ev: LogEventOf<"job-finished">): FailureClass {
  return ev.failureClass ?? classOfError(ev.error?.code ?? "EVALUATION_FAILED");
}

export function jobFinished(t: TaskData, ev: LogEventOf<"job-finished">): void {
  const p = t.current(ev.jobId, ev.attempt);
  if (!p || (p.job.state !== "running" && p.job.state !== "dispatched")) return;
  p.history.push({
    job: p.job.seq,
    attempt: ev.attempt,
    site: ev.site,
    agent: ev.agent,
    status: ev.status,
    loss: ev.loss,
    startedAt: ev.startedAt,
    finishedAt: ev.finishedAt,
    error: ev.error?.message ?? null,
    failureClass: ev.status === "failed" ? classOf(ev) : ev.status === "preempted" ? "preempted" : null,
  });
  for (const a of ev.artifacts) {
    if (a.kind === "metrics") p.metricsKeys.push(a.key);
    if (a.kind === "log") p.logKeys.push(a.key);
    if (a.kind === "checkpoint") p.checkpointKey = a.key;
  }
  // Awaited later from the agent: outputs only (a checkpoint is the point's to resume from and is
  // never replaced after its attempt), once per kind, and none that arrived with the result.
  const awaited = new Set<ArtifactKind>(["checkpoint", ...ev.artifacts.map((a) => a.kind)]);
  for (const m of ev.missing) {
    if (awaited.has(m.kind)) continue;
    awaited.add(m.kind);
    const { site, agent } = ev;
    p.missing.push({
      jobId: ev.jobId,
      job: p.job.seq,
      attempt: ev.attempt,
      site,
      agent,
      ...m,
      pending: true,
    });
  }
  if (ev.resource !== null) p.resource = ev.resource;
  if (p.job.stop && ev.status !== "ok") return endStopped(p);
  if (ev.status === "ok" && ev.loss !== null && p.trial !== null) return finishScheduled(t, p, ev, ev.loss);
  if (ev.status === "ok" && ev.loss !== null) {
    p.job.state = "done";
    p.state = "done";
    p.loss = ev.loss;
    p.error = null;
    p.errorCode = null;
    p.failureClass = null;
    t.segments[p.segment]?.tell(p.values, ev.loss);
    return;
  }
  if (ev.status === "stopped") {
    p.job.state = "stopped";
    p.state = "stopped";
    closeTrial(t, p, "fail");
    return;
  }
  if (ev.status === "preempted") {
    // A hand-back is never a failure: the attempt is retried, or dropped if the task was killed.
    if (t.state === "killed") {
      p.job.state = "cancelled";
      p.state = "cancelled";
    } else {
      requeue(t, p, p.job.seq, p.job.attempt + 1);
      p.state = "queued";
    }
    return;
  }
  failAttempt(
    t,
    p,
    ev.error?.message ?? "the evaluation failed",
    ev.error?.code ?? "EVALUATION_FAILED",
    classOf(ev),
    ev.at,
  );
}

/** The current attempt vanished (lease or dispatch timeout): a site failure of the attempt. */
export function jobLost(t: TaskData, ev: LogEventOf<"job-lost">): void {
  const p = t.current(ev.jobId, ev.attempt);
  if (!p || (p.job.state !== "dispatched" && p.job.state !== "running")) return;
  p.history.push({
    job: p.job.seq,
    attempt: ev.attempt,
    site: p.job.site,
    agent: p.job.agent,
    status: "lost",
    loss: null,
    startedAt: p.job.claimedAt,
    finishedAt: ev.at,
    error: ev.reason,
    failureClass: "node-lost",
  });
  failAttempt(t, p, ev.reason, "UNAVAILABLE", "node-lost", ev.at);
}

/**
 * A queued point when the task ends: cancelled by a kill, else left without the attempt it was
 * owed by maxEvaluationJobs (nothing else ends a task with points queued). A point the task had
 * started and whose attempts failed gets PanDA's very large loss, as after maxAttempts.
 */
export function endQueued(t: TaskData, p: PointRec, how: "killed" | "finished"): void {
  const spent = how === "finished" && t.budgetSpentIn(p.segment);
  p.state = spent ? "budget-spent" : "cancelled";
  p.job.state = "cancelled";
  if (spent && p.failures + p.siteFailures > 0) {
    p.loss = FAILED_POINT_LOSS;
    t.segments[p.segment]?.tell(p.values, FAILED_POINT_LOSS);
    closeTrial(t, p, "fail");
  }
}

/**
 * A failed or lost attempt: retry while attempts remain, else the point gets PanDA's huge loss.
 * The user's failures (payload, OOM, timeout) count against maxAttempts; the site's (image, node
 * lost, infrastructure) against MAX_SITE_FAILURES, so a broken agent does not burn the user's.
 */
function failAttempt(
  t: TaskData,
  p: PointRec,
  reason: string,
  code: ErrorCode,
  cls: FailureClass,
  at: number,
): void {
  if (p.job.stop) return endStopped(p);
  p.error = reason;
  p.errorCode = code;
  p.failureClass = cls;
  const users = countsAgainstAttempts(cls);
  if (users) p.failures++;
  else p.siteFailures++;
  p.job.failedAt = at;
  p.job.failedOn.push({ site: p.job.site, agent: p.job.agent });
  const left = users ? p.failures < t.spec.maxAttempts : p.siteFailures < MAX_SITE_FAILURES;
  if (left && t.state !== "killed") {
    requeue(t, p, p.job.seq, p.job.attempt + 1);
    p.state = "queued";
    return;
  }
  p.job.state = "failed";
  p.state = "failed";
  p.loss = FAILED_POINT_LOSS;
  t.segments[p.segment]?.tell(p.values, FAILED_POINT_LOSS);
  closeTrial(t, p, "fail");
}

/** The point's job waits again: attempt `attempt` of job `seq` (a new seq is a new job id). */
export function requeue(t: TaskData, p: PointRec, seq: number, attempt: number): void {
  if (seq !== p.job.seq) {
    // a decision belongs to the job: a retry (same seq) resumes under it, a new job starts afresh
    Object.assign(p.job, undecided());
    t.jobs.delete(p.job.jobId);
    p.job.jobId = jobIdOf(t.taskId, p.pointId, seq);
    p.job.seq = seq;
    t.jobs.set(p.job.jobId, p);
  }
  Object.assign(p.job, {
    attempt,
    state: "queued",
    site: null,
    agent: null,
    dispatchedAt: null,
    claimedAt: null,
  });
}
