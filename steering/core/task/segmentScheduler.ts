// The scheduler of one segment (tasks with a `scheduler` section): a scheduler-core object, the
// map from trial names to point ids, and the rules that turn its answers into job targets and
// stop requests. Pure: it is only driven from TaskEngine.apply() (report/fail/complete, in log
// order) and from TaskEngine.proposeTrial() (suggest), so its state is a fold of the log.
//
// suggest() mutates the scheduler and the core has no way to undo or copy it. The live call
// (ask) therefore keeps its answer as `pending` until the trial-suggested event that records it is
// applied (confirm). On replay there is no pending answer and confirm() calls suggest() itself,
// checking that it gets the recorded one. A pending answer that is never confirmed (the append
// failed) means the scheduler ran ahead of the log: the engine reports it (hasUnloggedSuggestion)
// and the Committer rebuilds the whole engine from the log (steering/shell/committer.ts).
import { fullResourceOf, promotesTrials, type SchedulerConfig } from "../../../protocol/scheduler.ts";
import {
  createScheduler,
  type Decision,
  type Metrics,
  type RungView,
  type Scheduler,
  type Suggestion,
} from "../../scheduler/index.ts";
import { metricKeysOf, replayJournal, SchedulerJournal, type JournalEntry } from "./schedulerJournal.ts";

/** What a task snapshot keeps of a segment's scheduler (snapshot.ts): the scheduler itself as its journal. */
export interface SchedulerPart {
  fault: string | null;
  stalled: boolean;
  /** The trial → point map, flat: trial, pointId, trial, pointId, … */
  trials: Array<string | number>;
  journal: JournalEntry[];
}

export type ActiveSuggestion = Exclude<Suggestion, { action: "wait" }>;

export class SegmentScheduler {
  readonly scheduler: Scheduler;
  /** Pausing (promotion) types run each job to its milestone; stopping types run to the full length. */
  readonly pausing: boolean;
  readonly fullResource: number;
  /** Set when the scheduler refused a call or replay disagreed: no more suggestions for this segment. */
  fault: string | null = null;
  /** suggest() said wait while nothing of this segment ran or was queued: nothing will ever change. */
  stalled = false;
  private pending: ActiveSuggestion | null = null;
  private readonly points = new Map<string, number>();
  /** Every call made on `scheduler`, so a snapshot can rebuild it by replay (schedulerJournal.ts). */
  private readonly journal: SchedulerJournal;

  constructor(config: SchedulerConfig, maxPoints: number, seed: number) {
    // maxPoints bounds the trials (PanDA); it is also the budget of a scheduler that has none
    const maxTrials = Math.min(config.max_trials ?? maxPoints, maxPoints);
    // the task seed (logged at submission) and the segment index, mixed with the config's own seed
    const mixed = (config.seed + seed) >>> 0;
    this.scheduler = createScheduler({ ...config, max_trials: maxTrials, seed: mixed });
    this.pausing = promotesTrials(config);
    this.fullResource = fullResourceOf(config);
    this.journal = new SchedulerJournal(metricKeysOf(config));
  }

  /** Live suggest(): mutates the scheduler; an active answer stays pending until confirmed. */
  ask(): Suggestion {
    if (this.pending) return this.pending;
    const s = this.suggest();
    if (s === null) return { action: "wait" };
    if (s.action !== "wait") this.pending = s;
    return s;
  }

  get hasUnloggedSuggestion(): boolean {
    return this.pending !== null;
  }

  /** Applies a recorded suggestion: the live answer if it is the same, else suggest() again (replay). */
  confirm(recorded: ActiveSuggestion, pointId: number): boolean {
    const live = this.pending ?? this.suggest();
    this.pending = null;
    if (live === null || JSON.stringify(live) !== JSON.stringify(recorded)) {
      this.fault ??= `replay diverged: the scheduler suggested ${JSON.stringify(live)}, the log says ${JSON.stringify(recorded)}`;
      return false;
    }
    this.points.set(recorded.trial, pointId);
    return true;
  }

  pointOf(trial: string): number | undefined {
    return this.points.get(trial);
  }

  /** The resource level the job of this suggestion trains to. */
  targetOf(s: ActiveSuggestion): number {
    if (s.action === "promote") return s.to;
    return this.pausing ? s.milestone : this.fullResource;
  }

  /** report(); null when the report lacks the scheduler's metric(s) (it is not fed) or on a fault. */
  report(trial: string, resource: number, metrics: Metrics): Decision | null {
    try {
      const d = this.scheduler.report(trial, resource, metrics);
      this.journal.report(trial, resource, metrics, false);
      return d;
    } catch (e) {
      this.journal.report(trial, resource, metrics, true);
      // A missing metric is refused before the scheduler changes anything: skip the report.
      if (e instanceof Error && /^metrics[.:]/.test(e.message)) return null;
      this.fault ??= `report(${trial}, ${resource}) failed: ${String(e)}`;
      return null;
    }
  }

  fail(trial: string): void {
    this.end("fail", trial);
  }

  complete(trial: string): void {
    this.end("complete", trial);
  }

  isDone(): boolean {
    return this.scheduler.isDone();
  }

  rungs(): RungView[] {
    return this.scheduler.rungs();
  }

  /** The snapshot's part (the caller checks hasUnloggedSuggestion first: a pending answer is not kept). */
  save(): SchedulerPart {
    return {
      fault: this.fault,
      stalled: this.stalled,
      trials: [...this.points].flat(),
      journal: [...this.journal.entries],
    };
  }

  /**
   * Rebuilds this fresh segment scheduler from a snapshot's part: replays the journal on the
   * scheduler built from the config. Returns the trials its suggest() created, or why the part
   * does not hold together.
   */
  load(part: SchedulerPart): { trials: ReadonlySet<string> } | { problem: string } {
    const fail = (problem: string) => ({ problem });
    if (this.journal.entries.length > 0) return fail("the scheduler was already used");
    const replay = replayJournal(this.scheduler, this.journal.keys, part.journal);
    if ("problem" in replay) return fail(`journal ${replay.problem}`);
    if (part.trials.length % 2 !== 0) return fail("trials: an odd number of entries (trial, pointId pairs)");
    for (let i = 0; i < part.trials.length; i += 2) {
      const trial = part.trials[i];
      const pointId = part.trials[i + 1];
      if (typeof trial !== "string" || !replay.trials.has(trial) || !Number.isInteger(pointId))
        return fail(
          `trials: entry ${i} (${JSON.stringify(trial)}: ${JSON.stringify(pointId)}) is no suggested trial and point id`,
        );
      this.points.set(trial, pointId as number);
    }
    // a loop, not push(...journal): a long journal would overflow the stack as arguments
    for (const entry of part.journal) this.journal.entries.push(entry);
    this.fault = part.fault;
    this.stalled = part.stalled;
    return { trials: replay.trials };
  }

  private suggest(): Suggestion | null {
    try {
      const s = this.scheduler.suggest();
      // A "wait" changes no scheduler's state (a rebuild from the log relies on it too: the log
      // records no waits), and a task in its end phase is asked on every pump: not journaled.
      if (s.action !== "wait") this.journal.suggest(false);
      return s;
    } catch (e) {
      this.journal.suggest(true);
      this.fault ??= `suggest failed: ${String(e)}`;
      return null;
    }
  }

  private end(how: "fail" | "complete", trial: string): void {
    try {
      this.scheduler[how](trial);
      this.journal.end(how, trial, false);
    } catch (e) {
      this.journal.end(how, trial, true);
      this.fault ??= `${how}(${trial}) failed: ${String(e)}`;
    }
  }
}
