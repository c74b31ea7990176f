// The steering leader's lease on NATS KV (bucket gtleader, one key): this process's view of who
// leads, kept by polling. The rule is steering/core/leadership.ts; this file reads the lease,
// writes it (create / compare-and-set update / release) and calls back on election and deposition.
// Polled, not watched: on nats-server 2.9 a watcher gets no event when a key expires by age.
import { Kvm, type KV } from "@nats-io/kv";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { UnavailableError, unreachable } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import { KV_LEADER, LEADER_KEY } from "../../protocol/subjects.ts";
import { decideLeadership, termHolds, type LeaseRecord, type Term } from "../core/leadership.ts";
import type { Cancel, Clock } from "./clock.ts";

/** The lease's value: whoever wrote it, parsed like any input (the bucket is writable by steering only, but a bad value must not crash a standby). */
const LeaseValue = z.object({ holder: z.string().min(1).max(256) });
type LeaseValue = z.infer<typeof LeaseValue>;

/** The writes the election needs, as KV offers them (a test can wrap a real bucket). */
export type LeaseStore = Pick<KV, "get" | "create" | "update" | "delete">;

/** A request, job or append refused because this process no longer leads. */
export class NotLeaderError extends UnavailableError {
  override name = "NotLeaderError";
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`this steering process does not lead (${reason}); another one serves`, options);
  }
}

export interface ElectionHandlers {
  /** This process now holds the lease: rebuild from the log and serve. */
  elected(previousHolder: string | null): void;
  /** This process no longer holds the lease: stop serving at once. */
  deposed(reason: string): void;
  /** Logged once per holder, while standing by. */
  standingBy(holder: string): void;
}

/** Opens (or creates) the lease bucket with `ttlMs`; an existing bucket keeps its own TTL. */
export async function openLeaseBucket(
  nc: NatsConnection,
  ttlMs: number,
  replicas: number,
): Promise<{ kv: KV; ttlMs: number }> {
  const kv = await new Kvm(nc).create(KV_LEADER, { history: 1, ttl: ttlMs, replicas });
  const status = await kv.status();
  return { kv, ttlMs: status.ttl > 0 ? status.ttl : ttlMs };
}

/** True for JetStream's "wrong last sequence" (10071): a create or compare-and-set that lost. Walks the cause chain. */
export function isWrongLastSequence(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 10071 || /wrong last sequence/i.test(e.message)) return true;
  }
  return false;
}

export class LeaderElection {
  private term: Term | null = null;
  private cancel: Cancel | null = null;
  private busy = false;
  private stopped = false;
  private lastStandby: string | null = null;
  readonly renewMs: number;

  constructor(
    private readonly kv: LeaseStore,
    readonly self: string,
    readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly on: ElectionHandlers,
  ) {
    this.renewMs = Math.max(100, Math.floor(ttlMs / 3));
  }

  /** Polls now and every renewMs until stop(). */
  start(): void {
    this.cancel = this.clock.every(this.renewMs, () => void this.tick());
    void this.tick();
  }

  /** True while this process holds the lease and its last write was sent within the TTL. */
  holds(): boolean {
    return !this.stopped && termHolds(this.term, this.clock.now(), this.ttlMs);
  }

  /** One poll: read the lease, apply the rule, write. Overlapping polls are skipped. */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      await this.step();
    } catch (e) {
      // the lease could not be read or written (NATS away): the next poll tries again, and a
      // leader whose term runs out meanwhile steps down on the time rule alone
      this.logger.warn("leader lease poll failed", { error: String(e) });
      if (this.term && !this.holds()) this.depose("the lease could not be renewed within its TTL");
    } finally {
      this.busy = false;
    }
  }

  private async step(): Promise<void> {
    const lease = await this.read();
    const action = decideLeadership({
      self: this.self,
      lease,
      term: this.term,
      now: this.clock.now(),
      ttlMs: this.ttlMs,
      renewMs: this.renewMs,
    });
    switch (action.type) {
      case "hold":
        return;
      case "stand-by":
        if (this.lastStandby !== action.holder) this.on.standingBy(action.holder);
        this.lastStandby = action.holder;
        return;
      case "step-down":
        return this.depose(action.reason);
      case "acquire": {
        const sentAt = this.clock.now();
        let revision: number;
        try {
          revision = await this.kv.create(LEADER_KEY, this.value());
        } catch (e) {
          if (isWrongLastSequence(e)) return; // another standby won the race: the next poll says who
          throw e;
        }
        if (this.stopped) return void (await this.release(revision));
        this.term = { revision, renewedAt: sentAt };
        const previous = this.lastStandby;
        this.lastStandby = null;
        this.on.elected(previous);
        return;
      }
      case "renew": {
        const sentAt = this.clock.now();
        try {
          const revision = await this.kv.update(LEADER_KEY, this.value(), action.revision);
          if (this.term?.revision === action.revision) this.term = { revision, renewedAt: sentAt };
        } catch (e) {
          if (isWrongLastSequence(e)) return this.depose("lost the lease's compare-and-set");
          throw e;
        }
        return;
      }
      default:
        unreachable(action, "leadership action");
    }
  }

  private async read(): Promise<LeaseRecord | null> {
    const e = await this.kv.get(LEADER_KEY);
    if (!e || e.operation !== "PUT") return null;
    let value: LeaseValue | null = null;
    try {
      const r = LeaseValue.safeParse(JSON.parse(e.string()));
      if (r.success) value = r.data;
    } catch {
      value = null;
    }
    // an unreadable lease still belongs to someone: wait for it to expire, never overwrite it
    return { holder: value?.holder ?? "(unreadable lease)", revision: e.revision };
  }

  private value(): string {
    return JSON.stringify({ holder: this.self } satisfies LeaseValue);
  }

  /**
   * Stops leading now (a lost lease, or an append the log refused because another process
   * appended): the term ends before anything else runs, so holds() is false for every request
   * still queued. The lease is released if it is still this term's, so that a standby (or this
   * process) need not wait for the TTL.
   */
  depose(reason: string): void {
    const term = this.term;
    if (!term) return;
    this.term = null;
    this.on.deposed(reason);
    void this.release(term.revision);
  }

  private async release(revision: number): Promise<void> {
    await this.kv.delete(LEADER_KEY, { previousSeq: revision }).catch((e: unknown) => {
      // another process holds it (or NATS is away): the TTL ends it either way
      if (!isWrongLastSequence(e)) this.logger.debug("could not release the lease", { error: String(e) });
    });
  }

  /** Stops polling and releases the lease if held (a clean shutdown hands over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    const term = this.term;
    this.term = null;
    if (term) await this.release(term.revision);
  }
}

/** What a SteeringService needs of its leadership term: whether it still leads, and who to tell when the log says it does not. */
export interface LeaderTerm {
  holds(): boolean;
  fenced(e: NotLeaderError): void;
}

/**
 * The request with a respond() that answers only while the term holds: a request taken while
 * leading and finished after the lease ran out (a stall, SIGSTOP) gets no answer from this
 * process; the requester's retry reaches the leader.
 */
export function repliesWhileLeading<M extends Pick<Msg, "respond">>(
  m: M,
  term: LeaderTerm,
  dropped: () => void,
): M {
  const guarded = Object.create(m) as M;
  guarded.respond = (...args: Parameters<Msg["respond"]>) => {
    if (term.holds()) return m.respond(...args);
    dropped();
    return false;
  };
  return guarded;
}
