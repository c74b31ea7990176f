// Turns the engine's job record into the Job message an agent runs: the exec string tokenized
// once and %SEGMENT_NAME substituted per token (no shell), limits from the task's resources.
import { tokenizeExec } from "../../../protocol/execString.ts";
import type { Job } from "../../../protocol/messages.ts";
import { substitutePlaceholders } from "../../../protocol/placeholders.ts";
import type { TaskEngine } from "./taskEngine.ts";

export function buildJob(engine: TaskEngine, jobId: string): Job {
  const p = engine.pointOfJob(jobId);
  if (!p) throw new Error(`buildJob: unknown job ${jobId}`);
  const spec = engine.spec;
  const segment = engine.segmentName(p.segment);
  const values: Record<string, string> = segment === null ? {} : { SEGMENT_NAME: segment };
  const argv = tokenizeExec(spec.evaluationExec).map((t) => substitutePlaceholders(t, values));
  const r = spec.resources;
  const point = { ...p.values };
  if (p.job.target !== null) point[spec.resourceKey] = p.job.target;
  return {
    jobId,
    attempt: p.job.attempt,
    taskId: engine.taskId,
    user: engine.user,
    point,
    evaluation: {
      container: spec.evaluationContainer,
      argv,
      inputFile: spec.evaluationInput,
      trainingDataFile: spec.evaluationTrainingData,
      outputFile: spec.evaluationOutput,
      metaFile: spec.evaluationMeta ?? null,
      metricsFile: spec.evaluationMetrics ?? null,
      checkPointToSave: spec.checkPointToSave ?? [],
      checkPointToLoad: spec.checkPointToLoad ?? null,
      checkPointIntervalMs: spec.checkPointInterval * 60_000,
      checkPointLimitBytes: spec.checkPointLimitMB * 1024 * 1024,
      timeoutMs: r.timeoutMinutes * 60_000,
      memoryBytes: r.memoryMB * 1024 * 1024,
      nanoCpus: Math.round(r.cpus * 1e9),
      network: r.network,
    },
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
