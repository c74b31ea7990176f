// Exponential back-off with jitter, shared by steering (retries of failed attempts) and the agent
// (late uploads of missing artifacts). Pure: the random share comes in as `u`, so steering can use
// a value derived from the attempt (the same delay after a restart) and tests a literal.
import { z } from "zod";

export const Backoff = z.object({
  /** The first delay (before jitter). */
  baseMs: z.number().int().nonnegative(),
  /** No delay is longer. */
  maxMs: z.number().int().nonnegative(),
  /** The share of each delay that is random: 0 = none, 0.5 = between half and all of it. */
  jitter: z.number().min(0).max(1),
});
export type Backoff = z.infer<typeof Backoff>;

/**
 * The delay before retry number `n` (1 for the first): baseMs·2^(n−1), capped at maxMs, less a
 * random share of `jitter` of it (`u` in [0, 1)).
 */
export function backoffDelay(b: Backoff, n: number, u: number): number {
  const full = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(52, Math.max(0, n - 1)));
  return Math.round(full * (1 - b.jitter * Math.min(Math.max(u, 0), 1)));
}

/** A number in [0, 1) from a string (FNV-1a): the same jitter for the same key, every time. */
export function stableUnit(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}
