// The pure decision core of one task: its state is a fold of its log events (apply), and every
// decision (what to sample, which job to dispatch next, whether a result counts, when the task is
// over) is a function of that state. No I/O, no clock reads: times come in on the events.
import type { ErrorCode } from "../../protocol/errors.ts";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import type { PointState, PointValues } from "../../protocol/messages.ts";
import { jobIdOf } from "../../protocol/names.ts";
import { effectiveMaxEvaluationJobs, type TaskSpec } from "../../protocol/taskConfig.ts";
import type { LogEvent, LogEventOf } from "../events.ts";
import { SegmentSampling } from "./segmentSampling.ts";

export type JobState = "queued" | "dispatched" | "running" | "done" | "failed" | "stopped" | "cancelled";

export interface JobRec {
  jobId: string;
  pointId: number;
  seq: number;
  attempt: number;
  state: JobState;
  site: string | null;
  agent: string | null;
  dispatchedAt: number | null;
  claimedAt: number | null;
  /** Resource level to reach (ASHA); null for a plain evaluation. */
  target: number | null;
}

export interface PointRec {
  pointId: number;
  segment: number;
  values: PointValues;
  state: PointState;
  loss: number | null;
  attempts: number;
  /** Failed or lost attempts of the current job (a preemption hand-back is not a failure). */
  failures: number;
  resource: number | null;
  reports: Array<{ resource: number; loss: number }>;
  site: string | null;
  agent: string | null;
  error: string | null;
  errorCode: ErrorCode | null;
  metricsKeys: string[];
  logKeys: string[];
  checkpointKey: string | null;
  checkpointResource: number | null;
  job: JobRec;
}

export type TaskRunState = "running" | "paused" | "killed" | "finished";

/** Why a result or claim is refused: the attempt is not the one currently leased to this agent. */
export type Fence = { ok: true; job: JobRec } | { ok: false; reason: string };

