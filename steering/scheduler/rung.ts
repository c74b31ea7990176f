// A rung and the four continue/stop rules of the spec (§1). Values are stored as scores,
// `score = sign * raw` (sign +1 when smaller is better, -1 when larger is better), so "smaller
// score is better" everywhere; the raw value is recovered exactly because negation is exact.
// Each rule touches only the rungs it needs and uses the order-statistics tree, so a decision is
// O(log n) in the number of trials at a rung.
import { unreachable } from "../../protocol/errors.ts";
import { numpyQuantile } from "../../protocol/schedulerFormulas.ts";
import { OrderStatTree } from "./ostree.ts";

export type Rule = "syne-tune" | "determined" | "ray" | "optuna";
export type Sign = 1 | -1;

/** The score of a value that failed or is NaN under rules that rank it last (Determined's MaxFloat64). */
export const WORST_SCORE = Number.MAX_VALUE;

export class Rung {
  /** Scores of the recorded entries (NaN entries, which only the Ray rule records, are left out). */
  readonly tree = new OrderStatTree();
  /** Recorded entries that were not promoted yet (promotion schedulers only). */
  readonly unpromoted = new OrderStatTree();
  /** trial index → recorded score (NaN allowed). */
  readonly recorded = new Map<number, number>();
  /** arrival number (the tree's tie) → trial index. */
  readonly trialOfTie = new Map<number, number>();
  /** trial index → arrival number. */
  readonly tieOfTrial = new Map<number, number>();

  /**
   * @param level the resource at which trials are compared
   * @param quantile Syne Tune's promotion quantile `level / next level` (the fraction that goes on)
   */
  constructor(
    readonly level: number,
    readonly quantile: number,
  ) {}

  record(trial: number, score: number, tie: number, promotable: boolean): void {
    this.recorded.set(trial, score);
    if (Number.isNaN(score)) return;
    this.tree.insert(score, tie);
    this.trialOfTie.set(tie, trial);
    this.tieOfTrial.set(trial, tie);
    if (promotable) this.unpromoted.insert(score, tie);
  }

  /** Removes a trial from the promotable set; returns false when it was not there. */
  markPromoted(trial: number): boolean {
    const score = this.recorded.get(trial);
    const tie = this.tieOfTrial.get(trial);
    if (score === undefined || tie === undefined) return false;
    return this.unpromoted.remove(score, tie);
  }

  /** Syne Tune's `Rung.quantile()` in raw units, or null with fewer than two entries. */
  syneTuneCutoff(sign: Sign): number | null {
    if (this.tree.size < 2) return null;
    return rawQuantile(this.tree, sign, sign === 1 ? this.quantile : 1 - this.quantile);
  }
}

/** Per-trial position of the Determined and Optuna rules: the next rung index to check. */
export interface StoppingContext {
  rule: Rule;
  sign: Sign;
  eta: number;
  maxT: number;
  bootstrapCount: number;
  stopLastTrials: boolean;
  nextTie(): number;
}

/**
 * One stopping decision. `rungs` are the trial's bracket rungs, ascending; for the Determined rule
 * the last one is the top rung at max_t. `position` is the trial's next rung index (Determined's
 * TrialRungs, Optuna's count of completed rungs) and is updated in place.
 */
export function decideStopping(
  ctx: StoppingContext,
  rungs: readonly Rung[],
  trial: number,
  resource: number,
  raw: number,
  position: { next: number },
): "continue" | "stop" {
  switch (ctx.rule) {
    case "syne-tune":
      return syneTuneStop(ctx, rungs, trial, resource, raw);
    case "determined":
      return determinedStop(ctx, rungs, trial, resource, raw, position);
    case "ray":
      return rayStop(ctx, rungs, trial, resource, raw);
    case "optuna":
      return optunaStop(ctx, rungs, trial, resource, raw, position);
    default:
      return unreachable(ctx.rule, "scheduler rule");
  }
}

/** Syne Tune and Determined rank a NaN value last. */
export function scoreOf(sign: Sign, raw: number): number {
  return Number.isNaN(raw) ? WORST_SCORE : sign * raw;
}

