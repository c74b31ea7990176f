// The task configuration. `PhpoOptions` is what a user writes (PanDA phpo option names, from
// --loadJson and the command line); `TaskSpec` is what phpo submits and steering stores: the
// same options with defaults applied and the referenced files (search space, segments) inlined.
import { z } from "zod";
import { describeZodError, ValidationError } from "./errors.ts";
import { tokenizeExec } from "./execString.ts";
import { checkSteeringExecForm } from "./steeringExec.ts";
import { SearchSpace, strict } from "./searchSpace.ts";
import { parseSchedulerConfig, SchedulerConfig } from "./scheduler.ts";
import { SamplerConfig } from "./sampler.ts";
import { NAME_RE } from "./names.ts";

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

/** The longest delay a Node.js timer takes (2^31 − 1 ms, about 24.8 days) in whole minutes: a longer one fires at once. */
export const MAX_TIMER_MINUTES = 35_791;
const minutes = z
  .number()
  .positive()
  .max(MAX_TIMER_MINUTES, `at most ${MAX_TIMER_MINUTES} minutes (about 24.8 days)`);

/** A dataset name (trainingDS, a segment's datasets, outDS without its trailing "/"). */
const DATASET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const datasetName = z
  .string()
  .regex(DATASET_RE, "a dataset name uses letters, digits, '.', '_' and '-' (e.g. user.<nickname>.<name>)");

/**
 * A file of the evaluation's working directory, named relative to it (the agent refuses anything
 * else when the job runs; refusing at submission saves every attempt of every point).
 */
const workDirPath = z
  .string()
  .min(1)
  .refine(
    (p) => !p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0"),
    "a path relative to the evaluation's working directory, without '..' (e.g. output.json or out/metrics.tgz)",
  );

/**
 * One segment of a segmented task: its training files, named one by one (`files`, relative to
 * trainingDS) or by constituent dataset (`datasets`: every file under `<trainingDS>/<dataset>/`).
 */
export const Segment = strict({
  name: z.string().regex(NAME_RE, "segment names use letters, digits, '_' and '-' only (max 64)"),
  files: z.array(workDirPath).default([]),
  datasets: z.array(datasetName).optional(),
});
export type Segment = z.infer<typeof Segment>;

/** Resource limits of one evaluation (the agent's site policy may lower them). */
export const EvaluationResources = strict({
  memoryMB: posInt.default(2048),
  cpus: z.number().positive().default(1),
  /** Wall-clock limit of one attempt, in minutes. */
  timeoutMinutes: minutes.default(60),
  network: z.enum(["none", "bridge"]).default("none"),
});
export type EvaluationResources = z.infer<typeof EvaluationResources>;

export const TaskSpec = z
  .object({
    outDS: z
      .string()
      .refine(
        (v) => DATASET_RE.test(v.endsWith("/") ? v.slice(0, -1) : v),
        "a dataset name: letters, digits, '.', '_' and '-', and a trailing '/' (e.g. user.<nickname>.<name>/)",
      ),
    nParallelEvaluation: posInt.default(1),
    maxPoints: posInt.default(10),
    /** Default 2 × maxPoints (per segment), applied by steering when it compiles the task. */
    maxEvaluationJobs: posInt.optional(),
    nPointsPerIteration: posInt.default(2),
    minUnevaluatedPoints: nonNegInt.default(0),
    maxPointsPerEvaluationJob: posInt.default(1),
    steeringContainer: z.string().min(1).optional(),
    steeringExec: z.string().min(1).optional(),
    evaluationContainer: z.string().min(1),
    evaluationExec: z.string().min(1),
    evaluationInput: workDirPath.default("input.json"),
    evaluationTrainingData: workDirPath.default("input_ds.json"),
    evaluationOutput: workDirPath.default("output.json"),
    evaluationMeta: workDirPath.optional(),
    evaluationMetrics: workDirPath.optional(),
    trainingDS: datasetName.optional(),
    checkPointToSave: z.array(workDirPath).optional(),
    checkPointToLoad: workDirPath.optional(),
    /** Minutes between checks for changed checkpoint files (PanDA default 5). */
    checkPointInterval: minutes.default(5),
    segments: z.array(Segment).optional(),
    /** One space for every segment, or (segmented tasks) one per segment, in segment order. */
    searchSpace: SearchSpace,
    segmentSearchSpaces: z.array(SearchSpace).optional(),
    site: z.array(z.string().min(1)).optional(),
    architecture: z.string().optional(),
    workingGroup: z.string().optional(),
    official: z.boolean().default(false),
    alrbArgs: z.string().optional(),
    // gridtune extensions
    sampler: SamplerConfig.optional(),
    scheduler: SchedulerConfig.optional(),
    /** Attempts per evaluation job before the point gets FAILED_POINT_LOSS (PanDA: 3). */
    maxAttempts: posInt.max(20).default(3),
    /** The input.json key that carries the resource level to reach (ASHA jobs). */
    resourceKey: z.string().min(1).default("epochs"),
    resources: EvaluationResources.prefault({}),
    /** S3 key of the sandbox (the *.json, *.py, *.sh, *.yaml files phpo sends along). */
    sandboxKey: z.string().min(1).optional(),
    /** Checkpoint size limit in MB (PanDA: 100). */
    checkPointLimitMB: posInt.default(100),
  })
  .strict();
