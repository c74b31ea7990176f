// The pure decision core of one task: its state is a fold of its log events (evolve.ts), and every
// decision (what to sample, which job to dispatch next, whether a result counts, when the task is
// over) is a function of that state. No I/O, no clock reads: times come in on the events.
// This class is the task's one entry point; each part lives in the file named for it:
//   taskData.ts      the state the events fold into
//   evolve.ts        the fold (an exhaustive switch over the event types)
//   attemptOutcome.ts  how an attempt ends (result, failure, loss) and what it does to its point
//   fences.ts        whether a claim, result or late upload still counts
//   proposals.ts     what to sample, which steering runs are due, the scheduler's next trial
//   dispatchQueue.ts the next job to dispatch, completion, stop requests, the budget
import type { Point } from "../../../protocol/points.ts";
import type { ArtifactKind } from "../../../protocol/messages.ts";
import type { LogEvent, LogEventOf } from "../events.ts";
import * as queue from "./dispatchQueue.ts";
import { evolve } from "./evolve.ts";
import { fence, lateFence, type Fence, type LateFence } from "./fences.ts";
import * as proposals from "./proposals.ts";
import type { JobRec, PointRec, StopRequest } from "./records.ts";
import type { SteeringDue } from "./sampling.ts";
import { TaskData } from "./taskData.ts";

export type { JobRec, JobState, PointRec, StopRequest } from "./records.ts";
export type { SteeringDue } from "./sampling.ts";
export type { Fence, LateFence } from "./fences.ts";
export type { ReadyAt, Shortfall } from "./dispatchQueue.ts";

export class TaskEngine extends TaskData {
  // ------------------------------------------------------------------------- fold
  apply(ev: LogEvent): void {
    evolve(this, ev);
  }

  /** Tests: throws if the state indexes differ from a full scan of the points. */
  checkIndex(): void {
    this.index.check(this.points.values());
  }

  // -------------------------------------------------------------------- decisions
  /** Fencing: a claim or result counts only for the current attempt, leased to that site (and agent). */
  fence(jobId: string, attempt: number, site: string, agent: string | null): Fence {
    return fence(this, jobId, attempt, site, agent);
  }

  /** A late upload counts only for an artifact its ended attempt listed as missing (fences.ts). */
  lateFence(jobId: string, attempt: number, kind: ArtifactKind, site: string, agent: string): LateFence {
    return lateFence(this, jobId, attempt, kind, site, agent);
  }

  job(jobId: string): JobRec | undefined {
    return this.jobs.get(jobId)?.job;
  }

  pointOfJob(jobId: string): PointRec | undefined {
    return this.jobs.get(jobId);
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
    return proposals.proposeSampling(this, at);
  }

  /** True while an iteration logged in parts has parts still to come (see proposeSampling). */
  samplingOwed(): boolean {
    return proposals.samplingOwed(this);
  }

  /** The steering-program iterations due now, with their failed runs and retry back-off (proposals.ts). */
  steeringDue(): Array<SteeringDue & { failures: number; notBefore: number }> {
    return proposals.steeringDue(this);
  }

  /** The points-added events for a steering iteration's result; none if it no longer applies (see sampling.ts). */
  steeringResult(
    segment: number,
    generated: number,
    points: Point[],
    exhausted: boolean,
    at: number,
  ): Array<LogEventOf<"points-added">> {
    return proposals.steeringResult(this, segment, generated, points, exhausted, at);
  }

  /** The scheduler's next trial for a free slot, as an event to stage at once (NOT pure: proposals.ts). */
  proposeTrial(at: number): LogEventOf<"trial-suggested"> | null {
    return proposals.proposeTrial(this, at);
  }

  /** The scheduler rungs of each segment (empty without a scheduler). */
  rungs(): Array<{ segment: number; level: number; values: number[]; trials?: string[] }> {
    return (this.schedulers ?? []).flatMap((s, segment) => s.rungs().map((r) => ({ segment, ...r })));
  }

  /** The next job to dispatch, respecting nParallelEvaluation and maxEvaluationJobs; FIFO by point. */
  nextDispatchable(): JobRec | null {
    return this.nextReady(0, () => 0).job;
  }

  /** The next job to dispatch at `now` after each retry's back-off, and when the next wakes (dispatchQueue.ts). */
  nextReady(now: number, readyAt: queue.ReadyAt): { job: JobRec | null; wakeAt: number | null } {
    return queue.nextReady(this, now, readyAt);
  }

  /** True when nothing more will happen: all sampling over and no job queued or in flight. */
  isComplete(): boolean {
    return queue.isComplete(this);
  }

  /** Running attempts whose scheduler decided to stop them: the agents must be told (again). */
  stopRequests(): Array<{ job: JobRec; reason: StopRequest }> {
    return queue.stopRequests(this);
  }

  /** maxEvaluationJobs over all segments: attempts dispatched, the limit, and whether a segment spent its own. */
  budget(): { used: number; limit: number; spent: boolean } {
    return queue.budget(this);
  }

  /** The segments whose maxEvaluationJobs cannot run these points again (retry); empty when all fit. */
  requeueShortfall(pointIds: readonly number[]): queue.Shortfall[] {
    return queue.requeueShortfall(this, pointIds);
  }
}
