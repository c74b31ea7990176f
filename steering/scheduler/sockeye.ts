// sockeye-recipes3 `automl/run_asha.py` (spec §6) on the shared rung engine: a fixed pool of n
// configs, a linear resource schedule (rung t has trained min(r + u·t, R) checkpoints) and the
// batch promotion rule `tops`: once more than n_rung − k configs of a rung have finished, the best
// min(finished − (n_rung − k), k) of them may go on. A free worker takes a random candidate (an
// unstarted config or a promotable one), drawn with the seeded Rng instead of Python's random.
// Single objective: O(log n) per decision with the order-statistics trees. Multi-objective (Pareto
// rank of metric and time) recomputes the fronts of a rung on demand, as the reference does.
import { Rng } from "../core/rng.ts";
import { sockeyeMaxRung, sockeyeRungTotal } from "../../protocol/schedulerFormulas.ts";
import { Rung, scoreOf, type Sign } from "./rung.ts";
import { nondominatedFronts } from "./pareto.ts";
import { checkResource, readMetric, TrialRegistry } from "./types.ts";
import type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";

export interface SockeyeOptions {
  r: number;
  u: number;
  R: number;
  p: number;
  n: number;
  metric: string;
  mode: "min" | "max";
  multiObjective: boolean;
  timeMetric: string;
  seed: number;
}

interface RungState {
  rung: Rung;
  finished: number;
  blacklisted: number;
  /** Multi-objective: trial → [metric score, time] (both min-oriented). */
  points: Map<number, [number, number]>;
}

export class SockeyeScheduler implements Scheduler {
  readonly type = "sockeye";
  readonly maxRung: number;
  private readonly trials = new TrialRegistry();
  private readonly states: RungState[] = [];
  private readonly sign: Sign;
  private readonly rng: Rng;
  private readonly rungOf: number[] = [];
  private readonly promoted = new Set<string>();
  private tie = 0;

  constructor(private readonly opts: SockeyeOptions) {
    this.sign = opts.mode === "min" ? 1 : -1;
    this.rng = new Rng(opts.seed);
    this.maxRung = sockeyeMaxRung(opts.n, opts.p, opts.r, opts.u, opts.R);
    for (let t = 0; t <= this.maxRung; t++) {
      this.states.push({ rung: new Rung(this.total(t), 1), finished: 0, blacklisted: 0, points: new Map() });
    }
  }

  /** Checkpoints a config has trained once it finishes rung t. */
  total(t: number): number {
    return sockeyeRungTotal(t, this.opts.r, this.opts.u, this.opts.R);
  }

  suggest(): Suggestion {
    const fresh = this.opts.n - this.trials.size;
    const perRung = this.states.map((_, t) => this.candidates(t));
    const total = fresh + perRung.reduce((a, c) => a + c.count, 0);
    if (total === 0) return { action: "wait" };
    let pick = this.rng.int(0, total - 1);
    if (pick < fresh) {
      const index = this.trials.create();
      this.rungOf[index] = 0;
      return { action: "new", trial: this.trials.nameOf(index), milestone: this.total(0) };
    }
    pick -= fresh;
    for (let t = 0; t < perRung.length; t++) {
      const c = perRung[t] as { count: number; nth: (k: number) => number };
      if (pick >= c.count) {
        pick -= c.count;
        continue;
      }
      const trial = c.nth(pick);
      this.promote(t, trial);
      return {
        action: "promote",
        trial: this.trials.nameOf(trial),
        from: this.total(t),
        to: this.total(t + 1),
      };
    }
    return { action: "wait" };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    const value = readMetric(metrics, this.opts.metric);
    const time = this.opts.multiObjective ? readMetric(metrics, this.opts.timeMetric) : 0;
    const index = this.trials.require(trial);
    const t = this.rungOf[index] ?? 0;
    if (resource < this.total(t)) return "continue";
    const state = this.states[t] as RungState;
    if (this.trials.status(index) === "running" && !state.rung.recorded.has(index)) {
      state.finished++;
      const score = scoreOf(this.sign, value);
      state.rung.record(index, score, this.tie++, true);
      if (this.opts.multiObjective) state.points.set(index, [score, time]);
    }
    const top = t === this.maxRung;
    this.trials.setStatus(index, top ? "stopped" : "paused");
    return top ? "stop" : "pause";
  }

