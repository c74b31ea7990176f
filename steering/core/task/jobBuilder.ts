// Turns the engine's job record into the Job message an agent runs: the task's compiled
// evaluation (tokenized once, at submission) with %SEGMENT_NAME substituted per token (no shell).
import type { Job } from "../../../protocol/messages.ts";
import { substitutePlaceholders } from "../../../protocol/placeholders.ts";
import type { TaskEngine } from "./taskEngine.ts";

export function buildJob(engine: TaskEngine, jobId: string): Job {
  const p = engine.pointOfJob(jobId);
  if (!p) throw new Error(`buildJob: unknown job ${jobId}`);
  const evaluation = engine.task.evaluation;
  const segment = engine.segmentName(p.segment);
  const argv =
    segment === null
      ? [...evaluation.argv]
      : evaluation.argv.map((t) => substitutePlaceholders(t, { SEGMENT_NAME: segment }));
  const point = { ...p.values };
  if (p.job.target !== null) point[engine.spec.resourceKey] = p.job.target;
  return {
    jobId,
    attempt: p.job.attempt,
    taskId: engine.taskId,
    user: engine.user,
    point,
    evaluation: { ...evaluation, argv },
    judgeAt: judgeLevels(engine, p.segment),
    // the dispatcher fills these in from the live agents (steering/core/retryPolicy.ts)
    avoidAgents: [],
  };
}

/**
 * The levels at which a stopping scheduler (one that judges a trial while its job runs) may stop
 * it: its rung levels below the full resource. Pausing schedulers judge at the job's own target,
 * where the payload ends anyway, and FIFO judges nothing: none.
 */
export function judgeLevels(engine: TaskEngine, segment: number): number[] {
  const sched = engine.schedulers?.[segment];
  if (!sched || sched.pausing || engine.spec.scheduler?.type === "fifo") return [];
  const levels = sched.scheduler.rungs().map((r) => r.level);
  return [...new Set(levels)]
    .filter((l) => l < sched.fullResource)
    .sort((a, b) => a - b)
    .slice(0, 64);
}
