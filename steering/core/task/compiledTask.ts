// A task spec compiled once, at submission, into the shape the engine runs on: the Job's
// evaluation (the exec string as argv tokens, durations in ms, sizes in bytes), steeringExec as
// tokens, maxEvaluationJobs with PanDA's default. It is logged in this shape (task-created) and
// never re-parsed; a task-created event of an older steering (the spec alone) is compiled when it
// is read, in one place (core/events.ts).
import { z } from "zod";
import { tokenizeExec } from "../../../protocol/execString.ts";
import { JobEvaluation } from "../../../protocol/messages.ts";
import { TaskSpec } from "../../../protocol/taskConfig.ts";

const MIB = 1024 * 1024;
const MINUTE_MS = 60_000;

export const CompiledTask = z.object({
  /** The spec as submitted, defaults filled: what `phpo show` shows and the steering program reads. */
  spec: TaskSpec,
  /** What every Job of the task carries; %SEGMENT_NAME is substituted per job, per token. */
  evaluation: JobEvaluation,
  /** steeringExec as argv tokens (placeholders substituted per iteration); null without one. */
  steeringArgv: z.array(z.string()).min(1).nullable(),
  /** Per segment (PanDA's default: 2 × maxPoints). */
  maxEvaluationJobs: z.number().int().positive(),
});
export type CompiledTask = z.infer<typeof CompiledTask>;

/**
 * Compiles a parsed spec (parseTaskSpec checked it). Total over every spec that parsed, so an old
 * log always replays: refusals added since (the steering program's docker form) stay where they
 * were checked before, at the steering iteration.
 */
export function compileTask(spec: TaskSpec): CompiledTask {
  const r = spec.resources;
  return {
    spec,
    evaluation: {
      container: spec.evaluationContainer,
      argv: tokenizeExec(spec.evaluationExec, "evaluationExec"),
      inputFile: spec.evaluationInput,
      trainingDataFile: spec.evaluationTrainingData,
      outputFile: spec.evaluationOutput,
      metaFile: spec.evaluationMeta ?? null,
      metricsFile: spec.evaluationMetrics ?? null,
      checkPointToSave: spec.checkPointToSave ?? [],
      checkPointToLoad: spec.checkPointToLoad ?? null,
      checkPointIntervalMs: spec.checkPointInterval * MINUTE_MS,
      checkPointLimitBytes: spec.checkPointLimitMB * MIB,
      timeoutMs: r.timeoutMinutes * MINUTE_MS,
      memoryBytes: r.memoryMB * MIB,
      nanoCpus: Math.round(r.cpus * 1e9),
      network: r.network,
    },
    steeringArgv: spec.steeringExec !== undefined ? tokenizeExec(spec.steeringExec, "steeringExec") : null,
    maxEvaluationJobs: spec.maxEvaluationJobs ?? 2 * spec.maxPoints,
  };
}
