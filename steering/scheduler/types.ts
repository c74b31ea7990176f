// The scheduler interface shared by every member of the family, and the bookkeeping every
// scheduler needs: trial names "T0", "T1", … in creation order, metric extraction, and the
// worker-facing state of each trial (running, paused, stopped, failed, completed).
import { ValidationError } from "../../protocol/errors.ts";

/** What a free worker should do. `milestone`/`to` is the resource level at which it reports back. */
export type Suggestion =
  | { action: "new"; trial: string; milestone: number }
  | { action: "promote"; trial: string; from: number; to: number }
  | { action: "wait" };

/** continue: keep training; stop: end the trial for good; pause: stop now, it may be promoted later. */
export type Decision = "continue" | "stop" | "pause";

export type Metrics = Readonly<Record<string, number>>;

/** A rung as seen from outside: its level and its recorded raw metrics, best first. */
export interface RungView {
  level: number;
  values: number[];
  /** The trial of each value (same order), where the scheduler keeps it: the monitor's ladder. */
  trials?: string[];
}

export interface Scheduler {
  readonly type: string;
  /** A worker is free: start a new trial, resume a paused one, or wait. */
  suggest(): Suggestion;
  /** A trial reports `metrics` (or one number, the configured metric) at `resource`. */
  report(trial: string, resource: number, metrics: number | Metrics): Decision;
  /** The trial ended with an error; its worker is free. */
  fail(trial: string): void;
  /** The trial ended on its own (for example it reached its end in the payload). */
  complete(trial: string): void;
  /** True when the trial budget is spent and nothing is running or can still be promoted. */
  isDone(): boolean;
  /** The recorded metrics of every rung (for inspection, replay and tests). */
  rungs(): RungView[];
}

export type TrialStatus = "running" | "paused" | "stopped" | "failed" | "completed";

/** Maps trial names to dense indices and tracks what each trial is doing. */
export class TrialRegistry {
  private readonly byName = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly statuses: TrialStatus[] = [];
  private nextNumber = 0;
  private runningCount = 0;

  get size(): number {
    return this.names.length;
  }

  get running(): number {
    return this.runningCount;
  }

  /** Creates the next trial "T<n>", skipping numbers already taken by adopted names. */
  create(): number {
    while (this.byName.has(`T${this.nextNumber}`)) this.nextNumber++;
    return this.add(`T${this.nextNumber++}`);
  }

  /** The index of `name`, adopting a trial the caller started itself (the first report names it). */
  indexOf(name: string): { index: number; adopted: boolean } {
    const known = this.byName.get(name);
    if (known !== undefined) return { index: known, adopted: false };
    if (name.length === 0)
      throw new ValidationError("INVALID_ARGUMENT", "trial: a trial name must not be empty");
    return { index: this.add(name), adopted: true };
  }

  find(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** The index of a trial the caller must have been given (suggest or report); NOT_FOUND otherwise. */
  require(name: string): number {
    const index = this.byName.get(name);
    if (index === undefined) throw unknownTrial(name);
    return index;
  }

  /** All `maxTrials` trials were created and none is running (schedulers with a trial budget). */
  isSpent(maxTrials: number | undefined): boolean {
    return maxTrials !== undefined && this.names.length >= maxTrials && this.runningCount === 0;
  }

  nameOf(index: number): string {
    return this.names[index] ?? `#${index}`;
  }

  status(index: number): TrialStatus {
    return this.statuses[index] ?? "failed";
  }

  setStatus(index: number, status: TrialStatus): void {
    const before = this.statuses[index];
    if (before === "running") this.runningCount--;
    if (status === "running") this.runningCount++;
    this.statuses[index] = status;
  }

  private add(name: string): number {
    const index = this.names.length;
    this.names.push(name);
    this.byName.set(name, index);
    this.statuses.push("running");
    this.runningCount++;
    return index;
  }
}

/** Reads the one objective of a single-objective scheduler from a report. */
export function readMetric(metrics: number | Metrics, metric: string): number {
  if (typeof metrics === "number") return metrics;
  const v = metrics[metric];
  if (typeof v !== "number") {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `metrics.${metric}: the report has no number for the scheduler's metric "${metric}" (keys: ${Object.keys(metrics).join(", ") || "none"})`,
    );
  }
  return v;
}

export function checkResource(resource: number): void {
  if (typeof resource !== "number" || !Number.isFinite(resource) || resource < 0) {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `resource: must be a finite number ≥ 0, got ${String(resource)}`,
    );
  }
}

export function unknownTrial(name: string): ValidationError {
  return new ValidationError("NOT_FOUND", `trial: no trial named "${name}" was suggested by this scheduler`);
}
