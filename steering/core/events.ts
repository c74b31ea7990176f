// Steering's durable event log (JetStream stream GTLOG, subject gt.log.<taskId>). Every state
// change is appended here, and acknowledged by the server, before it is acted on; the in-memory
// state of every task is a fold of these events, so a restarted service rebuilds it exactly.
import { z } from "zod";
import { ArtifactKind, ResultOutcome, UploadedArtifact } from "../../protocol/messages.ts";
import { TaskState } from "../../protocol/api.ts";
import { Point } from "../../protocol/points.ts";
import { TaskSpec } from "../../protocol/taskConfig.ts";
import { CompiledTask, compileTask } from "./task/compiledTask.ts";

const Suggestion = z.discriminatedUnion("action", [
  z.object({ action: z.literal("new"), trial: z.string(), milestone: z.number() }),
  z.object({ action: z.literal("promote"), trial: z.string(), from: z.number(), to: z.number() }),
]);

const base = { taskId: z.string(), at: z.number() };
const attemptRef = { jobId: z.string(), attempt: z.number().int().positive() };

/**
 * A task was submitted: its spec compiled once (task/compiledTask.ts). An older steering logged the
 * spec alone (`spec`); such an event is compiled here, as it is read, and nowhere else.
 */
const TaskCreated = z
  .object({
    type: z.literal("task-created"),
    ...base,
    user: z.string(),
    task: CompiledTask.optional(),
    spec: TaskSpec.optional(),
    seed: z.number().int(),
  })
  .transform(({ task, spec, ...rest }, ctx) => {
    if (task) return { ...rest, task };
    if (spec) return { ...rest, task: compileTask(spec) };
    ctx.addIssue({ code: "custom", path: ["task"], message: "a task-created event needs its task" });
    return z.NEVER;
  });

export const LogEvent = z.discriminatedUnion("type", [
  TaskCreated,
  z.object({
    type: z.literal("points-added"),
    ...base,
    segment: z.number().int().nonnegative(),
    points: z.array(z.object({ pointId: z.number().int().nonnegative(), values: Point })),
    /** The sampler's state after producing these points (restores it exactly). */
    sampler: z.unknown(),
    /** The sampler said it has nothing more to offer (iDDS: an empty list ends generation). */
    exhausted: z.boolean(),
    /**
     * Points of the same iteration still to come in the next points-added events of the segment:
     * an iteration too large for one log message (1 MiB) is logged in parts, and replay goes on
     * with the rest exactly where a live steering would.
     */
    more: z.number().int().nonnegative().default(0),
  }),
  z.object({ type: z.literal("job-dispatched"), ...base, ...attemptRef, site: z.string() }),
  z.object({ type: z.literal("job-claimed"), ...base, ...attemptRef, site: z.string(), agent: z.string() }),
  z.object({
    type: z.literal("job-progress"),
    ...base,
    ...attemptRef,
    resource: z.number(),
    metrics: z.record(z.string(), z.number()),
  }),
  z.object({
    type: z.literal("job-checkpoint"),
    ...base,
    ...attemptRef,
    artifact: UploadedArtifact,
    resource: z.number().nullable(),
  }),
  z.object({
    type: z.literal("job-finished"),
    ...base,
    ...attemptRef,
    site: z.string(),
    agent: z.string(),
    ...ResultOutcome.shape,
  }),
  z.object({ type: z.literal("job-lost"), ...base, ...attemptRef, reason: z.string() }),
  /**
   * An artifact its attempt's result listed as missing: uploaded later by the agent (`artifact`),
   * or given up (`artifact` null, with the agent's `reason`).
   */
  z.object({
    type: z.literal("job-artifact"),
    ...base,
    ...attemptRef,
    kind: ArtifactKind,
    artifact: UploadedArtifact.nullable(),
    reason: z.string().nullable(),
  }),
  z.object({
    type: z.literal("task-state"),
    ...base,
    state: TaskState,
  }),
  /**
   * One run of the steering program (tasks with steeringExec), committed when it ended, before the
   * points-added events of its result. `logKey`: its stdout/stderr in S3 (null: not stored).
   * A failed one with `retryAt` is run again from then on; without, generation of its segment ended.
   */
  z.object({
    type: z.literal("steering-iteration"),
    ...base,
    segment: z.number().int().nonnegative(),
    startedAt: z.number(),
    outcome: z.enum(["points", "empty", "failed"]),
    added: z.number().int().nonnegative(),
    exitCode: z.number().int().nullable(),
    reason: z.string().nullable(),
    retryAt: z.number().nullable(),
    logKey: z.string().nullable(),
  }),
  z.object({ type: z.literal("points-requeued"), ...base, pointIds: z.array(z.number().int()) }),
  // A scheduler suggestion (tasks with a `scheduler`), recorded so that replay can re-run suggest()
  // and check it gets the same answer. `new` carries the sampled point (null: the sampler had
  // nothing left) and the sampler's state; `promote` names the paused point that goes on.
  z.object({
    type: z.literal("trial-suggested"),
    ...base,
    segment: z.number().int().nonnegative(),
    pointId: z.number().int().nonnegative(),
    suggestion: Suggestion,
    values: Point.nullable(),
    sampler: z.unknown(),
    exhausted: z.boolean(),
  }),
]);
export type LogEvent = z.infer<typeof LogEvent>;
export type LogEventOf<T extends LogEvent["type"]> = Extract<LogEvent, { type: T }>;

/**
 * One GTLOG message: a single event (as first written), or a batch of one task's events staged in
 * the same turn of the event loop (group commit: one append, one ack for them all). A reader
 * gets the events of either form in order with eventsOf().
 */
export const LogBatch = z.object({ batch: z.array(z.unknown()).min(1) });
export type LogBatch = z.infer<typeof LogBatch>;

/** The events of one GTLOG message, each validated on its own: an unreadable one is reported. */
export function eventsOf(raw: unknown): Array<{ ok: true; event: LogEvent } | { ok: false; issue: string }> {
  const b = LogBatch.safeParse(raw);
  const items = b.success ? b.data.batch : [raw];
  return items.map((item) => {
    const r = LogEvent.safeParse(item);
    return r.success
      ? { ok: true as const, event: r.data }
      : { ok: false as const, issue: r.error.issues[0]?.message ?? "invalid" };
  });
}