export class TaskEngine {
  readonly taskId: string;
  readonly user: string;
  readonly spec: TaskSpec;
  readonly createdAt: number;
  state: TaskRunState = "running";
  finishedAt: number | null = null;
  readonly points = new Map<number, PointRec>();
  private readonly jobs = new Map<string, PointRec>();
  private readonly segments: SegmentSampling[];
  /** Attempts dispatched so far, per segment (maxEvaluationJobs counts per segment, as phpo does). */
  private readonly attemptsUsed: number[];
  private nextPointId = 0;

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
  }

  get segmentNames(): Array<string | null> {
    return this.segments.map((s) => s.name);
  }

  segmentName(index: number): string | null {
    return this.segments[index]?.name ?? null;
  }

  // ------------------------------------------------------------------------- fold
  apply(ev: LogEvent): void {
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
        const loss = ev.metrics.loss;
        if (!p || loss === undefined) return;
        p.reports.push({ resource: ev.resource, loss });
        p.resource = Math.max(p.resource ?? 0, ev.resource);
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
      case "job-lost": {
        const p = this.current(ev.jobId, ev.attempt);
        if (!p || (p.job.state !== "dispatched" && p.job.state !== "running")) return;
        this.failAttempt(p, ev.reason, "UNAVAILABLE");
        return;
      }
      case "task-state":
        this.state = ev.state;
        if (ev.state === "killed" || ev.state === "finished") {
          this.finishedAt = ev.at;
          for (const p of this.points.values()) {
            if (p.state === "queued") {
              p.state = "cancelled";
              p.job.state = "cancelled";
            }
          }
        }
        return;
      case "points-requeued":
        for (const id of ev.pointIds) {
          const p = this.points.get(id);
          if (!p || (p.state !== "failed" && p.state !== "cancelled")) continue;
          this.requeue(p, p.job.seq + 1, 1);
          p.state = "queued";
          p.failures = 0;
          p.loss = null;
          p.error = null;
          p.errorCode = null;
        }
        if (this.state === "finished") {
          this.state = "running";
          this.finishedAt = null;
        }
        return;
    }
  }

  private onPointsAdded(ev: LogEventOf<"points-added">): void {
    const seg = this.segments[ev.segment];
    if (!seg) return;
    seg.restore(ev.sampler, ev.points.length, ev.exhausted);
    for (const { pointId, values } of ev.points) {
      const job: JobRec = {
        jobId: jobIdOf(this.taskId, pointId, 1),
        pointId,
        seq: 1,
        attempt: 1,
        state: "queued",
        site: null,
        agent: null,
        dispatchedAt: null,
        claimedAt: null,
        target: null,
      };
      const p: PointRec = {
        pointId,
        segment: ev.segment,
        values,
        state: "queued",
        loss: null,
        attempts: 0,
        failures: 0,
        resource: null,
        reports: [],
        site: null,
        agent: null,
        error: null,
        errorCode: null,
        metricsKeys: [],
        logKeys: [],
        checkpointKey: null,
        checkpointResource: null,
        job,
      };
      this.points.set(pointId, p);
      this.jobs.set(job.jobId, p);
      this.nextPointId = Math.max(this.nextPointId, pointId + 1);
    }
  }

  private onFinished(ev: LogEventOf<"job-finished">): void {
    const p = this.current(ev.jobId, ev.attempt);
    if (!p || (p.job.state !== "running" && p.job.state !== "dispatched")) return;
    for (const a of ev.artifacts) {
      if (a.kind === "metrics") p.metricsKeys.push(a.key);
      if (a.kind === "log") p.logKeys.push(a.key);
      if (a.kind === "checkpoint") p.checkpointKey = a.key;
    }
    if (ev.resource !== null) p.resource = ev.resource;
    if (ev.status === "ok" && ev.loss !== null) {
      p.job.state = "done";
      p.state = "done";
      p.loss = ev.loss;
      p.error = null;
      p.errorCode = null;
      this.segments[p.segment]?.tell(p.values, ev.loss);
      return;
    }
    if (ev.status === "stopped") {
      p.job.state = "stopped";
      p.state = "stopped";
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
    this.failAttempt(p, ev.error?.message ?? "the evaluation failed", ev.error?.code ?? "EVALUATION_FAILED");
  }

  /** A failed or lost attempt: retry while attempts remain, else the point gets PanDA's huge loss. */
  private failAttempt(p: PointRec, reason: string, code: ErrorCode): void {
    p.error = reason;
    p.errorCode = code;
    p.failures++;
    if (p.failures < this.spec.maxAttempts && this.state !== "killed") {
      this.requeue(p, p.job.seq, p.job.attempt + 1);
      p.state = "queued";
      return;
    }
    p.job.state = "failed";
    p.state = "failed";
    p.loss = FAILED_POINT_LOSS;
    this.segments[p.segment]?.tell(p.values, FAILED_POINT_LOSS);
  }

  private requeue(p: PointRec, seq: number, attempt: number): void {
    if (seq !== p.job.seq) {
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

  job(jobId: string): JobRec | undefined {
    return this.jobs.get(jobId)?.job;
  }

  pointOfJob(jobId: string): PointRec | undefined {
    return this.jobs.get(jobId);
  }

  inFlight(): number {
    let n = 0;
    for (const p of this.points.values()) if (p.job.state === "dispatched" || p.job.state === "running") n++;
    return n;
  }

  activeJobs(): JobRec[] {
    const out: JobRec[] = [];
    for (const p of this.points.values())
      if (p.job.state === "dispatched" || p.job.state === "running") out.push(p.job);
    return out;
  }

  /** New points to sample now (PanDA iteration rule), as a points-added event; null if none are due. */
  proposeSampling(at: number): LogEventOf<"points-added"> | null {
    if (this.state !== "running") return null;
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      const unevaluated = this.countIn(i, ["queued", "running"]);
      const n = seg.due(unevaluated, this.spec);
      if (n <= 0) continue;
      const { points, state, exhausted } = seg.sample(n);
      return {
        type: "points-added",
        taskId: this.taskId,
        at,
        segment: i,
        points: points.map((values, k) => ({ pointId: this.nextPointId + k, values })),
        sampler: state,
        exhausted,
      };
    }
    return null;
  }

  /** The next job to dispatch, respecting nParallelEvaluation and maxEvaluationJobs; FIFO by point. */
  nextDispatchable(): JobRec | null {
    if (this.state !== "running" || this.inFlight() >= this.spec.nParallelEvaluation) return null;
    const budget = effectiveMaxEvaluationJobs(this.spec);
    for (const p of this.points.values()) {
      if (p.job.state === "queued" && (this.attemptsUsed[p.segment] ?? 0) < budget) return p.job;
    }
    return null;
  }

  /** True when nothing more will happen: all sampling over and no job queued or in flight. */
  isComplete(): boolean {
    if (this.state !== "running") return false;
    if (this.inFlight() > 0) return false;
    const budget = effectiveMaxEvaluationJobs(this.spec);
    for (let i = 0; i < this.segments.length; i++) {
      const queued = [...this.points.values()].some((p) => p.segment === i && p.job.state === "queued");
      const budgetLeft = (this.attemptsUsed[i] ?? 0) < budget;
      if (queued && budgetLeft) return false;
      if (budgetLeft && !this.segments[i]!.finishedSampling(this.spec)) return false;
    }
    return true;
  }

  private countIn(segment: number, states: PointState[]): number {
    let n = 0;
    for (const p of this.points.values()) if (p.segment === segment && states.includes(p.state)) n++;
    return n;
  }

  attemptsUsedIn(segment: number): number {
    return this.attemptsUsed[segment] ?? 0;
  }
}
