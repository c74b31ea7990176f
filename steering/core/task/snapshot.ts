// A task engine's snapshot: its state after event N of its log as one JSON document, so that
// start-up (or a standby's takeover) rebuilds the engine from the document and folds events N+1…
// only, instead of re-folding the whole log. Restoring and folding the rest gives exactly the engine
// a full fold gives: same state, same decisions, same views (test/unit/task-snapshot.test.ts).
//
// What is kept is what the fold writes and restore cannot recompute: the task-created event's parts
// (once), the task's state, the point records, each segment's sampling fields, each scheduler as
// the journal of the calls it was given (schedulerJournal.ts: replayed on a fresh scheduler, so no
// per-type serializer), and the steering program's runs. Not kept, rebuilt on restore: the jobs map
// (each point's current job), the point indexes, the steering runs' retry state. The order of the
// points is kept; the jobs map and the index sets are rebuilt in that order, which no decision
// depends on: jobs is only looked up, and every read of an index set is a count, a membership,
// a minimum by point id or a sort by point id (dispatchQueue.ts, proposals.ts).
import { describeZodError } from "../../../protocol/errors.ts";
import { jobIdOf } from "../../../protocol/names.ts";
import { jsonCopy, loadPoint, savePoint, TaskSnapshotBody } from "./snapshotParts.ts";
import { TaskEngine } from "./taskEngine.ts";

export const TASK_SNAPSHOT_VERSION = 1;

export interface TaskSnapshot extends TaskSnapshotBody {
  readonly version: typeof TASK_SNAPSHOT_VERSION;
  readonly taskId: string;
}

/**
 * SNAPSHOT_INVALID: a document restoreTask cannot use (wrong version, a part that does not hold
 * together); the caller replays the whole log instead. SNAPSHOT_UNAVAILABLE: the engine cannot be
 * snapshotted now (a suggestion not logged yet: a snapshot is taken only with no append in flight).
 */
export class SnapshotError extends Error {
  override name = "SnapshotError";
  constructor(
    readonly code: "SNAPSHOT_INVALID" | "SNAPSHOT_UNAVAILABLE",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Throws SnapshotError if the engine cannot be snapshotted now (a live suggestion not yet logged). */
export function snapshotTask(e: TaskEngine): TaskSnapshot {
  const bad = (message: string) => new SnapshotError("SNAPSHOT_UNAVAILABLE", `task ${e.taskId}: ${message}`);
  const pending = e.schedulers?.findIndex((s) => s.hasUnloggedSuggestion) ?? -1;
  if (pending >= 0)
    throw bad(
      `the scheduler of segment ${pending} gave a suggestion that is not logged yet: snapshot only when no append is in flight`,
    );
  return {
    version: TASK_SNAPSHOT_VERSION,
    taskId: e.taskId,
    created: { at: e.createdAt, user: e.user, seed: e.seed, task: jsonCopy(e.task, "created.task", bad) },
    state: e.state,
    finishedAt: e.finishedAt,
    nextPointId: e.nextPointId,
    attemptsUsed: [...e.attemptsUsed],
    points: jsonCopy(
      [...e.points.values()].map((p) => savePoint(e.taskId, p)),
      "points",
      bad,
    ),
    segments: e.segments.map((s, i) => jsonCopy(s.save(), `segments.${i}`, bad)),
    // the journal holds only JSON-safe entries already (schedulerJournal.ts)
    schedulers: e.schedulers?.map((s) => s.save()) ?? null,
    steering: jsonCopy(e.steering.save(), "steering", bad),
  };
}

/** Throws SnapshotError (code SNAPSHOT_INVALID) on a wrong version or a document that does not hold together. */
export function restoreTask(s: TaskSnapshot): TaskEngine {
  try {
    return restore(s);
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    // a document the checks below let through and the engine still could not take
    throw new SnapshotError("SNAPSHOT_INVALID", `the snapshot does not hold together: ${String(e)}`, {
      cause: e,
    });
  }
}

function invalid(message: string): never {
  throw new SnapshotError("SNAPSHOT_INVALID", `task snapshot: ${message}`);
}

function restore(doc: unknown): TaskEngine {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) invalid("the document is not an object");
  const version = (doc as { version?: unknown }).version;
  if (version !== TASK_SNAPSHOT_VERSION)
    invalid(
      `version: ${JSON.stringify(version) ?? "missing"} is not ${TASK_SNAPSHOT_VERSION}, the version this steering reads: replay the task's whole log instead`,
    );
  const parsed = TaskSnapshotBody.safeParse(doc);
  if (!parsed.success) invalid(describeZodError(parsed.error));
  const b = parsed.data;
  const e = new TaskEngine({ type: "task-created", taskId: b.taskId, ...b.created });
  const n = e.segments.length;
  if (b.segments.length !== n)
    invalid(`segments: ${b.segments.length} entries for the task's ${n} segment(s)`);
  if (b.attemptsUsed.length !== n)
    invalid(`attemptsUsed: ${b.attemptsUsed.length} entries for the task's ${n} segment(s)`);
  b.segments.forEach((part, i) => e.segments[i]!.load(part));

  const trials: Array<ReadonlySet<string>> = [];
  if ((b.schedulers === null) !== (e.schedulers === null) || (b.schedulers && b.schedulers.length !== n))
    invalid(
      `schedulers: ${b.schedulers?.length ?? "none"} for a task with ${e.schedulers ? n : "no"} scheduler(s)`,
    );
  e.schedulers?.forEach((sched, i) => {
    const r = sched.load(b.schedulers![i]!);
    if ("problem" in r) invalid(`schedulers.${i}: ${r.problem}`);
    trials.push(r.trials);
  });

  b.steering.forEach((run, i) => {
    if (run.segmentIndex >= n) invalid(`steering.${i}.segmentIndex: ${run.segmentIndex} is no segment`);
  });
  e.steering.load(b.steering);

  b.points.forEach((part, i) => {
    const where = `points.${i} (point ${part.pointId})`;
    const p = loadPoint(b.taskId, part, where, invalid);
    if (p.segment >= n) invalid(`${where}.segment: ${p.segment} is no segment`);
    if (e.points.has(p.pointId)) invalid(`${where}: a second point with this id`);
    if (p.pointId >= b.nextPointId) invalid(`${where}: not below nextPointId ${b.nextPointId}`);
    const jobId = jobIdOf(b.taskId, p.pointId, p.job.seq);
    if (p.job.jobId !== jobId || p.job.pointId !== p.pointId)
      invalid(`${where}.job: job ${p.job.jobId} of point ${p.job.pointId} is not ${jobId}, its current job`);
    if (p.trial !== null && !trials[p.segment]?.has(p.trial))
      invalid(`${where}.trial: ${p.trial} is no trial its segment's scheduler suggested`);
    e.points.set(p.pointId, p);
    e.jobs.set(jobId, p);
    e.index.update(p);
  });
  e.attemptsUsed.splice(0, n, ...b.attemptsUsed);
  e.state = b.state;
  e.finishedAt = b.finishedAt;
  e.nextPointId = b.nextPointId;
  return e;
}