// ST stopping (§3.3): the first rung from the top with resource ≥ level that lacks the trial; a
// report past that level skips it unrecorded; at the level, record and compare with the quantile.
function syneTuneStop(ctx: StoppingContext, rungs: readonly Rung[], trial: number, r: number, raw: number) {
  if (r >= ctx.maxT) return "stop";
  for (let j = rungs.length - 1; j >= 0; j--) {
    const rung = rungs[j] as Rung;
    if (r < rung.level || rung.recorded.has(trial)) continue;
    if (r > rung.level) return "continue";
    const score = scoreOf(ctx.sign, raw);
    rung.record(trial, score, ctx.nextTie(), false);
    const cutoff = rung.syneTuneCutoff(ctx.sign);
    if (cutoff === null) return "continue";
    const value = ctx.sign * score;
    return (ctx.sign === 1 ? value <= cutoff : value >= cutoff) ? "continue" : "stop";
  }
  return "continue";
}

// DET doEarlyStopping (§2.4): every rung the report has reached gets the same value, inserted before
// equal values; stop when its index is not among the first max(int(n/η), 1), or at the top rung.
function determinedStop(
  ctx: StoppingContext,
  rungs: readonly Rung[],
  trial: number,
  r: number,
  raw: number,
  position: { next: number },
) {
  const score = scoreOf(ctx.sign, raw);
  for (let j = position.next; j < rungs.length; j++) {
    position.next = j;
    const rung = rungs[j] as Rung;
    if (r < rung.level) return "continue";
    const index = rung.tree.countLess(score);
    rung.record(trial, score, ctx.nextTie(), false);
    if (j === rungs.length - 1) return "stop";
    if (index >= Math.max(Math.trunc(rung.tree.size / ctx.eta), 1)) return "stop";
  }
  position.next = rungs.length;
  return "stop";
}

// RAY on_result (§4): the highest milestone ≤ t not yet recorded; cutoff is the nanpercentile of the
// values recorded *before* this one, on max-oriented values; the value is recorded even on a stop.
function rayStop(ctx: StoppingContext, rungs: readonly Rung[], trial: number, t: number, raw: number) {
  if (t >= ctx.maxT && ctx.stopLastTrials) return "stop";
  for (let j = rungs.length - 1; j >= 0; j--) {
    const rung = rungs[j] as Rung;
    const has = rung.recorded.has(trial);
    if (!ctx.stopLastTrials && t >= rung.level && has) return "continue";
    if (t < rung.level || has) continue;
    const score = Number.isNaN(raw) ? NaN : ctx.sign * raw;
    let decision: "continue" | "stop" = "continue";
    const n = rung.tree.size;
    if (n > 0) {
      // max-oriented values are -score; ascending order mirrors the tree
      const q = ((1 - 1 / ctx.eta) * 100) / 100;
      const cutoff = numpyQuantile(n, (i) => -rung.tree.valueAt(n - 1 - i), q);
      if (-score < cutoff) decision = "stop";
    }
    rung.record(trial, score, ctx.nextTie(), false);
    return decision;
  }
  return "continue";
}

// OPT prune (§5): walk the trial's rungs in order while the step has reached them; record the value
// at each, then it must be within the best max(int(n/η), 1) of all recorded values (own included).
function optunaStop(
  ctx: StoppingContext,
  rungs: readonly Rung[],
  trial: number,
  step: number,
  raw: number,
  position: { next: number },
) {
  for (let j = position.next; j < rungs.length; j++) {
    const rung = rungs[j] as Rung;
    if (step < rung.level) return "continue";
    if (Number.isNaN(raw)) return "stop";
    const score = ctx.sign * raw;
    rung.record(trial, score, ctx.nextTie(), false);
    const n = rung.tree.size;
    if (n <= ctx.bootstrapCount) return "stop";
    const k = Math.max(Math.floor(n / ctx.eta) - 1, 0);
    if (!(score <= rung.tree.valueAt(k))) return "stop";
    position.next = j + 1;
  }
  return step >= ctx.maxT ? "stop" : "continue";
}

/**
 * Quantile of the raw values of a rung tree that stores `sign * raw` (sign +1 for min, -1 for
 * max): the ascending raw order is read from the tree directly or mirrored, so no copy is made.
 */
export function rawQuantile(tree: OrderStatTree, sign: 1 | -1, q: number): number {
  const n = tree.size;
  const get = sign === 1 ? (i: number) => tree.valueAt(i) : (i: number) => -tree.valueAt(n - 1 - i);
  return numpyQuantile(n, get, q);
}
