// The parts of a task snapshot (snapshot.ts) as a schema: a snapshot body is read back from storage,
// so it is parsed like any other input before anything is built from it. Also the copy that makes
// a snapshot a JSON value: nothing shared with the live engine, and no number JSON cannot carry.
import { z } from "zod";
import { TaskState, PointState } from "../../../protocol/api.ts";
import { ErrorCode } from "../../../protocol/errors.ts";
import { FailureClass } from "../../../protocol/failures.ts";
import { ArtifactKind } from "../../../protocol/messages.ts";
import { Point } from "../../../protocol/points.ts";
import { SamplerState } from "../../sampler/state.ts";
import { CompiledTask } from "./compiledTask.ts";
import { newPoint, type PointRec } from "./records.ts";

const int = z.number().int();
const count = int.nonnegative();
const site = z.string().nullable();

const JobRecSchema = z.object({
  jobId: z.string(),
  pointId: count,
  seq: int.positive(),
  attempt: int.positive(),
  state: z.enum(["queued", "dispatched", "running", "done", "failed", "stopped", "cancelled"]),
  site,
  agent: site,
  dispatchedAt: z.number().nullable(),
  claimedAt: z.number().nullable(),
  target: z.number().nullable(),
  stop: z.enum(["pruned", "paused"]).nullable(),
  stopLoss: z.number().nullable(),
  stopResource: z.number().nullable(),
  decision: z.enum(["continue", "stop", "pause"]).nullable(),
  failedAt: z.number().nullable(),
  failedOn: z.array(z.object({ site, agent: site })),
});

const ReportRecSchema = z.object({
  resource: z.number(),
  loss: z.number(),
  metrics: z.record(z.string(), z.number()),
  job: int,
  attempt: int,
  at: z.number(),
  site,
  agent: site,
});

const AttemptRecSchema = z.object({
  job: int,
  attempt: int,
  site,
  agent: site,
  status: z.enum(["ok", "failed", "stopped", "preempted", "lost"]),
  loss: z.number().nullable(),
  startedAt: z.number().nullable(),
  finishedAt: z.number(),
  error: z.string().nullable(),
  failureClass: FailureClass.nullable(),
});

const MissingRecSchema = z.object({
  jobId: z.string(),
  job: int,
  attempt: int,
  kind: ArtifactKind,
  site: z.string(),
  agent: z.string(),
  reason: z.string(),
  pending: z.boolean(),
});

/** A point record (records.ts) as the snapshot holds it: every field, since the fold writes them all. */
export const PointRecSchema = z.object({
  pointId: count,
  segment: count,
  values: Point,
  state: PointState,
  loss: z.number().nullable(),
  attempts: count,
  failures: count,
  siteFailures: count,
  resource: z.number().nullable(),
  reports: z.array(ReportRecSchema),
  history: z.array(AttemptRecSchema),
  site,
  agent: site,
  error: z.string().nullable(),
  errorCode: ErrorCode.nullable(),
  failureClass: FailureClass.nullable(),
  metricsKeys: z.array(z.string()),
  logKeys: z.array(z.string()),
  missing: z.array(MissingRecSchema),
  checkpointKey: z.string().nullable(),
  checkpointResource: z.number().nullable(),
  trial: z.string().nullable(),
  fed: z.number(),
  closed: z.boolean(),
  jobs: int.positive(),
  job: JobRecSchema,
});

/**
 * A point as the snapshot writes it: the fields that differ from a new point's (records.ts
 * newPoint), the job's likewise. Most fields of most points keep their first value (null, 0, []),
 * so this is about half the size of the whole record.
 */
export const PointPart = PointRecSchema.partial().extend({
  pointId: count,
  segment: count,
  values: Point,
  job: JobRecSchema.partial().optional(),
});
export type PointPart = z.infer<typeof PointPart>;