export type TaskSpec = z.infer<typeof TaskSpec>;
export type TaskSpecInput = z.input<typeof TaskSpec>;

/** Parses and cross-checks a task spec at a boundary (phpo before submit, steering on receipt). */
export function parseTaskSpec(input: unknown): TaskSpec {
  // the scheduler first: its own messages name a misspelt key's closest match
  const scheduler = (input as { scheduler?: unknown } | null)?.scheduler;
  if (scheduler !== undefined) parseSchedulerConfig(scheduler, "scheduler");
  const r = TaskSpec.safeParse(input);
  if (!r.success) throw new ValidationError("INVALID_CONFIG", describeZodError(r.error));
  return checkTaskSpec(r.data);
}

/**
 * The checks across fields of a spec the schema parsed (steering's API request schema parses the
 * spec with the request; these follow without parsing it again). Returns the spec.
 */
export function checkTaskSpec(spec: TaskSpec): TaskSpec {
  tokenizeExec(spec.evaluationExec, "evaluationExec");
  if (spec.steeringExec) tokenizeExec(spec.steeringExec, "steeringExec");
  checkSteeringExecForm(spec);
  if (spec.minUnevaluatedPoints >= spec.nPointsPerIteration && spec.steeringExec) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `minUnevaluatedPoints (${spec.minUnevaluatedPoints}) must be smaller than nPointsPerIteration ` +
        `(${spec.nPointsPerIteration}): each steering iteration asks for their difference`,
    );
  }
  if (spec.steeringExec && spec.scheduler) {
    throw new ValidationError(
      "INVALID_CONFIG",
      "steeringExec and scheduler cannot be combined: the steering program proposes the points of a " +
        "PanDA-style task, a scheduler drives the built-in sampler; remove one of them",
    );
  }
  if (spec.sampler?.type === "grid") checkGridDimensions(spec);
  const nSeg = spec.segments?.length ?? 0;
  if (spec.segmentSearchSpaces && spec.segmentSearchSpaces.length !== nSeg) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `segmentSearchSpaces has ${spec.segmentSearchSpaces.length} spaces but there are ${nSeg} segments; ` +
        `give one space per segment or a single space for all`,
    );
  }
  if (spec.segments) {
    const seen = new Set<string>();
    for (const s of spec.segments) {
      if (seen.has(s.name))
        throw new ValidationError("INVALID_CONFIG", `segments: duplicate name "${s.name}"`);
      seen.add(s.name);
      if ((s.files.length > 0 || (s.datasets?.length ?? 0) > 0) && !spec.trainingDS)
        throw new ValidationError(
          "INVALID_CONFIG",
          `segments: segment "${s.name}" selects training files but trainingDS is not set; ` +
            `set --trainingDS to the dataset that holds them`,
        );
    }
  }
  return spec;
}

/**
 * The grid sampler walks the dimensions flagged grid_search: a space with none would be accepted,
 * then never sample a point (the task would sit at 0 points), so it is refused here.
 */
function checkGridDimensions(spec: TaskSpec): void {
  const spaces = spec.segmentSearchSpaces?.length ? spec.segmentSearchSpaces : [spec.searchSpace];
  spaces.forEach((space, i) => {
    const flagged = Object.values(space).some(
      (p) => p.dimension.grid_search === 1 || p.dimension.grid_search === true,
    );
    if (flagged) return;
    const where = spec.segmentSearchSpaces?.length ? `segmentSearchSpaces[${i}]` : "the search space";
    throw new ValidationError(
      "INVALID_CONFIG",
      `sampler type "grid" needs at least one parameter with "grid_search": 1 in its dimension, and ` +
        `${where} has none: flag one (categorical, uniformint, quniform or qloguniform), for example ` +
        `"dimension": {"categories": [8, 16], "grid_search": 1}, or use --sampler random`,
    );
  });
}
