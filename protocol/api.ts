// The client API's messages (phpo and the monitor ⇄ steering), one schema per message, unions
// split on `verb` or `type`; the agents' messages are in messages.ts.
//   gt.api.<user>.<verb>            ApiRequest → ApiReply       (core request/reply)
//   gt.events.<user>.<task>         TaskEvents         (core)
import { z } from "zod";
import { WireError } from "./errors.ts";
import { ArtifactKind, TaskId } from "./messages.ts";
import { TaskSpec } from "./taskConfig.ts";
import { Point } from "./points.ts";
import { FailureClass } from "./failures.ts";
import { DatasetReplies, DatasetRequests } from "./datasets.ts";

export const TaskState = z.enum(["running", "paused", "finished", "killed"]);
export type TaskState = z.infer<typeof TaskState>;
/**
 * budget-spent: maxEvaluationJobs ran out before the point could run (again); a point whose
 * attempts had failed gets PanDA's very large loss, like a failed one.
 */
export const PointState = z.enum([
  "queued",
  "running",
  "paused",
  "done",
  "failed",
  "stopped",
  "cancelled",
  "budget-spent",
]);
export type PointState = z.infer<typeof PointState>;

export const PointView = z.object({
  pointId: z.number().int(),
  segment: z.string().nullable(),
  values: Point,
  state: PointState,
  loss: z.number().nullable(),
  /**
   * Attempts of the point's job that had the most: PanDA's count, at most maxAttempts (a
   * preemption hand-back aside). A promotion is a new job, not an attempt: see `jobs`.
   */
  attempts: z.number().int(),
  resource: z.number().nullable(),
  reports: z.array(
    z.object({
      resource: z.number(),
      loss: z.number(),
      // Which job and attempt reported, when, where, and all its numeric metrics.
      metrics: z.record(z.string(), z.number()).optional(),
      job: z.number().int().optional(),
      attempt: z.number().int().optional(),
      at: z.number().optional(),
      site: z.string().nullable().optional(),
    }),
  ),
  /** Every attempt that ended, with its outcome and times. */
  history: z
    .array(
      z.object({
        job: z.number().int(),
        attempt: z.number().int(),
        site: z.string().nullable(),
        agent: z.string().nullable(),
        status: z.enum(["ok", "failed", "stopped", "preempted", "lost"]),
        loss: z.number().nullable(),
        startedAt: z.number().nullable(),
        finishedAt: z.number(),
        error: z.string().nullable(),
        /** A failed or lost attempt's class (absent from an older steering). */
        failureClass: FailureClass.nullable().optional(),
      }),
    )
    .optional(),
  site: z.string().nullable(),
  agent: z.string().nullable(),
  error: z.string().nullable(),
  /** The class of the failure `error` tells of (absent from an older steering). */
  failureClass: FailureClass.nullable().optional(),
  metricsKeys: z.array(z.string()),
  logKeys: z.array(z.string()),
  /**
   * Artifacts of ended attempts that S3 has not got: `pending` while the agent still tries to
   * upload them, else given up with `reason`. An artifact that arrives leaves the list.
   */
  missing: z
    .array(
      z.object({
        job: z.number().int(),
        attempt: z.number().int(),
        kind: ArtifactKind,
        reason: z.string(),
        pending: z.boolean(),
      }),
    )
    .optional(),
  checkpointKey: z.string().nullable(),
  /** Tasks with a scheduler: the trial name and the resource level its current job trains to. */
  trial: z.string().nullable().optional(),
  target: z.number().nullable().optional(),
  /** Jobs so far: 1 plus one per promotion. */
  jobs: z.number().int().optional(),
  /**
   * The scheduler's stop or pause decision on the point's current job: the resource and loss it
   * was judged at (the point's loss and resource), while its reports may go further (the payload
   * keeps training until the stop reaches it).
   */
  judged: z.object({ resource: z.number(), loss: z.number().nullable() }).nullable().optional(),
  /** Attempts dispatched over all the point's jobs (`attempts` counts within one job). */
  dispatches: z.number().int().optional(),
});
export type PointView = z.infer<typeof PointView>;

/**
 * One run of the task's steering program (steeringExec): when, what it gave, and why it failed.
 * A failed iteration is retried after `retryAt`; one with `retryAt` null ended generation for its
 * segment (its last attempt, or a refusal no retry can mend).
 */
export const SteeringIterationView = z.object({
  /** 1, 2, … over the whole task, in log order. */
  iteration: z.number().int().positive(),
  segment: z.string().nullable(),
  startedAt: z.number(),
  endedAt: z.number(),
  outcome: z.enum(["points", "empty", "failed"]),
  /** Points it added to the task (a result that came too late adds none). */
  added: z.number().int().nonnegative(),
  exitCode: z.number().int().nullable(),
  reason: z.string().nullable(),
  retryAt: z.number().nullable(),
  /** Its stdout and stderr are stored (phpo logs TASK --steering --iteration N). */
  hasLog: z.boolean(),
});
export type SteeringIterationView = z.infer<typeof SteeringIterationView>;