export function savePoint(taskId: string, p: PointRec): PointPart {
  const fresh = newPoint(taskId, p.pointId, p.segment, p.values, null, null);
  const part: Record<string, unknown> = diff(p, fresh);
  const job = diff(p.job, fresh.job);
  part.job = Object.keys(job).length > 0 ? job : undefined;
  return { ...(part as Partial<PointRec>), pointId: p.pointId, segment: p.segment, values: p.values };
}

export function loadPoint(taskId: string, part: PointPart): PointRec {
  const fresh = newPoint(taskId, part.pointId, part.segment, part.values, null, null);
  return { ...fresh, ...part, job: { ...fresh.job, ...part.job } };
}

/** The own fields of `v` whose values differ from `base`'s (arrays: any that is not empty). */
function diff<T extends object>(v: T, base: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(v) as Array<keyof T>) {
    const x = v[k];
    const same = Array.isArray(x) ? x.length === 0 : x === base[k] || (x !== null && typeof x === "object");
    if (!same) out[k] = x;
  }
  return out;
}

const JournalEntry = z.union([z.number(), z.string(), z.null()]);

export const TaskSnapshotBody = z.object({
  taskId: z.string().min(1),
  /** The task-created event's parts, once: the engine is built from them as from that event. */
  created: z.object({ at: z.number(), user: z.string(), seed: int, task: CompiledTask }),
  state: TaskState,
  finishedAt: z.number().nullable(),
  nextPointId: count,
  attemptsUsed: z.array(count),
  /** In the engine's order (insertion); the jobs map and the point indexes are rebuilt from them. */
  points: z.array(PointPart),
  segments: z.array(
    // null: no point sampled yet, or a steering program's segment
    z.object({
      // checked, kept as the engine holds it (unknown: the log's points-added carries it so)
      sampler: z.unknown().refine((v) => v === null || SamplerState.safeParse(v).success, {
        message: "must be a built-in sampler's state (random or grid) or null",
      }),
      generated: count,
      exhausted: z.boolean(),
      owed: count,
    }),
  ),
  schedulers: z
    .array(
      z.object({
        fault: z.string().nullable(),
        stalled: z.boolean(),
        trials: z.array(z.union([z.string(), z.number()])),
        journal: z.array(JournalEntry),
      }),
    )
    .nullable(),
  steering: z.array(
    z.object({
      segmentIndex: count,
      startedAt: z.number(),
      endedAt: z.number(),
      outcome: z.enum(["points", "empty", "failed"]),
      added: count,
      exitCode: int.nullable(),
      reason: z.string().nullable(),
      retryAt: z.number().nullable(),
      logKey: z.string().nullable(),
    }),
  ),
});
export type TaskSnapshotBody = z.infer<typeof TaskSnapshotBody>;

/**
 * A deep copy of a JSON-like value that JSON keeps exactly: -0 becomes 0 (as the log, written by
 * JSON, holds it), undefined members are dropped (as JSON drops them), and NaN or ±Infinity, which
 * no logged event can carry, is refused with the path where it was found (`bad` builds the error).
 */
export function jsonCopy<T>(v: T, path: string, bad: (message: string) => Error): T {
  return copy(v, path, bad) as T;
}

function copy(v: unknown, path: string, bad: (message: string) => Error): unknown {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw bad(`${path}: ${String(v)} cannot be written as JSON`);
    return v === 0 ? 0 : v;
  }
  if (v === null || typeof v !== "object") {
    if (v === null || typeof v === "string" || typeof v === "boolean") return v;
    throw bad(`${path}: a ${typeof v} cannot be written as JSON`);
  }
  if (Array.isArray(v)) return v.map((x, i) => copy(x ?? null, `${path}.${i}`, bad));
  if (Object.getPrototypeOf(v) !== Object.prototype)
    throw bad(`${path}: a ${v.constructor.name} cannot be written as JSON`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = copy(x, `${path}.${k}`, bad);
  return out;
}
