// The pure decision core of one task: its state is a fold of its log events (apply), and every
// decision (what to sample, which job to dispatch next, whether a result counts, when the task is
// over) is a function of that state. No I/O, no clock reads: times come in on the events.
import type { ErrorCode } from "../../../protocol/errors.ts";
import {
  classOfError,
  countsAgainstAttempts,
  MAX_SITE_FAILURES,
  type FailureClass,
} from "../../../protocol/failures.ts";
import { FAILED_POINT_LOSS } from "../../../protocol/files.ts";
import type { Point } from "../../../protocol/points.ts";
import type { ArtifactKind } from "../../../protocol/messages.ts";
import { jobIdOf, pointIdOfJob } from "../../../protocol/names.ts";
import { effectiveMaxEvaluationJobs, type TaskSpec } from "../../../protocol/taskConfig.ts";
import type { LogEvent, LogEventOf } from "../events.ts";
import type { Metrics } from "../../scheduler/index.ts";
import { PointIndex } from "./pointIndex.ts";
import { newPoint, undecided, type JobRec, type PointRec } from "./records.ts";
import { SegmentScheduler } from "./segmentScheduler.ts";
import {
  proposeSampling,
  steeringDue,
  steeringResult,
  type SamplingView,
  type SteeringDue,
} from "./sampling.ts";
import { SegmentSampling } from "./segmentSampling.ts";
import { SteeringIterations } from "./steeringIterations.ts";

export type { JobRec, JobState, PointRec, StopRequest } from "./records.ts";
export type { SteeringDue } from "./sampling.ts";
import type { StopRequest } from "./records.ts";

export type TaskRunState = "running" | "paused" | "killed" | "finished";

/** Why a result or claim is refused: the attempt is not the one currently leased to this agent. */
export type Fence = { ok: true; job: JobRec } | { ok: false; reason: string };
/** Whether an agent may still upload (or give up) an artifact its attempt's result listed as missing. */
export type LateFence = { ok: true; point: PointRec } | { ok: false; reason: string };
/** When a queued job may be dispatched (the retry back-off); 0 for at once. */
export type ReadyAt = (p: PointRec) => number;

function pausing(p: PointRec): boolean {
  return p.job.stop === "paused" || (p.job.stop === null && p.job.decision === "pause");
}

export class TaskEngine {
  readonly taskId: string;
  readonly user: string;
  readonly spec: TaskSpec;
  readonly createdAt: number;
  state: TaskRunState = "running";
  finishedAt: number | null = null;
  readonly points = new Map<number, PointRec>();
  private readonly jobs = new Map<string, PointRec>();
  private readonly index = new PointIndex();
  private readonly segments: SegmentSampling[];
  /** One scheduler per segment when the spec has a `scheduler` (else PanDA's FIFO: none). */
  readonly schedulers: SegmentScheduler[] | null;
  /** Attempts dispatched so far, per segment (maxEvaluationJobs counts per segment, as phpo does). */
  private readonly attemptsUsed: number[];
  private nextPointId = 0;
  /** The steering program's runs (tasks with steeringExec). */
  readonly steering = new SteeringIterations((i) => this.segmentName(i));

  constructor(ev: LogEventOf<"task-created">) {
    this.taskId = ev.taskId;
    this.user = ev.user;
    this.spec = ev.spec;
    this.createdAt = ev.at;
    const names = ev.spec.segments?.map((s) => s.name) ?? [null];
    this.segments = names.map(
      (name, i) =>
        new SegmentSampling(
          ev.spec,
          i,
          name,
          ev.spec.segmentSearchSpaces?.[i] ?? ev.spec.searchSpace,
          ev.seed + i,
        ),
    );
    this.attemptsUsed = names.map(() => 0);
    const cfg = ev.spec.scheduler;
    this.schedulers = cfg
      ? names.map((_, i) => new SegmentScheduler(cfg, ev.spec.maxPoints, ev.seed + i))
      : null;
  }

