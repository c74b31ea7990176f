// FIFO: no early stopping. Every trial trains to max_t; the baseline the others are measured against.
import { checkResource, readMetric, TrialRegistry } from "./types.ts";
import type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";

export class FifoScheduler implements Scheduler {
  readonly type = "fifo";
  private readonly trials = new TrialRegistry();

  constructor(private readonly opts: { metric: string; maxT: number; maxTrials?: number | undefined }) {}

  suggest(): Suggestion {
    if (this.opts.maxTrials !== undefined && this.trials.size >= this.opts.maxTrials)
      return { action: "wait" };
    const index = this.trials.create();
    return { action: "new", trial: this.trials.nameOf(index), milestone: this.opts.maxT };
  }

  report(trial: string, resource: number, metrics: number | Metrics): Decision {
    checkResource(resource);
    readMetric(metrics, this.opts.metric);
    const { index } = this.trials.indexOf(trial);
    const done = resource >= this.opts.maxT;
    this.trials.setStatus(index, done ? "stopped" : "running");
    return done ? "stop" : "continue";
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

  rungs(): RungView[] {
    return [];
  }
}
