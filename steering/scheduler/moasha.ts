// Multi-objective ASHA (spec §3.7, Syne Tune MOASHA): Ray-style brackets and stopping, with the
// rank rule of Syne Tune's current ASHA: stop iff (#entries with a strictly better priority)/n > 1/η,
// n counting the newcomer.
//
// Deliberate difference: the reference's NonDominatedPriority hands the bracket a list of item
// *indices* as if they were priorities, so a Pareto-optimal newcomer can be stopped. Here the
// priority of a point is its front index (0 = Pareto front), computed over the rung with the
// newcomer included; points on one front tie, so a non-dominated newcomer always continues.
// Scalar priorities (linear, fixed) cost O(log n) per decision through the order-statistics tree;
// the non-dominated one costs O(n log F) for two objectives and O(n²) for more.
import type { MoashaPriority } from "../../protocol/scheduler.ts";
import { ValidationError } from "../../protocol/errors.ts";
import { Rng } from "../core/rng.ts";
import { drawIndex, rayMilestones, softmaxBracketProbabilities } from "../../protocol/schedulerFormulas.ts";
import { OrderStatTree } from "./ostree.ts";
import { compareLex, frontsOfSorted, linearPriority } from "./pareto.ts";
import { checkResource, TrialRegistry } from "./types.ts";
import type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";

export interface MoashaOptions {
  metrics: readonly string[];
  modes: readonly ("min" | "max")[];
  priority: MoashaPriority;
  maxT: number;
  gracePeriod: number;
  reductionFactor: number;
  brackets: number;
  seed: number;
  maxTrials?: number | undefined;
}

class MoRung {
  readonly recorded = new Set<number>();
  readonly scalar = new OrderStatTree();
  /** Objective vectors in lexicographic order (non-dominated priority only). */
  readonly sorted: number[][] = [];
  constructor(readonly level: number) {}
}

export class MoashaScheduler implements Scheduler {
  readonly type = "moasha";
  private readonly trials = new TrialRegistry();
  private readonly brackets: MoRung[][];
  private readonly bracketOf: number[] = [];
  private readonly probabilities: number[];
  private readonly rng: Rng;
  private readonly signs: number[];
  private tie = 0;

  constructor(private readonly opts: MoashaOptions) {
    this.brackets = [];
    for (let s = 0; s < opts.brackets; s++) {
      this.brackets.push(
        rayMilestones(opts.maxT, opts.gracePeriod, opts.reductionFactor, s).map((m) => new MoRung(m)),
      );
    }
    this.probabilities = softmaxBracketProbabilities(this.brackets.map((b) => b.length));
    this.rng = new Rng(opts.seed);
    this.signs = opts.modes.map((m) => (m === "min" ? 1 : -1));
  }

  suggest(): Suggestion {
    if (this.opts.maxTrials !== undefined && this.trials.size >= this.opts.maxTrials)
      return { action: "wait" };
    const index = this.trials.create();
    const b = this.assign(index);
    const first = this.brackets[b]?.[0]?.level ?? this.opts.maxT;
    return { action: "new", trial: this.trials.nameOf(index), milestone: Math.min(first, this.opts.maxT) };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    const objectives = this.objectives(metrics);
    const { index, adopted } = this.trials.indexOf(trial);
    if (adopted) this.assign(index);
    const decision = this.decide(index, resource, objectives);
    this.trials.setStatus(index, decision === "stop" ? "stopped" : "running");
    return decision;
  }

  fail(trial: string): void {
    const index = this.trials.require(trial);
    this.trials.setStatus(index, "failed");
  }

  complete(trial: string): void {
    const index = this.trials.require(trial);
    this.trials.setStatus(index, "completed");
  }

  isDone(): boolean {
    return this.trials.isSpent(this.opts.maxTrials);
  }

  /** Per rung, the priorities of its entries, best first (the front index for the non-dominated priority). */
  rungs(): RungView[] {
    return this.brackets.flat().map((r) => ({
      level: r.level,
      values:
        this.opts.priority.type === "nondominated"
          ? frontsOfSorted(r.sorted).sort((a, b) => a - b)
          : r.scalar.entries().map((e) => e.value),
    }));
  }

  private assign(index: number): number {
    const b = this.brackets.length > 1 ? drawIndex(this.probabilities, this.rng.next()) : 0;
    this.bracketOf[index] = b;
    return b;
  }

  private objectives(metrics: number | Metrics): number[] {
    if (typeof metrics === "number") {
      if (this.opts.metrics.length !== 1) {
        throw new ValidationError(
          "INVALID_ARGUMENT",
          `metrics: this scheduler needs ${this.opts.metrics.join(", ")}; got one number`,
        );
      }
      return [(this.signs[0] ?? 1) * metrics];
    }
    return this.opts.metrics.map((name, i) => {
      const v = metrics[name];
      if (typeof v !== "number" || Number.isNaN(v)) {
        throw new ValidationError(
          "INVALID_ARGUMENT",
          `metrics.${name}: the report needs a number for every objective (${this.opts.metrics.join(", ")})`,
        );
      }
      return (this.signs[i] ?? 1) * v;
    });
  }

  // MOASHA on_trial_result: at the first rung from the top that the trial has reached but not
  // recorded, rank it against the rung (newcomer included) and record it whatever the answer.
  private decide(index: number, t: number, objectives: number[]): Decision {
    if (t >= this.opts.maxT) return "stop";
    const rungs = this.brackets[this.bracketOf[index] ?? 0] ?? [];
    for (let j = rungs.length - 1; j >= 0; j--) {
      const rung = rungs[j] as MoRung;
      if (t < rung.level || rung.recorded.has(index)) continue;
      const empty = rung.recorded.size === 0;
      rung.recorded.add(index);
      const better = this.record(rung, objectives);
      if (empty) return "continue";
      return better / rung.recorded.size > 1 / this.opts.reductionFactor ? "stop" : "continue";
    }
    return "continue";
  }

  /** Records the point and returns how many entries of the rung have a strictly better priority. */
  private record(rung: MoRung, p: number[]): number {
    const priority = this.opts.priority;
    if (priority.type !== "nondominated") {
      const value = priority.type === "linear" ? linearPriority(p, priority.weights) : (p[priority.dim] ?? 0);
      rung.scalar.insert(value, this.tie++);
      return rung.scalar.countLess(value);
    }
    let lo = 0;
    let hi = rung.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareLex(rung.sorted[mid] as number[], p) <= 0) lo = mid + 1;
      else hi = mid;
    }
    rung.sorted.splice(lo, 0, p);
    const fronts = frontsOfSorted(rung.sorted);
    const mine = fronts[lo] ?? 0;
    let better = 0;
    for (const f of fronts) if (f < mine) better++;
    return better;
  }
}
