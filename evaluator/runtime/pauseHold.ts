// The pause of a running payload at a judged level (judgeGate.ts), shared by both runtimes: the
// runtime gives the agent `control`, calls refuse() when it begins to stop the payload, release()
// once its stop signal went out (the signal waits in the paused payload and is handled first
// thing when it runs again) and when the run ends. Pause and resume run one after another, never
// crossed; a pause that went out is always followed by a resume: on the agent's resume, when a
// hold outlasts maxHoldMs (a lost resume must not hold a payload until its wall clock), when the
// pause call itself failed (it may have paused all the same), and on release(). Once refused no
// pause goes out: a payload that is being stopped must run to handle its SIGTERM (a frozen
// process handles no signal, SIGKILL included on cgroup v1), and a container is never left paused.
import type { PauseControl } from "./types.ts";

/** The runtime's own pause and resume of the whole payload; either may reject. */
export interface PauseOps {
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/** The timers a hold uses (a fake clock's in tests). */
export interface HoldTimers {
  after(ms: number, fn: () => void): () => void;
}

/** Longest a payload stays paused when nobody resumes it: twice the agent's wait for a verdict. */
export const MAX_HOLD_MS = 10_000;

const realTimers: HoldTimers = {
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export class PauseHold {
  /** A pause went out and no resume has succeeded since. */
  private paused = false;
  private released = false;
  private chain: Promise<void> = Promise.resolve();
  private cancelBound: (() => void) | null = null;

  /**
   * What the agent gets (RunHooks.onStarted): neither call rejects. Once a stop began, the agent's
   * resume is left to the runtime's release(): sent before the stop signal, it would let the
   * payload train on until that signal came.
   */
  readonly control: PauseControl = {
    pause: () => this.queue(() => this.pauseNow()),
    resume: () => (this.released ? this.chain : this.queue(() => this.resumeNow())),
  };

  constructor(
    private readonly ops: PauseOps,
    /** Writes a line to the run's log (a failed call, a hold that ran out). */
    private readonly note: (text: string) => void,
    private readonly maxHoldMs = MAX_HOLD_MS,
    private readonly timers: HoldTimers = realTimers,
  ) {}

  /** Refuses every later pause (a stop began); a pause already sent stays until release(). */
  refuse(): void {
    this.released = true;
  }

  /** Resumes a paused payload and refuses every later pause; resolves once resumed (never rejects). */
  release(): Promise<void> {
    this.refuse();
    return this.queue(() => this.resumeNow());
  }

  private queue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step, step);
    return this.chain;
  }

  private async pauseNow(): Promise<void> {
    if (this.released || this.paused) return;
    // set first: a call that failed or ran out of time may have paused the payload all the same
    this.paused = true;
    try {
      await this.ops.pause();
    } catch (e) {
      this.note(`could not pause the payload (${message(e)}); it runs on`);
      return this.resumeNow();
    }
    this.cancelBound = this.timers.after(this.maxHoldMs, () => {
      this.cancelBound = null;
      this.note(`the payload was held ${this.maxHoldMs} ms with no resume; it resumes`);
      void this.queue(() => this.resumeNow());
    });
  }

  private async resumeNow(): Promise<void> {
    if (!this.paused) return;
    this.cancelBound?.();
    this.cancelBound = null;
    try {
      await this.ops.resume();
      this.paused = false;
    } catch (e) {
      // still counted as paused: release() and the bound try again
      this.note(`could not resume the payload: ${message(e)}`);
      if (!this.released)
        this.cancelBound = this.timers.after(this.maxHoldMs, () => void this.queue(() => this.resumeNow()));
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
