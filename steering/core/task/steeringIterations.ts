// The steering program's iterations as the task's log records them (steering-iteration events):
// the list phpo show and phpo logs --steering read, and the retry policy of a failing program. A
// failed iteration is run again after a back-off (the evaluations' retry settings), up to
// STEERING_MAX_ATTEMPTS runs in a row; the last failure, or one no retry can mend, ends
// generation for the segment and is the task's named failure. Pure: a fold of the log, with
// times from the events.
import { backoffDelay, stableUnit, type Backoff } from "../../../protocol/backoff.ts";
import type { SteeringIterationView, SteeringSummary } from "../../../protocol/api.ts";
import type { LogEventOf } from "../events.ts";

/** Runs of one iteration before generation ends (PanDA's maxAttempts default for evaluations). */
export const STEERING_MAX_ATTEMPTS = 3;

export interface SteeringIterationRec extends Omit<SteeringIterationView, "hasLog" | "endedAt"> {
  endedAt: number;
  segmentIndex: number;
  logKey: string | null;
}

/** One run as a task snapshot keeps it: the record less its number and its segment's name. */
export type SteeringRunPart = Omit<SteeringIterationRec, "iteration" | "segment">;

/**
 * When a failed iteration may run again: null when it may not (the STEERING_MAX_ATTEMPTS-th failure
 * in a row, or a failure that is not retryable), else its end plus the back-off. The jitter comes
 * from `key` (the iteration's identity), so a restarted steering waits exactly as long.
 */
export function steeringRetryAt(
  b: Backoff,
  failuresBefore: number,
  retryable: boolean,
  endedAt: number,
  key: string,
): number | null {
  const n = failuresBefore + 1;
  if (!retryable || n >= STEERING_MAX_ATTEMPTS) return null;
  return endedAt + backoffDelay(b, n, stableUnit(key));
}

export class SteeringIterations {
  readonly list: SteeringIterationRec[] = [];
  /** Failed runs in a row, per segment (a run that gave an answer resets it). */
  private readonly failuresInRow = new Map<number, number>();
  private readonly retryAt = new Map<number, number>();

  constructor(private readonly segmentName: (index: number) => string | null) {}

  apply(ev: LogEventOf<"steering-iteration">): void {
    this.add({
      segmentIndex: ev.segment,
      startedAt: ev.startedAt,
      endedAt: ev.at,
      outcome: ev.outcome,
      added: ev.added,
      exitCode: ev.exitCode,
      reason: ev.reason,
      retryAt: ev.retryAt,
      logKey: ev.logKey,
    });
  }

  /** A task snapshot's runs (snapshot.ts): without what add() derives (the number, the segment's name). */
  save(): SteeringRunPart[] {
    return this.list.map(({ iteration: _i, segment: _s, ...run }) => run);
  }

  /** Folds a snapshot's runs into this fresh list, as their events were folded. */
  load(runs: readonly SteeringRunPart[]): void {
    for (const run of runs) this.add(run);
  }

  private add(run: SteeringRunPart): void {
    const segment = run.segmentIndex;
    this.list.push({ iteration: this.list.length + 1, segment: this.segmentName(segment), ...run });
    if (run.outcome === "failed") {
      this.failuresInRow.set(segment, (this.failuresInRow.get(segment) ?? 0) + 1);
      if (run.retryAt !== null) this.retryAt.set(segment, run.retryAt);
      else this.retryAt.delete(segment);
    } else {
      this.failuresInRow.delete(segment);
      this.retryAt.delete(segment);
    }
  }

  /** Failed runs in a row of the segment's current iteration. */
  failures(segment: number): number {
    return this.failuresInRow.get(segment) ?? 0;
  }

  /** The earliest time the segment's next run may start (0: at once). */
  notBefore(segment: number): number {
    return this.retryAt.get(segment) ?? 0;
  }

  summary(): SteeringSummary {
    const last = this.list.at(-1);
    const ended = this.list.filter((i) => i.outcome === "failed" && i.retryAt === null);
    return {
      iterations: this.list.length,
      failed: this.list.filter((i) => i.outcome === "failed").length,
      last: last ? view(last) : null,
      failure:
        ended.length === 0
          ? null
          : ended
              .map(
                (i) =>
                  `iteration ${i.iteration}${i.segment === null ? "" : ` (segment ${i.segment})`} failed: ${brief(i.reason)}`,
              )
              .join("; "),
    };
  }
}

export function view(i: SteeringIterationRec): SteeringIterationView {
  return {
    iteration: i.iteration,
    segment: i.segment,
    startedAt: i.startedAt,
    endedAt: i.endedAt,
    outcome: i.outcome,
    added: i.added,
    exitCode: i.exitCode,
    reason: i.reason,
    retryAt: i.retryAt,
    hasLog: i.logKey !== null,
  };
}

/** A reason as short as a list line allows (phpo show and logs --steering give all of it). */
function brief(reason: string | null): string {
  if (reason === null) return "no reason given";
  return reason.length > 300 ? `${reason.slice(0, 300)}…` : reason;
}
