// What a task asks for next: points to sample (PanDA's iteration rule, sampling.ts), steering
// program runs that are due, and, for a task with a scheduler, the next trial to start or promote.
// Each answer is an event for the Committer to log; nothing here changes the task's state except
// suggest() inside a scheduler (see proposeTrial).
import type { Point } from "../../../protocol/points.ts";
import type { LogEventOf } from "../events.ts";
import { pausing } from "./attemptOutcome.ts";
import {
  proposeSampling as samplingProposal,
  steeringDue as samplingSteeringDue,
  steeringResult as samplingSteeringResult,
  type SamplingView,
  type SteeringDue,
} from "./sampling.ts";
import type { TaskData } from "./taskData.ts";

/** New points to sample now (PanDA iteration rule), as a points-added event; null if none are due. */
export function proposeSampling(t: TaskData, at: number): LogEventOf<"points-added"> | null {
  // with a scheduler, points are sampled one at a time when it suggests a new trial
  if (t.state !== "running" || t.schedulers) return null;
  return samplingProposal(samplingView(t), at);
}

/** True while an iteration logged in parts has parts still to come (see proposeSampling). */
export function samplingOwed(t: TaskData): boolean {
  return t.state === "running" && t.segments.some((s) => s.owes);
}

/**
 * The steering-program iterations due now (see sampling.ts), each with its failed runs so far
 * and the end of its retry back-off (steeringIterations.ts).
 */
export function steeringDue(t: TaskData): Array<SteeringDue & { failures: number; notBefore: number }> {
  if (t.state !== "running") return [];
  return samplingSteeringDue(samplingView(t)).map((d) => ({
    ...d,
    failures: t.steering.failures(d.segment),
    notBefore: t.steering.notBefore(d.segment),
  }));
}

/** The points-added events for a steering iteration's result; none if it no longer applies (see sampling.ts). */
export function steeringResult(
  t: TaskData,
  segment: number,
  generated: number,
  points: Point[],
  exhausted: boolean,
  at: number,
): Array<LogEventOf<"points-added">> {
  if (t.state === "killed" || t.state === "finished") return [];
  return samplingSteeringResult(samplingView(t), segment, generated, points, exhausted, at);
}

function samplingView(t: TaskData): SamplingView {
  return {
    taskId: t.taskId,
    spec: t.spec,
    segments: t.segments,
    points: t.points,
    nextPointId: t.nextPointId,
    unevaluated: (segment) => t.index.unevaluatedIn(segment),
    jobsLeft: (segment) => t.task.maxEvaluationJobs - t.attemptsUsedIn(segment),
  };
}

/**
 * A free slot for a task with a scheduler: ask the scheduler of the first segment that may still
 * run a job (budget left) what to do. NOT pure: suggest() mutates the scheduler, so the event
 * returned must be staged (applied, its append sent) before anything else touches this engine;
 * if its append fails the engine has run ahead of the log and is rebuilt (Committer).
 */
export function proposeTrial(t: TaskData, at: number): LogEventOf<"trial-suggested"> | null {
  if (t.state !== "running" || !t.schedulers || t.hasUnloggedSuggestion()) return null;
  const queued = [...t.index.queued];
  if (t.inFlight() + queued.length >= t.spec.nParallelEvaluation) return null;
  const budget = t.task.maxEvaluationJobs;
  for (let i = 0; i < t.schedulers.length; i++) {
    const sched = t.schedulers[i]!;
    const mineQueued = queued.filter((p) => p.segment === i).length;
    if (sched.fault || t.attemptsUsedIn(i) + mineQueued >= budget || sched.isDone()) continue;
    // A trial the scheduler paused is promotable at once, but its job is still ending (final
    // checkpoint, outputs): ask only once every paused trial's point is paused here too.
    const active = [...t.index.active].filter((p) => p.segment === i);
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
        taskId: t.taskId,
        at,
        segment: i,
        pointId,
        suggestion: s,
        values: null,
        sampler: null,
        exhausted: false,
      };
    }
    const seg = t.segments[i]!;
    const { points, state, exhausted } = seg.finishedSampling(t.spec)
      ? { points: [], state: null, exhausted: true }
      : seg.sample(1);
    return {
      type: "trial-suggested",
      taskId: t.taskId,
      at,
      segment: i,
      pointId: t.nextPointId,
      suggestion: s,
      values: points[0] ?? null,
      sampler: state,
      exhausted,
    };
  }
  return null;
}
