// Holds a payload at the levels where a stopping scheduler judges it (Job.judgeAt) until steering's
// verdict on that report arrives. Without it a payload with fast epochs trains on while its report
// travels to steering, is judged, made durable, and a stop comes back: a pruned trial trained
// several epochs (with 10 ms epochs, dozens) past the level it was stopped at. The wait is bounded,
// so a steering outage or a lost message costs at most that wait per judged level, never a stall.
import type { Logger } from "../protocol/log.ts";
import type { PauseControl } from "./runtime/types.ts";

/** How long a paused payload waits for steering's verdict before it resumes on its own. */
export const VERDICT_WAIT_MS = 5000;

export type VerdictWait = "continue" | "stopped" | "timeout";

/** The `continue` messages steering sent for one attempt: the highest report it let run. */
export class Verdicts {
  private judged = Number.NEGATIVE_INFINITY;
  private readonly waiters = new Set<{ resource: number; done: () => void }>();

  /** Steering judged the report at `resource` and did not stop the attempt. */
  continued(resource: number): void {
    if (resource <= this.judged) return;
    this.judged = resource;
    for (const w of this.waiters) if (w.resource <= resource) w.done();
  }

  /** Resolves when the report at `resource` (or a later one) was let run, the attempt is stopped, or after `ms`. */
  wait(resource: number, ms: number, signal: AbortSignal): Promise<VerdictWait> {
    if (signal.aborted) return Promise.resolve("stopped");
    if (this.judged >= resource) return Promise.resolve("continue");
    return new Promise((resolve) => {
      const end = (v: VerdictWait): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.waiters.delete(waiter);
        resolve(v);
      };
      const onAbort = (): void => end("stopped");
      const waiter = { resource, done: () => end("continue") };
      const timer = setTimeout(() => end("timeout"), ms);
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }
}

/** Pauses the payload at the first report at or past each judged level, until its verdict. */
export class JudgeGate {
  private next = 0;
  private control: PauseControl | null = null;
  private busy: Promise<void> = Promise.resolve();
  /** Aborted when the payload ended: a wait for its verdict is over. */
  private readonly ended = new AbortController();
  /** How many times the payload was paused, and how many of those waits ran out. */
  readonly counts = { paused: 0, timedOut: 0 };

  constructor(
    private readonly levels: readonly number[],
    private readonly verdicts: Verdicts,
    private readonly signal: AbortSignal,
    private readonly waitMs: number,
    private readonly logger: Logger,
    private readonly jobId: string,
  ) {}

  /** The runtime started the payload and can pause it. */
  started(control: PauseControl): void {
    this.control = control;
  }

  /** A report at `resource` goes to steering (called in report order); true: the payload is held for its verdict. */
  reported(resource: number): boolean {
    let crossed = false;
    while (this.next < this.levels.length && resource >= (this.levels[this.next] ?? Infinity)) {
      this.next++;
      crossed = true;
    }
    const control = this.control;
    if (!crossed || !control || this.signal.aborted) return false;
    this.busy = this.busy.then(() => this.hold(control, resource));
    return true;
  }

  /** The payload ended: ends a wait in progress; resolves once none is. */
  end(): Promise<void> {
    this.ended.abort();
    return this.busy;
  }

  private async hold(control: PauseControl, resource: number): Promise<void> {
    const signal = AbortSignal.any([this.signal, this.ended.signal]);
    if (signal.aborted) return;
    await control.pause();
    this.counts.paused++;
    const v = await this.verdicts.wait(resource, this.waitMs, signal);
    if (v === "timeout") {
      this.counts.timedOut++;
      this.logger.warn("no verdict from steering; the payload resumes", {
        jobId: this.jobId,
        resource,
        waitedMs: this.waitMs,
      });
    }
    // after a stop the runtime resumes it itself, once its SIGTERM went out (runtime/pauseHold.ts)
    await control.resume();
  }
}
