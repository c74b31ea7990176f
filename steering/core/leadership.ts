// Who leads steering: the rule each process applies to the lease it reads from the KV bucket
// (steering/shell/leadership.ts does the reading and writing). Pure: the lease, the process's own
// term and `now` come in, one action comes out.
//
// The lease is one KV key whose bucket TTL expires it unless renewed. A standby takes it with
// create() (only when absent); the leader renews it with update(revision) (compare-and-set) every
// renewMs. The leader counts its lease from the moment it SENT its last successful write: the
// server stores (and starts the TTL) no earlier than that, so "now < renewedAt + ttl" is a lower
// bound of the lease's life on the server (the two clocks only need to run at the same rate).

/** The lease as read from the bucket; null when the key is absent (never taken, expired or released). */
export interface LeaseRecord {
  readonly holder: string;
  readonly revision: number;
}

/** This process's term while it leads: the revision of its last write and when it sent that write. */
export interface Term {
  readonly revision: number;
  readonly renewedAt: number;
}

export interface LeadershipInput {
  readonly self: string;
  readonly lease: LeaseRecord | null;
  /** Null while this process stands by. */
  readonly term: Term | null;
  readonly now: number;
  readonly ttlMs: number;
  readonly renewMs: number;
}

export type LeadershipAction =
  | { readonly type: "acquire" }
  | { readonly type: "renew"; readonly revision: number }
  | { readonly type: "hold" }
  | { readonly type: "step-down"; readonly reason: string }
  | { readonly type: "stand-by"; readonly holder: string };

/** True while the term's lease is certainly still in force on the server at `now`. */
export function termHolds(term: Term | null, now: number, ttlMs: number): boolean {
  return term !== null && now - term.renewedAt < ttlMs;
}

export function decideLeadership(i: LeadershipInput): LeadershipAction {
  const { lease, term, now } = i;
  if (term === null) {
    // a lease that is still there stays its holder's, even one naming this process (a term it
    // lost): only its expiry hands it over, so two processes never both believe they lead
    return lease === null ? { type: "acquire" } : { type: "stand-by", holder: lease.holder };
  }
  if (!termHolds(term, now, i.ttlMs))
    return {
      type: "step-down",
      reason: `lease not renewed for ${now - term.renewedAt} ms (ttl ${i.ttlMs} ms)`,
    };
  if (lease === null) return { type: "step-down", reason: "the lease is gone (expired or removed)" };
  if (lease.holder !== i.self || lease.revision !== term.revision)
    return {
      type: "step-down",
      reason: `the lease is now held by ${lease.holder} (revision ${lease.revision})`,
    };
  return now - term.renewedAt >= i.renewMs ? { type: "renew", revision: term.revision } : { type: "hold" };
}