  /** A live suggest() ran ahead of the log (its event was not applied): rebuild from the log. */
  hasUnloggedSuggestion(): boolean {
    return this.schedulers?.some((s) => s.hasUnloggedSuggestion) ?? false;
  }

  get segmentNames(): Array<string | null> {
    return this.segments.map((s) => s.name);
  }

  segmentName(index: number): string | null {
    return this.segments[index]?.name ?? null;
  }

  // ------------------------------------------------------------------------- fold
  apply(ev: LogEvent): void {
    // the point of a job event, found before the fold (a retry or promotion renames the job)
    const touched = "jobId" in ev ? this.jobs.get(ev.jobId) : undefined;
    this.fold(ev);
    if (touched) this.index.update(touched);
    else if (ev.type === "points-added") for (const { pointId } of ev.points) this.reindex(pointId);
    else if (ev.type === "trial-suggested") this.reindex(ev.pointId);
    else if (ev.type === "points-requeued") for (const id of ev.pointIds) this.reindex(id);
    else if (ev.type === "task-state") for (const p of this.points.values()) this.index.update(p);
  }

  private reindex(pointId: number): void {
    const p = this.points.get(pointId);
    if (p) this.index.update(p);
  }

  /** Tests: throws if the state indexes differ from a full scan of the points. */
  checkIndex(): void {
    this.index.check(this.points.values());
  }

  private fold(ev: LogEvent): void {
    // "suggest() said wait with nothing running" only holds until the next event
    if (this.schedulers) for (const s of this.schedulers) s.stalled = false;
    switch (ev.type) {
      case "task-created":
        return;
      case "points-added":
        return this.onPointsAdded(ev);
      case "job-dispatched": {
        const p = this.current(ev.jobId, ev.attempt);
        if (!p || p.job.state !== "queued") return;
        Object.assign(p.job, { state: "dispatched", site: ev.site, agent: null, dispatchedAt: ev.at });
        p.attempts++;
        this.attemptsUsed[p.segment] = (this.attemptsUsed[p.segment] ?? 0) + 1;
        return;
      }
      case "job-claimed": {
        const p = this.current(ev.jobId, ev.attempt);
        if (!p || p.job.state !== "dispatched") return;
        Object.assign(p.job, { state: "running", agent: ev.agent, claimedAt: ev.at });
        Object.assign(p, { state: "running", site: ev.site, agent: ev.agent });
        return;
      }
      case "job-progress": {
        const p = this.current(ev.jobId, ev.attempt);
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
        this.feed(p, ev.resource, ev.metrics);
        return;
      }
      case "job-checkpoint": {
        const p = this.current(ev.jobId, ev.attempt);
        if (!p) return;
        p.checkpointKey = ev.artifact.key;
        p.checkpointResource = ev.resource;
        return;
      }
      case "job-finished":
        return this.onFinished(ev);
      case "job-artifact":
        return this.onLateArtifact(ev);
      case "job-lost": {
        const p = this.current(ev.jobId, ev.attempt);
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
        this.failAttempt(p, ev.reason, "UNAVAILABLE", "node-lost", ev.at);
        return;
      }
      case "task-state":
        this.state = ev.state;
        if (ev.state === "killed" || ev.state === "finished") {
          this.finishedAt = ev.at;
          for (const p of this.points.values()) if (p.state === "queued") this.endQueued(p, ev.state);
        }
        return;
      case "points-requeued":
        // A killed task stays killed: steering refuses a retry of one, and a log from before it
        // did may hold a requeue behind a kill, which replays as nothing (its points would only
        // wait forever, since a killed task dispatches nothing).
        if (this.state === "killed") return;
        for (const id of ev.pointIds) {
          const p = this.points.get(id);
          if (!p || (p.state !== "failed" && p.state !== "cancelled" && p.state !== "budget-spent")) continue;
          this.requeue(p, p.job.seq + 1, 1);
          p.state = "queued";
          p.failures = 0;
          p.siteFailures = 0;
          p.failureClass = null;
          p.loss = null;
          p.error = null;
          p.errorCode = null;
        }
        if (this.state === "finished") {
          this.state = "running";
          this.finishedAt = null;
        }
        return;
      case "trial-suggested":
        return this.onTrialSuggested(ev);
      case "steering-iteration":
        return this.steering.apply(ev);
    }
  }

