// What a steering-program iteration's end becomes (the user's program, run by program/dispatch.ts
// outside the commit queue): a steering-iteration event with its outcome and, when it gave
// points that still apply, the points-added events; a failure is retried after a back-off unless
// no retry can mend it (a refused configuration or archive) or it was the last attempt.
import type { Point } from "../../../protocol/points.ts";
import type { Decision } from "../decision.ts";
import type { LogEvent } from "../events.ts";
import { steeringRetryAt } from "../task/steeringIterations.ts";
import type { World } from "../world.ts";

/** Failures no retry can mend: the same configuration or archive fails again however often it runs. */
const PERMANENT = new Set(["INVALID_CONFIG", "ARCHIVE_REJECTED"]);

export interface ProgramResultCommand {
  readonly type: "program-result";
  readonly taskId: string;
  readonly segment: number;
  /** The segment's generated count when the iteration started (a later one makes this one stale). */
  readonly generated: number;
  /** Failed runs in a row before this one. */
  readonly failures: number;
  readonly startedAt: number;
  /** When it ended (the event's time, and where a retry's back-off starts). */
  readonly endedAt: number;
  /** The points it returned (at most the number asked for). */
  readonly points: readonly Point[];
  readonly exitCode: number | null;
  /** Why it failed (code and message), or null when it answered. */
  readonly error: { readonly code: string; readonly message: string } | null;
  /** The failure's reason as recorded (capped; with a note when its output could not be stored). */
  readonly reason: string | null;
  /** The iteration's identity (its output's key): the retry's jitter comes from it. */
  readonly key: string;
  /** Where its output is stored, or null when it could not be. */
  readonly logKey: string | null;
}

export interface ProgramResultReply {
  /** The task ended meanwhile: nothing was logged. */
  readonly dropped: boolean;
  readonly added: number;
  readonly exhausted: boolean;
  /** When a failure runs again (null: generation ended for the segment, or no failure). */
  readonly retryAt: number | null;
}

export function decideProgramResult(w: World, c: ProgramResultCommand): Decision<ProgramResultReply> {
  const now = c.endedAt;
  const retryable = c.error !== null && !PERMANENT.has(c.error.code);
  const retryAt = c.error === null ? null : steeringRetryAt(w.rules.retry, c.failures, retryable, now, c.key);
  const exhausted = c.error !== null ? retryAt === null : c.points.length === 0;
  const e = w.tasks.engines.get(c.taskId);
  if (!e || e.state === "killed" || e.state === "finished")
    return { events: [], effects: [], reply: { dropped: true, added: 0, exhausted, retryAt } };
  // a failure to be retried adds no points and ends nothing: only its record is logged
  const points =
    c.error !== null && !exhausted
      ? []
      : e.steeringResult(c.segment, c.generated, [...c.points], exhausted, now);
  // an answer that came after the segment moved on (it was run twice; the first one won)
  const stale = c.error === null && points.length === 0;
  const added = points.reduce((n, ev) => n + ev.points.length, 0);
  const record: LogEvent = {
    type: "steering-iteration",
    taskId: c.taskId,
    at: now,
    segment: c.segment,
    startedAt: c.startedAt,
    outcome: c.error !== null ? "failed" : c.points.length === 0 ? "empty" : "points",
    added,
    exitCode: c.exitCode,
    reason: stale ? "its result came after the segment had moved on (not used)" : c.reason,
    retryAt: stale ? null : retryAt,
    logKey: c.logKey,
  };
  return {
    events: [record, ...points],
    effects: [],
    reply: { dropped: false, added, exhausted: points.at(-1)?.exhausted ?? false, retryAt },
  };
}