/** Tasks with steeringExec: their program's iterations in brief. */
export const SteeringSummary = z.object({
  iterations: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  last: SteeringIterationView.nullable(),
  /** Set when a failing program ended generation: "iteration N (segment S) failed: reason". */
  failure: z.string().nullable(),
});
export type SteeringSummary = z.infer<typeof SteeringSummary>;

export const TaskSummary = z.object({
  taskId: TaskId,
  user: z.string(),
  outDS: z.string(),
  state: TaskState,
  createdAt: z.number(),
  finishedAt: z.number().nullable(),
  maxPoints: z.number().int(),
  counts: z.object({
    points: z.number().int(),
    done: z.number().int(),
    failed: z.number().int(),
    running: z.number().int(),
    queued: z.number().int(),
    /** Attempts dispatched, over every job of every point (retries and promotions included). */
    jobs: z.number().int(),
    // Defaults: a steering from before these counts sends none of them.
    /** Pruned by the scheduler (ended for good before max_t). */
    stopped: z.number().int().default(0),
    /** Paused at a rung by a pausing scheduler (promotion ASHA, PASHA): may be promoted later. */
    paused: z.number().int().default(0),
    cancelled: z.number().int().default(0),
    /**
     * Points that reached an end: done, failed, stopped, or paused at a rung. A paused trial has
     * its result at that rung; a promotion takes it back to queued until its next result.
     */
    evaluated: z.number().int().default(0),
    /** Jobs: one per point plus one per promotion (a retry is a new attempt of the same job). */
    pointJobs: z.number().int().default(0),
    /** Points that maxEvaluationJobs left without an attempt they were owed (state budget-spent). */
    budgetSpent: z.number().int().default(0),
  }),
  /**
   * maxEvaluationJobs over all segments: attempts dispatched (`used`, the same as counts.jobs),
   * the `limit`, and whether some segment has spent its own (absent from an older steering).
   */
  budget: z.object({ used: z.number().int(), limit: z.number().int(), spent: z.boolean() }).optional(),
  best: z.object({ pointId: z.number().int(), loss: z.number(), values: Point }).nullable(),
  /** Tasks with steeringExec (absent otherwise, and from an older steering). */
  steering: SteeringSummary.optional(),
});
export type TaskSummary = z.infer<typeof TaskSummary>;

/** Rung values in a `show` reply: the best ones (a rung of a 100k-trial task would not fit in a reply). */
export const RUNG_VALUES_SHOWN = 2000;