  /** A diverged or crashed config is blacklisted for good, which also shrinks its rung (§6). */
  fail(trial: string): void {
    const index = this.trials.require(trial);
    this.trials.setStatus(index, "failed");
    const current = this.rungOf[index] ?? 0;
    (this.states[current] as RungState).blacklisted++;
    for (const s of this.states) {
      const score = s.rung.recorded.get(index);
      const tie = s.rung.tieOfTrial.get(index);
      if (score === undefined || tie === undefined) continue;
      s.rung.tree.remove(score, tie);
      s.rung.unpromoted.remove(score, tie);
      s.points.delete(index);
    }
  }

  complete(trial: string): void {
    const index = this.trials.require(trial);
    const t = this.rungOf[index] ?? 0;
    this.trials.setStatus(index, "completed");
    this.states[t]?.rung.markPromoted(index);
  }

  isDone(): boolean {
    if (this.trials.running > 0 || this.trials.size < this.opts.n) return false;
    return this.states.every((_, t) => this.candidates(t).count === 0);
  }

  rungs(): RungView[] {
    return this.states.map((s) => ({
      level: s.rung.level,
      values: s.rung.tree.entries().map((e) => this.sign * e.value),
    }));
  }

  /** How many configs `tops(t)` lets go on: min(finished − (n_rung − k), k) once finished > n_rung − k. */
  topsCount(t: number): number {
    if (t >= this.maxRung) return 0;
    const s = this.states[t] as RungState;
    const k = Math.floor(this.opts.n * Math.pow(this.opts.p, -(t + 1)));
    const nRung = Math.floor(this.opts.n * Math.pow(this.opts.p, -t)) - s.blacklisted;
    return s.finished > nRung - k ? Math.min(s.finished - (nRung - k), k) : 0;
  }

  /** The configs of rung t that `tops` selects, best first (promoted or not). */
  tops(t: number): string[] {
    const c = this.topsCount(t);
    return this.ranked(t)
      .slice(0, c)
      .map((i) => this.trials.nameOf(i));
  }

  private ranked(t: number): number[] {
    const s = this.states[t] as RungState;
    if (!this.opts.multiObjective)
      return s.rung.tree.entries().map((e) => s.rung.trialOfTie.get(e.tie) ?? -1);
    const ids = [...s.points.keys()];
    const fronts = nondominatedFronts(ids.map((i) => s.points.get(i) as [number, number]));
    return ids
      .map((id, k) => ({ id, f: fronts[k] ?? 0, tie: s.rung.tieOfTrial.get(id) ?? 0 }))
      .sort((a, b) => a.f - b.f || a.tie - b.tie)
      .map((e) => e.id);
  }

  private candidates(t: number): { count: number; nth: (k: number) => number } {
    const c = this.topsCount(t);
    const none = { count: 0, nth: () => -1 };
    const s = this.states[t] as RungState;
    if (c === 0 || s.rung.tree.size === 0) return none;
    if (this.opts.multiObjective) {
      const open = this.ranked(t)
        .slice(0, c)
        .filter((i) => !this.promoted.has(`${t}:${i}`) && this.trials.status(i) === "paused");
      return { count: open.length, nth: (k) => open[k] ?? -1 };
    }
    // the unpromoted entries among the first c of the rung: they are the unpromoted tree's smallest
    const edge = s.rung.tree.select(Math.min(c, s.rung.tree.size) - 1);
    const count = s.rung.unpromoted.rankOf(edge.value, edge.tie + 0.5);
    return { count, nth: (k) => s.rung.trialOfTie.get(s.rung.unpromoted.select(k).tie) ?? -1 };
  }

  private promote(t: number, trial: number): void {
    this.promoted.add(`${t}:${trial}`);
    this.states[t]?.rung.markPromoted(trial);
    this.rungOf[trial] = t + 1;
    this.trials.setStatus(trial, "running");
  }
}
