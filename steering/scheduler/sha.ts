// Synchronous successive halving (ASHA paper, Algorithm 1): n trials train to r_0; when every one
// of them has reported (or failed), the best ⌊n_i/η⌋ are promoted to the next rung, and so on up to
// max_t. The baseline ASHA is compared with: it waits for stragglers, ASHA does not.
import { syneTuneRungLevels } from "../../protocol/schedulerFormulas.ts";
import { Rung, scoreOf, type Sign } from "./rung.ts";
import { checkResource, readMetric, TrialRegistry } from "./types.ts";
import type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";

export interface ShaOptions {
  metric: string;
  mode: "min" | "max";
  maxT: number;
  gracePeriod: number;
  reductionFactor?: number | undefined;
  rungIncrement?: number | undefined;
  rungLevels?: readonly number[] | undefined;
  maxTrials?: number | undefined;
}

export class ShaScheduler implements Scheduler {
  readonly type = "sha";
  private readonly trials = new TrialRegistry();
  private readonly sign: Sign;
  private readonly eta: number;
  private readonly ladder: number[];
  private readonly rungList: Rung[];
  /** How many trials each rung waits for before it promotes. */
  readonly rungSizes: number[];
  private readonly arrived: number[];
  private readonly target: number[] = [];
  private readonly resumeFrom: number[] = [];
  private readonly queue: { trial: number; from: number; to: number }[] = [];
  private tie = 0;

  constructor(private readonly opts: ShaOptions) {
    this.sign = opts.mode === "min" ? 1 : -1;
    this.eta = opts.reductionFactor ?? 3;
    const levels = syneTuneRungLevels(opts);
    this.ladder = [...levels, opts.maxT];
    this.rungList = levels.map((l) => new Rung(l, 1));
    const n = opts.maxTrials ?? Math.pow(this.eta, levels.length);
    this.rungSizes = [Math.floor(n)];
    for (let i = 1; i < this.ladder.length; i++)
      this.rungSizes.push(Math.floor((this.rungSizes[i - 1] ?? 0) / this.eta));
    this.arrived = this.ladder.map(() => 0);
  }

  suggest(): Suggestion {
    const p = this.queue.shift();
    if (p) {
      this.trials.setStatus(p.trial, "running");
      this.resumeFrom[p.trial] = this.ladder[p.from] ?? 0;
      this.target[p.trial] = p.to;
      return {
        action: "promote",
        trial: this.trials.nameOf(p.trial),
        from: this.ladder[p.from] ?? 0,
        to: this.ladder[p.to] ?? 0,
      };
    }
    if (this.trials.size >= (this.rungSizes[0] ?? 0)) return { action: "wait" };
    const index = this.trials.create();
    this.target[index] = 0;
    this.resumeFrom[index] = NaN;
    return { action: "new", trial: this.trials.nameOf(index), milestone: this.ladder[0] ?? this.opts.maxT };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    const raw = readMetric(metrics, this.opts.metric);
    const index = this.trials.require(trial);
    const t = this.target[index] ?? 0;
    const level = this.ladder[t] ?? this.opts.maxT;
    const from = this.resumeFrom[index] ?? NaN;
    if ((!Number.isNaN(from) && resource <= from) || resource < level) return "continue";
    if (this.trials.status(index) !== "running")
      return this.trials.status(index) === "paused" ? "pause" : "stop";
    if (t === this.ladder.length - 1) {
      this.trials.setStatus(index, "stopped");
      this.arrive(t);
      return "stop";
    }
    (this.rungList[t] as Rung).record(index, scoreOf(this.sign, raw), this.tie++, true);
    this.trials.setStatus(index, "paused");
    this.arrive(t);
    return "pause";
  }

  fail(trial: string): void {
    const index = this.trials.require(trial);
    const running = this.trials.status(index) === "running";
    this.trials.setStatus(index, "failed");
    if (running) this.arrive(this.target[index] ?? 0);
  }

  complete(trial: string): void {
    const index = this.trials.require(trial);
    const running = this.trials.status(index) === "running";
    this.trials.setStatus(index, "completed");
    if (running) this.arrive(this.target[index] ?? 0);
  }

  isDone(): boolean {
    return (
      this.trials.size >= (this.rungSizes[0] ?? 0) && this.trials.running === 0 && this.queue.length === 0
    );
  }

  rungs(): RungView[] {
    return this.rungList.map((r) => {
      const entries = r.tree.entries();
      return {
        level: r.level,
        values: entries.map((e) => this.sign * e.value),
        trials: entries.map((e) => this.trials.nameOf(r.trialOfTie.get(e.tie) ?? -1)),
      };
    });
  }

  // When the last expected trial of rung i is in, the best ⌊n_i/η⌋ recorded there go on (in rank order).
  private arrive(i: number): void {
    this.arrived[i] = (this.arrived[i] ?? 0) + 1;
    if (this.arrived[i] !== this.rungSizes[i] || i >= this.rungList.length) return;
    const rung = this.rungList[i] as Rung;
    const keep = Math.min(this.rungSizes[i + 1] ?? 0, rung.tree.size);
    const promoted: number[] = [];
    for (let k = 0; k < keep; k++) promoted.push(rung.trialOfTie.get(rung.tree.select(k).tie) ?? -1);
    // a rung that lost trials to failures promotes fewer; the next rung then waits for fewer
    this.rungSizes[i + 1] = keep;
    for (const trial of promoted) {
      rung.markPromoted(trial);
      this.queue.push({ trial, from: i, to: i + 1 });
    }
    if (keep === 0) for (let j = i + 1; j < this.rungSizes.length; j++) this.rungSizes[j] = 0;
  }
}