export const TaskDetail = TaskSummary.extend({
  spec: TaskSpec,
  /** One page of the points, by point id from `pointsFrom` (a reply stays under NATS's max_payload). */
  points: z.array(PointView),
  pointsFrom: z.number().int().nonnegative().default(0),
  /** Where the next page starts (`show` with pointsFrom = this), or null on the last page. */
  pointsNext: z.number().int().nonnegative().nullable().default(null),
  segments: z.array(
    z.object({ name: z.string().nullable(), points: z.number().int(), best: z.number().nullable() }),
  ),
  /**
   * Tasks with a scheduler: each segment's rungs, their level and recorded values, best first
   * (at most RUNG_VALUES_SHOWN of them; `count` says how many the rung holds).
   */
  /** Tasks with steeringExec: the last STEERING_ITERATIONS_SHOWN iterations, oldest first. */
  steeringIterations: z.array(SteeringIterationView).optional(),
  rungs: z
    .array(
      z.object({
        segment: z.string().nullable(),
        level: z.number(),
        values: z.array(z.number()),
        count: z.number().int().nonnegative().optional(),
        /** The trial of each value, same order, where the scheduler names them (ASHA, SHA, PASHA). */
        trials: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
export type TaskDetail = z.infer<typeof TaskDetail>;

/** Steering iterations in a `show` reply (the most recent; phpo logs --steering lists them all). */
export const STEERING_ITERATIONS_SHOWN = 50;

/** The most points one `show` may ask for (the reply's byte budget usually ends a page sooner). */
export const MAX_POINTS_LIMIT = 100_000;

/**
 * Where a page of a `list` or `download` reply starts (an index: tasks by id, points by id).
 * Without it steering answers everything in one reply, as before paging; a reply over NATS's
 * max_payload is then a TOO_LARGE error (a phpo that pages always sends it).
 */
const PageFrom = z.number().int().nonnegative().optional();
/** Where the next page starts (the request's `from`), or null on the last page. */
const PageNext = z.number().int().nonnegative().nullable().default(null);

export const ApiRequest = z.discriminatedUnion("verb", [
  z.object({ verb: z.literal("submit"), spec: TaskSpec }),
  z.object({ verb: z.literal("list"), from: PageFrom }),
  z.object({
    verb: z.literal("show"),
    taskId: TaskId,
    /** Index (in point-id order) of the first point of the page. */
    pointsFrom: z.number().int().nonnegative().default(0),
    /** Most points in the page; 0 asks for the summary, segments and rungs only. */
    pointsLimit: z.number().int().nonnegative().max(MAX_POINTS_LIMIT).default(MAX_POINTS_LIMIT),
  }),
  z.object({ verb: z.literal("kill"), taskId: TaskId }),
  z.object({ verb: z.literal("pause"), taskId: TaskId }),
  z.object({ verb: z.literal("resume"), taskId: TaskId }),
  z.object({ verb: z.literal("retry"), taskId: TaskId, failedOnly: z.boolean() }),
  /** A presigned PUT for the sandbox tarball of a task about to be submitted. */
  z.object({
    verb: z.literal("upload"),
    size: z
      .number()
      .int()
      .positive()
      .max(512 * 1024 * 1024),
  }),
  /** Presigned GETs for a task's artifacts, a page of points at a time (`from`, at most `limit`). */
  z.object({
    verb: z.literal("download"),
    taskId: TaskId,
    kinds: z.array(ArtifactKind).min(1),
    from: PageFrom,
    limit: z.number().int().positive().max(MAX_POINTS_LIMIT).optional(),
  }),
  /** The steering program's iterations, and a presigned GET of one's output (default: the last). */
  z.object({
    verb: z.literal("steering-log"),
    taskId: TaskId,
    iteration: z.number().int().positive().optional(),
  }),
  // phpo dataset (protocol/datasets.ts)
  ...DatasetRequests,
]);
export type ApiRequest = z.infer<typeof ApiRequest>;
export type ApiVerb = ApiRequest["verb"];

export const DownloadItem = z.object({
  pointId: z.number().int(),
  /** The job of the point (1, then one per ASHA promotion); absent from an older steering. */
  job: z.number().int().positive().optional(),
  attempt: z.number().int(),
  kind: ArtifactKind,
  name: z.string(),
  url: z.string(),
});
export type DownloadItem = z.infer<typeof DownloadItem>;

/** An artifact of the kinds asked for that S3 does not hold (see PointView.missing). */
export const MissingItem = z.object({
  pointId: z.number().int(),
  attempt: z.number().int(),
  kind: ArtifactKind,
  reason: z.string(),
  pending: z.boolean(),
});
export type MissingItem = z.infer<typeof MissingItem>;

/** Reply payloads per verb; the client validates the one it expects. */
export const ApiReplies = {
  /** warnings: accepted, but e.g. no agent of the task's sites is registered now (it waits). */
  submit: z.object({ taskId: TaskId, warnings: z.array(z.string()).optional() }),
  list: z.object({ tasks: z.array(TaskSummary), next: PageNext }),
  show: TaskDetail,
  kill: TaskSummary,
  pause: TaskSummary,
  resume: TaskSummary,
  retry: z.object({ task: TaskSummary, requeued: z.number().int() }),
  upload: z.object({ key: z.string(), url: z.string() }),
  download: z.object({
    items: z.array(DownloadItem),
    /** Artifacts of the page's points that S3 has not got (older steering: absent). */
    missing: z.array(MissingItem).default([]),
    next: PageNext,
  }),
  "steering-log": z.object({
    iterations: z.array(SteeringIterationView),
    /** The iteration asked for (or the last), with its log's name and presigned GET. */
    log: z.object({ iteration: z.number().int().positive(), name: z.string(), url: z.string() }).nullable(),
  }),
  ...DatasetReplies,
} as const;

export const ApiReply = z.union([
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: WireError }),
]);
export type ApiReply = z.infer<typeof ApiReply>;

/** One change of a task, as steering's watch messages carry it. */
export const TaskChange = z.object({
  at: z.number(),
  kind: z.enum([
    "point-added",
    "job-started",
    "progress",
    "point-done",
    "point-failed",
    "state",
    "steering-iteration",
  ]),
  pointId: z.number().int().nullable(),
  loss: z.number().nullable(),
});
export type TaskChange = z.infer<typeof TaskChange>;

/** Most changes in one watch message (about 100 KiB); a larger batch goes out in several. */
export const MAX_CHANGES_PER_MESSAGE = 1000;

/**
 * A watch message on gt.events.<user>.<task>: the changes steering stored since its last message
 * for the task (gathered for up to 100 ms), with the summary after them. One message per batch,
 * not per change: at thousands of evaluations/s a message per change was a third of steering's
 * publishes.
 */
export const TaskEvents = z.object({
  taskId: TaskId,
  changes: z.array(TaskChange).min(1).max(MAX_CHANGES_PER_MESSAGE),
  summary: TaskSummary,
});
export type TaskEvents = z.infer<typeof TaskEvents>;

/** One change with its task and the summary: what `phpo watch --json` prints per line. */
export const TaskEvent = TaskChange.extend({ taskId: TaskId, summary: TaskSummary });
export type TaskEvent = z.infer<typeof TaskEvent>;
