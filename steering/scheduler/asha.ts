// ASHA, stopping and promotion (pause/resume) types, with optional brackets (asynchronous
// Hyperband). The continue/stop rule is selectable (rung.ts); the promotion variant follows Syne
// Tune's PromotionRungSystem (rule "syne-tune") or Determined's legacy promotion ASHA ("determined").
import { unreachable } from "../../protocol/errors.ts";
import type { BracketDistribution } from "../../protocol/scheduler.ts";
import { Rng } from "../core/rng.ts";
import {
  drawIndex,
  optunaBracketBudgets,
  optunaBracketOf,
  rayMilestones,
  softmaxBracketProbabilities,
  syneTuneBracketProbabilities,
  syneTuneRungLevels,
} from "../../protocol/schedulerFormulas.ts";
import {
  decideStopping,
  Rung,
  scoreOf,
  WORST_SCORE,
  type Rule,
  type Sign,
  type StoppingContext,
} from "./rung.ts";
import {
  checkResource,
  readMetric,
  TrialRegistry,
  type Decision,
  type Metrics,
  type RungView,
  type Scheduler,
  type Suggestion,
} from "./types.ts";

export interface AshaOptions {
  type: string;
  variant: "stopping" | "promotion";
  rule: Rule;
  metric: string;
  mode: "min" | "max";
  maxT: number;
  gracePeriod: number;
  reductionFactor?: number | undefined;
  rungIncrement?: number | undefined;
  rungLevels?: readonly number[] | undefined;
  /** Number of brackets; undefined means every possible one. */
  brackets?: number | undefined;
  bracketDistribution: BracketDistribution;
  studyName: string;
  seed: number;
  maxTrials?: number | undefined;
  bootstrapCount: number;
  stopLastTrials: boolean;
}

interface PendingPromotion {
  trial: number;
  from: number;
  to: number;
}

export class AshaScheduler implements Scheduler {
  readonly type: string;
  protected readonly trials = new TrialRegistry();
  protected readonly sign: Sign;
  protected readonly maxT: number;
  protected readonly metric: string;
  /** Every rung, ascending by level (brackets of the Ray rule have their own rungs). */
  protected readonly allRungs: Rung[];
  private readonly variant: "stopping" | "promotion";
  private readonly ctx: StoppingContext;
  private readonly brackets: Rung[][];
  private readonly nextLevel = new Map<Rung, number>();
  private readonly maxTrials: number | undefined;
  private readonly chooseBracket: (trial: number) => number;
  private tie = 0;
  private readonly bracketOf: number[] = [];
  private readonly milestone: number[] = [];
  private readonly resumeFrom: number[] = [];
  private readonly position: { next: number }[] = [];
  /** Determined promotion: promotions decided at report time, handed out by suggest. */
  private readonly queue: PendingPromotion[] = [];
  private queueHead = 0;

  constructor(opts: AshaOptions) {
    this.type = opts.type;
    this.variant = opts.variant;
    this.sign = opts.mode === "min" ? 1 : -1;
    this.maxT = opts.maxT;
    this.metric = opts.metric;
    this.maxTrials = opts.maxTrials;
    const eta = opts.reductionFactor ?? 3;
    this.ctx = {
      rule: opts.rule,
      sign: this.sign,
      eta,
      maxT: opts.maxT,
      bootstrapCount: opts.bootstrapCount,
      stopLastTrials: opts.stopLastTrials,
      nextTie: () => this.tie++,
    };
    const built =
      opts.rule === "ray" && opts.rungLevels === undefined && opts.rungIncrement === undefined
        ? this.buildRayBrackets(opts, eta)
        : this.buildSharedBrackets(opts);
    this.brackets = built.brackets;
    this.allRungs = built.all;
    const rng = new Rng(opts.seed);
    this.chooseBracket = bracketChooser(opts, this.brackets, built.ladder, eta, rng);
  }

  // Syne Tune's default: one rung system, bracket b skips the b lowest rungs (§3.5).
  private buildSharedBrackets(opts: AshaOptions) {
    const levels = syneTuneRungLevels(opts);
    const rungs = levels.map((l, j) => new Rung(l, l / (levels[j + 1] ?? opts.maxT)));
    rungs.forEach((r, j) => this.nextLevel.set(r, levels[j + 1] ?? opts.maxT));
    const numBrackets = Math.min(opts.brackets ?? levels.length + 1, levels.length + 1);
    // Determined compares at the top rung too (it records there, then stops)
    const top = opts.rule === "determined" && opts.variant === "stopping" ? [new Rung(opts.maxT, 1)] : [];
    const brackets: Rung[][] = [];
    for (let b = 0; b < numBrackets; b++) brackets.push([...rungs.slice(b), ...top]);
    return { brackets, all: [...rungs, ...top], ladder: [...levels, opts.maxT] };
  }

