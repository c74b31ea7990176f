// The calls a segment's scheduler was given, in order, as one flat array: what a task snapshot
// (snapshot.ts) stores instead of the scheduler's own state. Every scheduler of the family is
// deterministic given its config and its call sequence, so a fresh one that replays the journal is
// the same scheduler, whatever its type: no per-type serializer to keep in step with the types.
//
// Layout, one call after the other: the op (a small number; +THREW when the call threw), then its
// arguments. report: trial, resource, then one value per metric key the scheduler reads (null when
// the report lacked it). A report keeps only those keys: the scheduler reads no other, and a
// report refused for a missing key is refused again on replay, since that key is missing again.
import type { SchedulerConfig } from "../../../protocol/scheduler.ts";
import { unreachable } from "../../../protocol/errors.ts";
import type { Metrics, Scheduler } from "../../scheduler/index.ts";

export type JournalEntry = number | string | null;

const SUGGEST = 0;
const REPORT = 1;
const FAIL = 2;
const COMPLETE = 3;
/** Added to the op of a call that threw (the scheduler refused it; replay must see it refused too). */
const THREW = 4;

/** The metric keys the scheduler reads from a report (scheduler/*.ts: readMetric and moasha's objectives). */
export function metricKeysOf(config: SchedulerConfig): string[] {
  switch (config.type) {
    case "fifo":
    case "sha":
    case "asha-stopping":
    case "asha-promotion":
    case "hyperband":
    case "adaptive-asha":
    case "pasha":
      return [config.metric];
    case "moasha":
      return [...config.metrics];
    case "sockeye":
      return config.multi_objective ? [config.metric, config.time_metric] : [config.metric];
    default:
      return unreachable(config, "scheduler config");
  }
}

// JSON writes -0 as 0 and NaN or ±Infinity as null: such a number is kept as its string.
// (String(-0) is "0": it is named.)
const num = (v: number): number | string => (Object.is(v, -0) ? "-0" : Number.isFinite(v) ? v : String(v));
const unnum = (v: JournalEntry): number | null =>
  typeof v === "number" ? v : typeof v === "string" && /^(-0|NaN|-?Infinity)$/.test(v) ? Number(v) : null;

export class SchedulerJournal {
  readonly entries: JournalEntry[] = [];

  constructor(readonly keys: readonly string[]) {}

  suggest(threw: boolean): void {
    this.entries.push(SUGGEST + (threw ? THREW : 0));
  }

  report(trial: string, resource: number, metrics: Metrics, threw: boolean): void {
    this.entries.push(REPORT + (threw ? THREW : 0), trial, num(resource));
    for (const k of this.keys) {
      const v = metrics[k];
      this.entries.push(typeof v === "number" ? num(v) : null);
    }
  }

  end(how: "fail" | "complete", trial: string, threw: boolean): void {
    this.entries.push((how === "fail" ? FAIL : COMPLETE) + (threw ? THREW : 0), trial);
  }
}

/**
 * Replays `entries` on a fresh scheduler (no validation beyond the journal's own shape: this is
 * start-up's hot path). Returns the trials suggest() created, or why the journal does not hold
 * together: a malformed call, a call that names a trial no suggest() gave, or a call whose outcome
 * (refused or not) differs from the recorded one.
 */
export function replayJournal(
  s: Scheduler,
  keys: readonly string[],
  entries: readonly JournalEntry[],
): { trials: Set<string> } | { problem: string } {
  const trials = new Set<string>();
  let i = 0;
  const run = (fn: () => void): boolean => {
    try {
      fn();
      return false;
    } catch {
      return true;
    }
  };
  while (i < entries.length) {
    const at = i;
    const raw = entries[i++];
    if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0 || raw >= 2 * THREW)
      return { problem: `entry ${at}: ${JSON.stringify(raw)} is not a call` };
    const op = raw % THREW;
    const threw = raw >= THREW;
    let refused: boolean;
    if (op === SUGGEST) {
      refused = run(() => {
        const got = s.suggest();
        if (got.action === "new") trials.add(got.trial);
      });
    } else {
      const trial = entries[i++];
      if (typeof trial !== "string" || !trials.has(trial))
        return { problem: `entry ${at}: ${JSON.stringify(trial)} is no trial suggest() gave` };
      if (op === REPORT) {
        const resource = unnum(entries[i++] ?? null);
        if (resource === null || i + keys.length > entries.length)
          return { problem: `entry ${at}: a report needs a resource and ${keys.length} metric value(s)` };
        const metrics: Record<string, number> = {};
        for (const k of keys) {
          const v = entries[i++] ?? null;
          const n = unnum(v);
          if (v !== null && n === null)
            return { problem: `entry ${at}: metric ${k} is ${JSON.stringify(v)}, not a number` };
          if (n !== null) metrics[k] = n;
        }
        refused = run(() => s.report(trial, resource, metrics));
      } else if (op === FAIL) refused = run(() => s.fail(trial));
      else refused = run(() => s.complete(trial));
    }
    if (refused !== threw)
      return {
        problem: `entry ${at}: the call was ${threw ? "refused" : "accepted"} when it was made but is ${refused ? "refused" : "accepted"} on replay`,
      };
  }
  return { trials };
}
