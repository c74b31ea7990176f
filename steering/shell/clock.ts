// The Clock port: the one place steering's shell reads the time or schedules work. Tests pass a
// fake (test/unit/fixtures/fakeClock.ts) and move time by hand instead of sleeping.

/** Stops a scheduled callback; calling it twice is harmless. */
export type Cancel = () => void;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls fn every `ms` until cancelled; does not keep the process alive. */
  every(ms: number, fn: () => void): Cancel;
  /** Calls fn once, `ms` from now, unless cancelled first; does not keep the process alive. */
  after(ms: number, fn: () => void): Cancel;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return () => clearTimeout(t);
  },
};