  private onPointsAdded(ev: LogEventOf<"points-added">): void {
    const seg = this.segments[ev.segment];
    if (!seg) return;
    seg.restore(ev.sampler, ev.points.length, ev.exhausted, ev.more);
    for (const { pointId, values } of ev.points)
      this.addPoint(newPoint(this.taskId, pointId, ev.segment, values, null, null));
  }

  private addPoint(p: PointRec): void {
    this.points.set(p.pointId, p);
    this.jobs.set(p.job.jobId, p);
    this.nextPointId = Math.max(this.nextPointId, p.pointId + 1);
  }

  // A recorded suggestion: the scheduler confirms it (replay re-runs suggest()), then a new point
  // gets its first job, or a paused point a new job (seq + 1, attempt 1) to the next milestone.
  private onTrialSuggested(ev: LogEventOf<"trial-suggested">): void {
    const sched = this.schedulers?.[ev.segment];
    const seg = this.segments[ev.segment];
    if (!sched || !seg || !sched.confirm(ev.suggestion, ev.pointId)) return;
    const s = ev.suggestion;
    const target = sched.targetOf(s);
    if (s.action === "new") {
      seg.restore(ev.sampler, ev.values ? 1 : 0, ev.exhausted);
      if (ev.values === null) {
        // the sampler had nothing left for a trial the scheduler had already created
        sched.fail(s.trial);
        this.nextPointId = Math.max(this.nextPointId, ev.pointId + 1);
        return;
      }
      this.addPoint(newPoint(this.taskId, ev.pointId, ev.segment, ev.values, target, s.trial));
      return;
    }
    const p = this.points.get(ev.pointId);
    if (!p || p.state !== "paused") {
      sched.fault ??= `promotion of ${s.trial}: point ${ev.pointId} is not paused`;
      return;
    }
    this.requeue(p, p.job.seq + 1, 1);
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

  // Scheduler reports, in log order: each resource level once per point (a retry or a resumed
  // job re-reports levels it already passed). A stop or pause before the job's target becomes a
  // stop request for the agent; at the target the job ends on its own.
  private feed(p: PointRec, resource: number, metrics: Metrics): void {
    const sched = this.schedulers?.[p.segment];
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
  private finishScheduled(p: PointRec, ev: LogEventOf<"job-finished">, loss: number): void {
    this.feed(p, ev.resource ?? p.job.target ?? 0, { ...ev.metrics, loss });
    const paused = p.job.stop === "paused" || (p.job.stop === null && p.job.decision === "pause");
    p.job.state = "done";
    p.state = paused ? "paused" : "done";
    p.loss = loss;
    p.error = null;
    p.errorCode = null;
    p.failureClass = null;
    if (!paused) this.closeTrial(p, "complete");
  }

  /** A job that steering asked to stop has ended (stopped, or it finished, failed or vanished first). */
  private endStopped(p: PointRec): void {
    const paused = p.job.stop === "paused";
    p.job.state = "stopped";
    p.state = paused ? "paused" : "stopped";
    if (p.job.stopLoss !== null) p.loss = p.job.stopLoss;
  }

  private closeTrial(p: PointRec, how: "complete" | "fail"): void {
    const sched = this.schedulers?.[p.segment];
    if (!sched || p.trial === null || p.closed) return;
    p.closed = true;
    if (how === "complete") sched.complete(p.trial);
    else sched.fail(p.trial);
  }

  private onFinished(ev: LogEventOf<"job-finished">): void {
    const p = this.current(ev.jobId, ev.attempt);
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
      failureClass:
        ev.status === "failed" ? this.classOf(ev) : ev.status === "preempted" ? "preempted" : null,
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
    if (p.job.stop && ev.status !== "ok") return this.endStopped(p);
    if (ev.status === "ok" && ev.loss !== null && p.trial !== null)
      return this.finishScheduled(p, ev, ev.loss);
    if (ev.status === "ok" && ev.loss !== null) {
      p.job.state = "done";
      p.state = "done";
      p.loss = ev.loss;
      p.error = null;
      p.errorCode = null;
      p.failureClass = null;
      this.segments[p.segment]?.tell(p.values, ev.loss);
      return;
    }
    if (ev.status === "stopped") {
      p.job.state = "stopped";
      p.state = "stopped";
      this.closeTrial(p, "fail");
      return;
    }
    if (ev.status === "preempted") {
      // A hand-back is never a failure: the attempt is retried, or dropped if the task was killed.
      if (this.state === "killed") {
        p.job.state = "cancelled";
        p.state = "cancelled";
      } else {
        this.requeue(p, p.job.seq, p.job.attempt + 1);
        p.state = "queued";
      }
      return;
    }
    this.failAttempt(
      p,
      ev.error?.message ?? "the evaluation failed",
      ev.error?.code ?? "EVALUATION_FAILED",
      this.classOf(ev),
      ev.at,
    );
  }

  /** The agent's class of a failed result; derived from its error for an agent from before classes. */
  private classOf(ev: LogEventOf<"job-finished">): FailureClass {
    return ev.failureClass ?? classOfError(ev.error?.code ?? "EVALUATION_FAILED");
  }

  /**
   * A queued point when the task ends: cancelled by a kill, else left without the attempt it was
   * owed by maxEvaluationJobs (nothing else ends a task with points queued). A point the task had
   * started and whose attempts failed gets PanDA's very large loss, as after maxAttempts.
   */
  private endQueued(p: PointRec, how: "killed" | "finished"): void {
    const spent = how === "finished" && this.budgetSpentIn(p.segment);
    p.state = spent ? "budget-spent" : "cancelled";
    p.job.state = "cancelled";
    if (spent && p.failures + p.siteFailures > 0) {
      p.loss = FAILED_POINT_LOSS;
      this.segments[p.segment]?.tell(p.values, FAILED_POINT_LOSS);
      this.closeTrial(p, "fail");
    }
  }

  /** maxEvaluationJobs over all segments: attempts dispatched, the limit, and whether a segment spent its own. */
  budget(): { used: number; limit: number; spent: boolean } {
    const per = effectiveMaxEvaluationJobs(this.spec);
    return {
      used: this.attemptsUsed.reduce((a, b) => a + b, 0),
      limit: per * this.attemptsUsed.length,
      spent: this.attemptsUsed.some((_, i) => this.budgetSpentIn(i)),
    };
  }

  /** Whether the segment's maxEvaluationJobs are all dispatched. */
  budgetSpentIn(segment: number): boolean {
    return (this.attemptsUsed[segment] ?? 0) >= effectiveMaxEvaluationJobs(this.spec);
  }

  /** A missing artifact arrived (its key is recorded) or was given up (its reason is kept). */
  private onLateArtifact(ev: LogEventOf<"job-artifact">): void {
    const p = this.pointOfAnyJob(ev.jobId);
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

  /**
   * A failed or lost attempt: retry while attempts remain, else the point gets PanDA's huge loss.
   * The user's failures (payload, OOM, timeout) count against maxAttempts; the site's (image, node
   * lost, infrastructure) against MAX_SITE_FAILURES, so a broken agent does not burn the user's.
   */
  private failAttempt(p: PointRec, reason: string, code: ErrorCode, cls: FailureClass, at: number): void {
    if (p.job.stop) return this.endStopped(p);
    p.error = reason;
    p.errorCode = code;
    p.failureClass = cls;
    const users = countsAgainstAttempts(cls);
    if (users) p.failures++;
    else p.siteFailures++;
    p.job.failedAt = at;
    p.job.failedOn.push({ site: p.job.site, agent: p.job.agent });
    const left = users ? p.failures < this.spec.maxAttempts : p.siteFailures < MAX_SITE_FAILURES;
    if (left && this.state !== "killed") {
      this.requeue(p, p.job.seq, p.job.attempt + 1);
      p.state = "queued";
      return;
    }
    p.job.state = "failed";
    p.state = "failed";
    p.loss = FAILED_POINT_LOSS;
    this.segments[p.segment]?.tell(p.values, FAILED_POINT_LOSS);
    this.closeTrial(p, "fail");
  }

  private requeue(p: PointRec, seq: number, attempt: number): void {
    if (seq !== p.job.seq) {
      // a decision belongs to the job: a retry (same seq) resumes under it, a new job starts afresh
      Object.assign(p.job, undecided());
      this.jobs.delete(p.job.jobId);
      p.job.jobId = jobIdOf(this.taskId, p.pointId, seq);
      p.job.seq = seq;
      this.jobs.set(p.job.jobId, p);
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

  /** The point whose current job is exactly this attempt, or undefined (a superseded attempt). */
  private current(jobId: string, attempt: number): PointRec | undefined {
    const p = this.jobs.get(jobId);
    return p && p.job.jobId === jobId && p.job.attempt === attempt ? p : undefined;
  }

  // -------------------------------------------------------------------- decisions
  /** Fencing: a claim or result counts only for the current attempt, leased to that site (and agent). */
  fence(jobId: string, attempt: number, site: string, agent: string | null): Fence {
    const p = this.jobs.get(jobId);
    if (!p) return { ok: false, reason: `unknown job ${jobId}` };
    const j = p.job;
    if (j.jobId !== jobId || j.attempt !== attempt) {
      return { ok: false, reason: `attempt ${attempt} of ${jobId} was superseded by attempt ${j.attempt}` };
    }
    if (j.state !== "dispatched" && j.state !== "running") {
      return { ok: false, reason: `${jobId} attempt ${attempt} is ${j.state}` };
    }
    if (j.site !== site)
      return { ok: false, reason: `${jobId} attempt ${attempt} was leased to site ${j.site}, not ${site}` };
    if (agent !== null && j.state === "running" && j.agent !== agent) {
      return { ok: false, reason: `${jobId} attempt ${attempt} is run by agent ${j.agent}, not ${agent}` };
    }
    return { ok: true, job: j };
  }

  /**
   * A late upload of `kind` for an ended attempt counts only if that attempt's result listed it as
   * missing, it is still awaited, and the same site and agent send it.
   */
  lateFence(jobId: string, attempt: number, kind: ArtifactKind, site: string, agent: string): LateFence {
    const p = this.pointOfAnyJob(jobId);
    const m = p?.missing.find((x) => x.jobId === jobId && x.attempt === attempt && x.kind === kind);
    if (!p || !m) return { ok: false, reason: `${jobId} attempt ${attempt} has no missing ${kind}` };
    if (!m.pending) return { ok: false, reason: `the ${kind} of ${jobId} attempt ${attempt} was given up` };
    if (m.site !== site || m.agent !== agent)
      return {
        ok: false,
        reason: `${jobId} attempt ${attempt} ran on ${m.site}/${m.agent}, not ${site}/${agent}`,
      };
    return { ok: true, point: p };
  }

  /** The point of any job of this task, current or past (a promotion renames the current job). */
  pointOfAnyJob(jobId: string): PointRec | undefined {
    const id = pointIdOfJob(jobId);
    return jobId.startsWith(`t${this.taskId}-`) && id !== null ? this.points.get(id) : undefined;
  }

  job(jobId: string): JobRec | undefined {
    return this.jobs.get(jobId)?.job;
  }

  pointOfJob(jobId: string): PointRec | undefined {
    return this.jobs.get(jobId);
  }

  inFlight(): number {
    return this.index.active.size;
  }

  /** Whether an agent may still upload an artifact a result listed as missing (S3 was down). */
  awaitsArtifacts(): boolean {
    for (const p of this.points.values()) if (p.missing.some((m) => m.pending)) return true;
    return false;
  }

  activeJobs(): JobRec[] {
    return [...this.index.active].sort((a, b) => a.pointId - b.pointId).map((p) => p.job);
  }

  /** New points to sample now (PanDA iteration rule), as a points-added event; null if none are due. */
  proposeSampling(at: number): LogEventOf<"points-added"> | null {
    // with a scheduler, points are sampled one at a time when it suggests a new trial
    if (this.state !== "running" || this.schedulers) return null;
    return proposeSampling(this.samplingView(), at);
  }

  /** True while an iteration logged in parts has parts still to come (see proposeSampling). */
  samplingOwed(): boolean {
    return this.state === "running" && this.segments.some((s) => s.owes);
  }

  /**
   * The steering-program iterations due now (see sampling.ts), each with its failed runs so far
   * and the end of its retry back-off (steeringIterations.ts).
   */
  steeringDue(): Array<SteeringDue & { failures: number; notBefore: number }> {
    if (this.state !== "running") return [];
    return steeringDue(this.samplingView()).map((d) => ({
      ...d,
      failures: this.steering.failures(d.segment),
      notBefore: this.steering.notBefore(d.segment),
    }));
  }

  /** The points-added events for a steering iteration's result; none if it no longer applies (see sampling.ts). */
  steeringResult(
    segment: number,
    generated: number,
    points: Point[],
    exhausted: boolean,
    at: number,
  ): Array<LogEventOf<"points-added">> {
    if (this.state === "killed" || this.state === "finished") return [];
    return steeringResult(this.samplingView(), segment, generated, points, exhausted, at);
  }

  private samplingView(): SamplingView {
    return {
      taskId: this.taskId,
      spec: this.spec,
      segments: this.segments,
      points: this.points,
      nextPointId: this.nextPointId,
      unevaluated: (segment) => this.index.unevaluatedIn(segment),
      jobsLeft: (segment) => effectiveMaxEvaluationJobs(this.spec) - (this.attemptsUsed[segment] ?? 0),
    };
  }

  /**
   * A free slot for a task with a scheduler: ask the scheduler of the first segment that may still
   * run a job (budget left) what to do. NOT pure: suggest() mutates the scheduler, so the event
   * returned must be staged (applied, its append sent) before anything else touches this engine;
   * if its append fails the engine has run ahead of the log and is rebuilt (Committer).
   */
  proposeTrial(at: number): LogEventOf<"trial-suggested"> | null {
    if (this.state !== "running" || !this.schedulers || this.hasUnloggedSuggestion()) return null;
    const queued = [...this.index.queued];
    if (this.inFlight() + queued.length >= this.spec.nParallelEvaluation) return null;
    const budget = effectiveMaxEvaluationJobs(this.spec);
    for (let i = 0; i < this.schedulers.length; i++) {
      const sched = this.schedulers[i]!;
      const mineQueued = queued.filter((p) => p.segment === i).length;
      if (sched.fault || (this.attemptsUsed[i] ?? 0) + mineQueued >= budget || sched.isDone()) continue;
      // A trial the scheduler paused is promotable at once, but its job is still ending (final
      // checkpoint, outputs): ask only once every paused trial's point is paused here too.
      const active = [...this.index.active].filter((p) => p.segment === i);
      if (active.some(pausing)) continue;
      const s = sched.ask();
      if (s.action === "wait") {
        const busy = mineQueued > 0 || active.length > 0;
        sched.stalled = !busy;
        continue;
      }
      if (s.action === "promote") {
        const pointId = sched.pointOf(s.trial) ?? -1;
        return {
          type: "trial-suggested",
          taskId: this.taskId,
          at,
          segment: i,
          pointId,
          suggestion: s,
          values: null,
          sampler: null,
          exhausted: false,
        };
      }
      const seg = this.segments[i]!;
      const { points, state, exhausted } = seg.finishedSampling(this.spec)
        ? { points: [], state: null, exhausted: true }
        : seg.sample(1);
      return {
        type: "trial-suggested",
        taskId: this.taskId,
        at,
        segment: i,
        pointId: this.nextPointId,
        suggestion: s,
        values: points[0] ?? null,
        sampler: state,
        exhausted,
      };
    }
    return null;
  }

  /** The scheduler rungs of each segment (empty without a scheduler). */
  rungs(): Array<{ segment: number; level: number; values: number[]; trials?: string[] }> {
    return (this.schedulers ?? []).flatMap((s, segment) => s.rungs().map((r) => ({ segment, ...r })));
  }

  /** The next job to dispatch, respecting nParallelEvaluation and maxEvaluationJobs; FIFO by point. */
  nextDispatchable(): JobRec | null {
    return this.nextReady(0, () => 0).job;
  }

  /**
   * The next job to dispatch at `now` (as nextDispatchable), skipping retries whose back-off
   * (`readyAt`) has not passed; `wakeAt` is the earliest time one of those becomes ready.
   */
  nextReady(now: number, readyAt: ReadyAt): { job: JobRec | null; wakeAt: number | null } {
    if (this.state !== "running" || this.inFlight() >= this.spec.nParallelEvaluation)
      return { job: null, wakeAt: null };
    const budget = effectiveMaxEvaluationJobs(this.spec);
    // FIFO by point: the lowest point id among the ready queued jobs with budget left
    let first: PointRec | null = null;
    let wakeAt: number | null = null;
    for (const p of this.index.queued) {
      if ((this.attemptsUsed[p.segment] ?? 0) >= budget) continue;
      const at = readyAt(p);
      if (at > now) wakeAt = Math.min(wakeAt ?? at, at);
      else if (first === null || p.pointId < first.pointId) first = p;
    }
    return { job: first?.job ?? null, wakeAt };
  }

  /** True when nothing more will happen: all sampling over and no job queued or in flight. */
  isComplete(): boolean {
    if (this.state !== "running") return false;
    if (this.inFlight() > 0) return false;
    const budget = effectiveMaxEvaluationJobs(this.spec);
    for (let i = 0; i < this.segments.length; i++) {
      const queued = [...this.index.queued].some((p) => p.segment === i);
      const budgetLeft = (this.attemptsUsed[i] ?? 0) < budget;
      if (queued && budgetLeft) return false;
      const sched = this.schedulers?.[i];
      const over = sched
        ? sched.fault !== null || sched.stalled || sched.isDone()
        : this.segments[i]!.finishedSampling(this.spec);
      if (budgetLeft && !over) return false;
    }
    return true;
  }

  /** Running attempts whose scheduler decided to stop them: the agents must be told (again). */
  stopRequests(): Array<{ job: JobRec; reason: StopRequest }> {
    const out: Array<{ job: JobRec; reason: StopRequest }> = [];
    // in point order, as a walk over the points would give
    for (const p of [...this.index.active].sort((a, b) => a.pointId - b.pointId))
      if (p.job.stop && p.job.state === "running") out.push({ job: p.job, reason: p.job.stop });
    return out;
  }

  attemptsUsedIn(segment: number): number {
    return this.attemptsUsed[segment] ?? 0;
  }

  /**
   * The segments whose maxEvaluationJobs cannot run these points again (retry): each needs one
   * more job at least, and the points already queued in the segment need theirs. A point requeued
   * beyond the budget is never dispatched and ends cancelled, its failure record lost, so a retry
   * is refused unless every segment can run its points. Empty when all fit.
   */
  requeueShortfall(
    pointIds: readonly number[],
  ): Array<{ segment: number; points: number; used: number; limit: number; queued: number }> {
    const limit = effectiveMaxEvaluationJobs(this.spec);
    const wanted = new Map<number, number>();
    for (const id of pointIds) {
      const p = this.points.get(id);
      if (p) wanted.set(p.segment, (wanted.get(p.segment) ?? 0) + 1);
    }
    const short = [];
    for (const [segment, points] of [...wanted].sort((a, b) => a[0] - b[0])) {
      const used = this.attemptsUsed[segment] ?? 0;
      const queued = [...this.index.queued].filter((p) => p.segment === segment).length;
      if (used + queued + points > limit) short.push({ segment, points, used, limit, queued });
    }
    return short;
  }
}
