// Riding through a JetStream leader election. On a NATS cluster, killing the server that leads a
// stream leaves it without a leader for a few seconds (about 4–5 s on nats-server 2.9.10): its
// publishes fail as "jetstream is not enabled" (no responders), API calls answer 503, and a
// request that reached the dead leader times out. The data is safe on the other replicas; the
// publish only has to be sent again once a new leader is elected. Every publish and request that
// must not fail on an election goes through withElectionRetry: bounded retries with back-off and
// jitter, then one error naming the bound. A retried JetStream publish must carry a msgID, so a
// first try that was stored but not acknowledged is dropped as a duplicate, not stored twice.
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { z } from "zod";
import { type Backoff, backoffDelay } from "./backoff.ts";
import { UnavailableError } from "./errors.ts";

export const ElectionRetry = z.object({
  /** No retry starts after this long from the first try (the bound named in the error). */
  totalMs: z.number().int().nonnegative(),
  baseMs: z.number().int().positive(),
  maxMs: z.number().int().positive(),
  jitter: z.number().min(0).max(1),
});
export type ElectionRetry = z.infer<typeof ElectionRetry>;

/** Three times the election measured here (docs/benchmarks.md, "NATS cluster failover"). */
export const DEFAULT_ELECTION_RETRY: ElectionRetry = {
  totalMs: 15_000,
  baseMs: 100,
  maxMs: 2_000,
  jitter: 0.5,
};

/** Where the helper reads the time and waits: the real ones by default, a fake in tests. */
export interface RetryTime {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** In [0, 1): the random share of each delay. */
  random(): number;
}

export const realRetryTime: RetryTime = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  random: () => Math.random(),
};

/** The retries did not get through within the bound; `cause` is the last failure. */
export class ElectionRetryError extends UnavailableError {
  override name = "ElectionRetryError";
  constructor(
    readonly what: string,
    readonly attempts: number,
    readonly totalMs: number,
    cause: unknown,
    hint = "",
  ) {
    super(
      `${what} failed ${attempts} time(s) within ${totalMs} ms (the NATS retry bound${hint ? `, ${hint}` : ""}): ` +
        `${cause instanceof Error ? cause.message : String(cause)}. A JetStream leader election takes a few ` +
        "seconds; longer means a majority of the cluster's servers is down or unreachable: check them " +
        "(nats-server logs, /healthz) or raise the bound",
      { cause },
    );
  }
}

/**
 * Whether a failure is one an election (or a reconnect to another server) causes and a retry can
 * cure: a timeout, no responders ("jetstream is not enabled" while the stream has no leader), or a
 * JetStream API error with status 503 (temporarily unavailable). Walks the cause chain.
 */
export function isElectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof TimeoutError || e instanceof NoRespondersError) return true;
    if (e instanceof RequestError && e.isNoResponders()) return true;
    // Not exported by @nats-io/jetstream's entry point, so matched by name.
    if (e.name === "JetStreamNotEnabled") return true;
    const status = (e as { status?: unknown }).status;
    if (e.name === "JetStreamApiError" && status === 503) return true;
  }
  return false;
}

export interface ElectionRetryOptions {
  bound?: ElectionRetry;
  time?: RetryTime;
  /** Which failures are retried; default isElectionError. */
  retryable?: (err: unknown) => boolean;
  /** Told about each failure that is retried (for a warning in the log). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Where the bound is set, for the error (e.g. "GRIDTUNE_NATS_RETRY_MS"). */
  boundSetting?: string;
}

/**
 * Runs `op` until it succeeds, a failure is not retryable (thrown as is), or the bound has passed
 * (ElectionRetryError). `op` gets the time left, so a request can cap its own timeout by it.
 */
export async function withElectionRetry<T>(
  what: string,
  op: (remainingMs: number) => Promise<T>,
  o: ElectionRetryOptions = {},
): Promise<T> {
  const bound = o.bound ?? DEFAULT_ELECTION_RETRY;
  const time = o.time ?? realRetryTime;
  const retryable = o.retryable ?? isElectionError;
  const backoff: Backoff = { baseMs: bound.baseMs, maxMs: bound.maxMs, jitter: bound.jitter };
  const start = time.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(Math.max(0, start + bound.totalMs - time.now()));
    } catch (err) {
      if (!retryable(err)) throw err;
      const left = start + bound.totalMs - time.now();
      if (left <= 0) throw new ElectionRetryError(what, attempt, bound.totalMs, err, o.boundSetting);
      const delay = Math.min(left, backoffDelay(backoff, attempt, time.random()));
      o.onRetry?.(err, attempt, delay);
      await time.sleep(delay);
    }
  }
}

/** A per-try timeout: `ms`, but never past the bound (and at least `floorMs`, so a try can succeed). */
export function tryTimeout(ms: number, remainingMs: number, floorMs = 1_000): number {
  return Math.max(floorMs, Math.min(ms, remainingMs));
}
