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
import type { JournalEntry } from "./schedulerJournal.ts";
import { newPoint, type AttemptRec, type PointRec, type ReportRec } from "./records.ts";

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

// A point's reports and attempts are most of a snapshot: each is a row (an array, no key names);
// a report's loss is its metrics' (jobProgress records only reports that carry one).
// Checked by hand: there is one per progress report, and zod's tuple-and-record check of each was
// two thirds of a restore (bench/snapshot.ts).
type ReportRow = [number, Record<string, number>, number, number, number, string | null, string | null];
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const nameOrNull = (v: unknown) => v === null || typeof v === "string";
const ReportRow = z.custom<ReportRow>(
  (v) =>
    Array.isArray(v) &&
    v.length === 7 &&
    finite(v[0]) &&
    isMetrics(v[1]) &&
    Number.isInteger(v[2]) &&
    Number.isInteger(v[3]) &&
    finite(v[4]) &&
    nameOrNull(v[5]) &&
    nameOrNull(v[6]),
  { message: "must be a report row: [resource, metrics, job, attempt, at, site, agent]" },
);

function isMetrics(v: unknown): v is Record<string, number> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  for (const k in v) if (!finite((v as Record<string, unknown>)[k])) return false;
  return true;
}
const AttemptRow = z.tuple([
  int,
  int,
  site,
  site,
  z.enum(["ok", "failed", "stopped", "preempted", "lost"]),
  z.number().nullable(),
  z.number().nullable(),
  z.number(),
  z.string().nullable(),
  FailureClass.nullable(),
]);
type AttemptRow = z.infer<typeof AttemptRow>;

const reportRow = (r: ReportRec): ReportRow => [
  r.resource,
  r.metrics,
  r.job,
  r.attempt,
  r.at,
  r.site,
  r.agent,
];
const attemptRow = (a: AttemptRec): AttemptRow => [
  a.job,
  a.attempt,
  a.site,
  a.agent,
  a.status,
  a.loss,
  a.startedAt,
  a.finishedAt,
  a.error,
  a.failureClass,
];
function reportOf(
  [resource, metrics, job, attempt, at, site, agent]: ReportRow,
  where: string,
  bad: (message: string) => never,
): ReportRec {
  const loss = metrics.loss;
  if (loss === undefined) bad(`${where}.metrics: no loss (the engine records only reports with one)`);
  return { resource, loss, metrics, job, attempt, at, site, agent };
}
function attemptOf(row: AttemptRow): AttemptRec {
  const [job, attempt, site, agent, status, loss, startedAt, finishedAt, error, failureClass] = row;
  return { job, attempt, site, agent, status, loss, startedAt, finishedAt, error, failureClass };
}

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

/** A point record's fields (records.ts) as the snapshot writes them (reports and attempts as rows). */
const PointFields = z.object({
  pointId: count,
  segment: count,
  values: Point,
  state: PointState,
  loss: z.number().nullable(),
  attempts: count,
  failures: count,
  siteFailures: count,
  resource: z.number().nullable(),
  reports: z.array(ReportRow),
  history: z.array(AttemptRow),
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
export const PointPart = PointFields.partial().extend({
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
  if (p.reports.length > 0) part.reports = p.reports.map(reportRow);
  if (p.history.length > 0) part.history = p.history.map(attemptRow);
  return { ...(part as PointPart), pointId: p.pointId, segment: p.segment, values: p.values };
}

/** The point record of a part; `bad` throws on a report row without a loss. */
export function loadPoint(
  taskId: string,
  part: PointPart,
  where: string,
  bad: (message: string) => never,
): PointRec {
  const fresh = newPoint(taskId, part.pointId, part.segment, part.values, null, null);
  return {
    ...fresh,
    ...part,
    reports: part.reports?.map((r, i) => reportOf(r, `${where}.reports.${i}`, bad)) ?? [],
    history: part.history?.map(attemptOf) ?? [],
    job: { ...fresh.job, ...part.job },
  };
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

// one entry per scheduler argument: checked by hand for the same reason as ReportRow (replay checks the calls)
const Journal = z.custom<JournalEntry[]>(
  (v) => Array.isArray(v) && v.every((x) => x === null || typeof x === "string" || finite(x)),
  { message: "must be a list of numbers, strings and nulls (the scheduler's calls)" },
);

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
        journal: Journal,
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
  try {
    return copy(v) as T;
  } catch (e) {
    if (!(e instanceof NotJson)) throw e;
    // the copy runs without paths (they cost more than the copy); find it again to name it
    throw bad(`${path}${whereNotJson(v) ?? ""}: ${e.message}`);
  }
}

class NotJson extends Error {}

function copy(v: unknown): unknown {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw new NotJson(`${String(v)} cannot be written as JSON`);
      return v === 0 ? 0 : v;
    case "string":
    case "boolean":
      return v;
    case "object": {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const out = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) out[i] = copy(v[i] ?? null);
        return out;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype)
        throw new NotJson(`a ${v.constructor.name} cannot be written as JSON`);
      const out: Record<string, unknown> = {};
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = copy(x);
      }
      return out;
    }
    default:
      throw new NotJson(`a ${typeof v} cannot be written as JSON`);
  }
}

/** The path (".a.0.b") of the first part of `v` that copy() refuses; null if none. */
function whereNotJson(v: unknown): string | null {
  try {
    copy(v);
    return null;
  } catch {
    if (
      v === null ||
      typeof v !== "object" ||
      (!Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype)
    )
      return "";
  }
  for (const [k, x] of Object.entries(v)) {
    const below = x === undefined ? null : whereNotJson(x);
    if (below !== null) return `.${k}${below}`;
  }
  return "";
}
