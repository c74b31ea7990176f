// Determined's adaptive_asha (spec §2): a tournament of stopping-ASHA brackets built by
// makeBrackets, each with its own rungs (makeRungs), trial budget and concurrency. Decisions use the
// Determined rule (insert before equal values, keep the first max(int(n/η), 1), loop over every rung
// a report has reached). An early exit counts as MaxFloat64 at the trial's current rung.
import {
  determinedBrackets,
  type DeterminedBracket,
  type DeterminedMode,
} from "../../protocol/schedulerFormulas.ts";
import { decideStopping, Rung, WORST_SCORE, type StoppingContext } from "./rung.ts";
import { checkResource, readMetric, TrialRegistry } from "./types.ts";
import type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";

export interface AdaptiveOptions {
  metric: string;
  smallerIsBetter: boolean;
  maxTrials: number;
  maxTime: number;
  mode: DeterminedMode;
  divisor: number;
  maxRungs: number;
  maxConcurrentTrials: number;
  bracketRungs: readonly number[];
}

interface BracketState {
  plan: DeterminedBracket;
  rungs: Rung[];
  created: number;
  running: number;
}

export class AdaptiveAshaScheduler implements Scheduler {
  readonly type = "adaptive-asha";
  private readonly trials = new TrialRegistry();
  private readonly brackets: BracketState[];
  private readonly ctx: StoppingContext;
  private readonly bracketOf: number[] = [];
  private readonly position: { next: number }[] = [];
  private tie = 0;

  constructor(private readonly opts: AdaptiveOptions) {
    this.brackets = determinedBrackets(opts).map((plan) => ({
      plan,
      rungs: plan.units.map((u) => new Rung(u, 1)),
      created: 0,
      running: 0,
    }));
    this.ctx = {
      rule: "determined",
      sign: opts.smallerIsBetter ? 1 : -1,
      eta: opts.divisor,
      maxT: opts.maxTime,
      bootstrapCount: 0,
      stopLastTrials: true,
      nextTie: () => this.tie++,
    };
  }

  /** The brackets with their rung lengths, budgets and concurrency (as `det preview-search` shows). */
  plan(): DeterminedBracket[] {
    return this.brackets.map((b) => b.plan);
  }

  // The tournament fills bracket 0's concurrency first, then bracket 1's, …; a stopped trial frees
  // a slot in its own bracket, which is then refilled while that bracket has budget.
  suggest(): Suggestion {
    const b = this.brackets.findIndex(
      (s) => s.created < s.plan.maxTrials && s.running < s.plan.maxConcurrentTrials,
    );
    if (b < 0) return { action: "wait" };
    const index = this.trials.create();
    this.assign(index, b);
    return {
      action: "new",
      trial: this.trials.nameOf(index),
      milestone: this.brackets[b]?.plan.units[0] ?? this.opts.maxTime,
    };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    const raw = readMetric(metrics, this.opts.metric);
    const { index, adopted } = this.trials.indexOf(trial);
    if (adopted) {
      const open = this.brackets.findIndex((s) => s.created < s.plan.maxTrials);
      this.assign(index, open < 0 ? 0 : open);
    }
    const bracket = this.brackets[this.bracketOf[index] ?? 0] as BracketState;
    const position = this.position[index] ?? { next: 0 };
    const decision = decideStopping(this.ctx, bracket.rungs, index, resource, raw, position);
    if (decision === "stop") this.finish(index, "stopped");
    return decision;
  }

  fail(trial: string): void {
    const index = this.trials.require(trial);
    if (this.trials.status(index) !== "running") return;
    const bracket = this.brackets[this.bracketOf[index] ?? 0] as BracketState;
    const rung = bracket.rungs[this.position[index]?.next ?? 0];
    if (rung && !rung.recorded.has(index)) rung.record(index, WORST_SCORE, this.tie++, false);
    this.finish(index, "failed");
  }

  complete(trial: string): void {
    const index = this.trials.require(trial);
    if (this.trials.status(index) === "running") this.finish(index, "completed");
  }

  isDone(): boolean {
    return this.trials.running === 0 && this.brackets.every((b) => b.created >= b.plan.maxTrials);
  }

  rungs(): RungView[] {
    return this.brackets.flatMap((b) =>
      b.rungs.map((r) => ({ level: r.level, values: r.tree.entries().map((e) => this.ctx.sign * e.value) })),
    );
  }

  /** The bracket of a trial (Determined's TrialTable). */
  bracketIndexOf(trial: string): number | undefined {
    const index = this.trials.find(trial);
    return index === undefined ? undefined : this.bracketOf[index];
  }

  private assign(index: number, b: number): void {
    const bracket = this.brackets[b] as BracketState;
    bracket.created++;
    bracket.running++;
    this.bracketOf[index] = b;
    this.position[index] = { next: 0 };
  }

  private finish(index: number, status: "stopped" | "failed" | "completed"): void {
    if (this.trials.status(index) === "running") {
      const bracket = this.brackets[this.bracketOf[index] ?? 0] as BracketState;
      bracket.running--;
    }
    this.trials.setStatus(index, status);
  }
}