  // Ray: every bracket s is a separate `_Bracket` with milestones min_t * rf^(k+s) (§4).
  private buildRayBrackets(opts: AshaOptions, eta: number) {
    const base = rayMilestones(opts.maxT, opts.gracePeriod, eta, 0);
    const numBrackets = opts.brackets ?? base.filter((m) => m < opts.maxT).length + 1;
    const brackets: Rung[][] = [];
    for (let s = 0; s < numBrackets; s++) {
      const ms = rayMilestones(opts.maxT, opts.gracePeriod, eta, s);
      brackets.push(ms.map((m) => new Rung(m, 1)));
    }
    const all = brackets.flat().sort((a, b) => a.level - b.level);
    return { brackets, all, ladder: [...base.filter((m) => m < opts.maxT), opts.maxT] };
  }

  suggest(): Suggestion {
    if (this.variant === "promotion") {
      const p = this.findPromotion(true);
      if (p) {
        this.trials.setStatus(p.trial, "running");
        this.milestone[p.trial] = p.to;
        this.resumeFrom[p.trial] = p.from;
        return { action: "promote", trial: this.trials.nameOf(p.trial), from: p.from, to: p.to };
      }
    }
    if (this.maxTrials !== undefined && this.trials.size >= this.maxTrials) return { action: "wait" };
    const index = this.trials.create();
    this.startTrial(index);
    return { action: "new", trial: this.trials.nameOf(index), milestone: this.milestone[index] ?? this.maxT };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    const raw = readMetric(metrics, this.metric);
    const { index, adopted } = this.trials.indexOf(trial);
    if (adopted) this.startTrial(index);
    const decision =
      this.variant === "stopping"
        ? this.reportStopping(index, resource, raw)
        : this.reportPromotion(index, resource, raw);
    this.afterReport(index, resource, raw);
    return decision;
  }

  fail(trial: string): void {
    const index = this.trials.require(trial);
    const status = this.trials.status(index);
    this.trials.setStatus(index, "failed");
    if (status === "paused") this.withdraw(index);
    if (status !== "running" || this.ctx.rule !== "determined") return;
    // Determined: an early exit counts as the worst value at the rung the trial was working toward
    if (this.variant === "stopping") {
      const rungs = this.brackets[this.bracketOf[index] ?? 0] ?? [];
      const rung = rungs[this.position[index]?.next ?? 0];
      if (rung && !rung.recorded.has(index)) rung.record(index, WORST_SCORE, this.tie++, false);
    } else {
      const rung = this.rungAtLevel(this.milestone[index] ?? this.maxT);
      if (rung && !rung.recorded.has(index)) this.determinedPromotionRecord(rung, index, WORST_SCORE);
    }
  }

  complete(trial: string): void {
    const index = this.trials.require(trial);
    if (this.trials.status(index) === "paused") this.withdraw(index);
    this.trials.setStatus(index, "completed");
  }

  isDone(): boolean {
    if (this.maxTrials === undefined || this.trials.size < this.maxTrials || this.trials.running > 0)
      return false;
    return this.variant === "stopping" || this.findPromotion(false) === null;
  }

  rungs(): RungView[] {
    return this.allRungs.map((r) => {
      const entries = r.tree.entries();
      return {
        level: r.level,
        values: entries.map((e) => this.sign * e.value),
        trials: entries.map((e) => this.trials.nameOf(r.trialOfTie.get(e.tie) ?? -1)),
      };
    });
  }

  /** Syne Tune's `paused_trials()`: (trial, rank in rung, value, level) of every unpromoted entry, top rung first. */
  pausedTrials(): { trial: string; rank: number; value: number; level: number }[] {
    const out: { trial: string; rank: number; value: number; level: number }[] = [];
    for (const rung of [...this.allRungs].reverse()) {
      for (const e of rung.unpromoted.entries()) {
        const t = rung.trialOfTie.get(e.tie) ?? -1;
        out.push({
          trial: this.trials.nameOf(t),
          rank: rung.tree.rankOf(e.value, e.tie),
          value: this.sign * e.value,
          level: rung.level,
        });
      }
    }
    return out;
  }

  /** The highest level below which rungs may promote (PASHA lowers it). */
  protected effectiveMaxT(): number {
    return this.maxT;
  }

  /** Called after every report, once the rung systems have recorded it (PASHA hooks in here). */
  protected afterReport(_trial: number, _resource: number, _raw: number): void {}

  protected rungAtLevel(level: number): Rung | undefined {
    return this.allRungs.find((r) => r.level === level);
  }

  private startTrial(index: number): void {
    const bracket = this.chooseBracket(index);
    const rungs = this.brackets[bracket] ?? [];
    this.bracketOf[index] = bracket;
    this.milestone[index] = Math.min(rungs[0]?.level ?? this.maxT, this.maxT);
    this.resumeFrom[index] = NaN;
    this.position[index] = { next: 0 };
  }

  private reportStopping(index: number, resource: number, raw: number): Decision {
    const rungs = this.brackets[this.bracketOf[index] ?? 0] ?? [];
    const position = this.position[index] ?? { next: 0 };
    const decision = decideStopping(this.ctx, rungs, index, resource, raw, position);
    this.trials.setStatus(index, decision === "stop" ? "stopped" : "running");
    return decision;
  }

  // Syne Tune PromotionRungSystem.on_task_report (§3.4): a resumed trial's reports up to its resume
  // level are ignored; at its milestone the value is recorded (not promoted) and the trial pauses.
  private reportPromotion(index: number, resource: number, raw: number): Decision {
    if (resource >= this.maxT) {
      this.trials.setStatus(index, "stopped");
      return "stop";
    }
    const from = this.resumeFrom[index] ?? NaN;
    const milestone = this.milestone[index] ?? this.maxT;
    if ((!Number.isNaN(from) && resource <= from) || resource < milestone) {
      this.trials.setStatus(index, "running");
      return "continue";
    }
    const rung = this.rungAtLevel(milestone);
    if (rung && !rung.recorded.has(index)) {
      const score = scoreOf(this.sign, raw);
      if (this.ctx.rule === "determined") this.determinedPromotionRecord(rung, index, score);
      else rung.record(index, score, this.tie++, true);
    }
    this.trials.setStatus(index, "paused");
    return "pause";
  }

  // DET-OLD promotionsAsync (§1, §2.5): insert after equal values; promote the newcomer if it is
  // within int(n/η); otherwise, when int(n/η) grows, promote the entry now at the old count.
  private determinedPromotionRecord(rung: Rung, trial: number, score: number): void {
    const n = rung.tree.size;
    const oldNumPromote = Math.trunc(n / this.ctx.eta);
    const numPromote = Math.trunc((n + 1) / this.ctx.eta);
    const index = rung.tree.countLessOrEqual(score);
    const promoteNow = index < numPromote;
    rung.record(trial, score, this.tie++, !promoteNow);
    if (promoteNow) this.enqueuePromotion(rung, trial);
    else if (numPromote !== oldNumPromote) {
      const entry = rung.tree.select(oldNumPromote);
      const promoted = rung.trialOfTie.get(entry.tie);
      if (promoted !== undefined && rung.markPromoted(promoted)) this.enqueuePromotion(rung, promoted);
    }
  }

  private enqueuePromotion(rung: Rung, trial: number): void {
    const to = this.nextLevel.get(rung) ?? this.maxT;
    if (this.trials.status(trial) === "failed") {
      // a promoted early-exited trial goes straight on with the worst value (DET-OLD promoteAsync)
      const next = this.rungAtLevel(to);
      if (next && !next.recorded.has(trial)) this.determinedPromotionRecord(next, trial, WORST_SCORE);
      return;
    }
    this.queue.push({ trial, from: rung.level, to });
  }

  private withdraw(index: number): void {
    const rung = this.rungAtLevel(this.milestone[index] ?? this.maxT);
    rung?.markPromoted(index);
  }

  private findPromotion(commit: boolean): PendingPromotion | null {
    if (this.ctx.rule === "determined") {
      while (this.queueHead < this.queue.length) {
        const p = this.queue[this.queueHead] as PendingPromotion;
        if (this.trials.status(p.trial) === "paused") {
          if (commit) this.queueHead++;
          return p;
        }
        this.queueHead++;
      }
      return null;
    }
    // Syne Tune on_task_schedule: from the highest rung below the effective max_t, promote the best
    // unpromoted entry if it is at least as good as the rung's quantile
    const limit = this.effectiveMaxT();
    for (let j = this.allRungs.length - 1; j >= 0; j--) {
      const rung = this.allRungs[j] as Rung;
      if (rung.level >= limit || rung.unpromoted.size === 0) continue;
      const cutoff = rung.syneTuneCutoff(this.sign);
      if (cutoff === null) continue;
      const best = rung.unpromoted.select(0);
      const value = this.sign * best.value;
      if (!(this.sign === 1 ? value <= cutoff : value >= cutoff)) continue;
      const trial = rung.trialOfTie.get(best.tie) ?? -1;
      if (commit) rung.unpromoted.remove(best.value, best.tie);
      return { trial, from: rung.level, to: this.nextLevel.get(rung) ?? this.maxT };
    }
    return null;
  }
}

function bracketChooser(
  opts: AshaOptions,
  brackets: readonly Rung[][],
  ladder: readonly number[],
  eta: number,
  rng: Rng,
): (trial: number) => number {
  const nb = brackets.length;
  if (nb <= 1) return () => 0;
  switch (opts.bracketDistribution) {
    case "syne-tune": {
      const p = syneTuneBracketProbabilities(ladder, nb);
      return () => drawIndex(p, rng.next());
    }
    case "ray": {
      const p = softmaxBracketProbabilities(brackets.map((b) => b.length));
      return () => drawIndex(p, rng.next());
    }
    case "uniform":
      return () => rng.int(0, nb - 1);
    case "optuna": {
      const budgets = optunaBracketBudgets(nb, eta);
      return (trial) => optunaBracketOf(opts.studyName, trial, budgets);
    }
    default:
      return unreachable(opts.bracketDistribution, "bracket distribution");
  }
}
