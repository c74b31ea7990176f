// Who leads steering: the rule (core/leadership.ts) on literal times, then the election
// (shell/leadership.ts) against an in-memory KV with the semantics nats-server 2.9 gives the lease
// bucket (create only when absent, update compare-and-set on the revision, a key expiring TTL after
// its last write, no event on expiry) and a FakeClock: no sleeps, no NATS.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KvEntry } from "@nats-io/kv";
import { ValidationError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import { decideLeadership, termHolds } from "../../steering/core/leadership.ts";
import type { Cancel, Clock } from "../../steering/shell/clock.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { LeaderElection, repliesWhileLeading, type LeaseStore } from "../../steering/shell/leadership.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";
import { STEERING_ENV } from "./fixtures/startupKit.ts";

const logger = createLogger("test", { level: "error" });
const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe("the leadership rule", () => {
  const base = { self: "a", ttlMs: 9000, renewMs: 3000 };
  it("a standby takes an absent lease and waits while anyone holds one, itself included", () => {
    assert.deepEqual(decideLeadership({ ...base, lease: null, term: null, now: 5 }), { type: "acquire" });
    assert.deepEqual(decideLeadership({ ...base, lease: { holder: "b", revision: 4 }, term: null, now: 5 }), {
      type: "stand-by",
      holder: "b",
    });
    // a lease naming this process from a term it lost is not taken back before it expires
    assert.equal(
      decideLeadership({ ...base, lease: { holder: "a", revision: 4 }, term: null, now: 5 }).type,
      "stand-by",
    );
  });
  it("the leader renews once renewMs has passed since it sent its last write, holds before", () => {
    const term = { revision: 7, renewedAt: 1000 };
    const lease = { holder: "a", revision: 7 };
    assert.deepEqual(decideLeadership({ ...base, lease, term, now: 3999 }), { type: "hold" });
    assert.deepEqual(decideLeadership({ ...base, lease, term, now: 4000 }), { type: "renew", revision: 7 });
  });
  it("the leader steps down when its TTL has run out, the lease is gone or someone else wrote it", () => {
    const term = { revision: 7, renewedAt: 1000 };
    const mine = { holder: "a", revision: 7 };
    assert.equal(decideLeadership({ ...base, lease: mine, term, now: 10_000 }).type, "step-down");
    assert.equal(decideLeadership({ ...base, lease: null, term, now: 2000 }).type, "step-down");
    assert.equal(
      decideLeadership({ ...base, lease: { holder: "b", revision: 8 }, term, now: 2000 }).type,
      "step-down",
    );
    // same holder name, another revision: a write this term did not make
    assert.equal(
      decideLeadership({ ...base, lease: { holder: "a", revision: 9 }, term, now: 2000 }).type,
      "step-down",
    );
  });
  it("a term holds strictly within the TTL of its last write's send time", () => {
    assert.equal(termHolds({ revision: 1, renewedAt: 1000 }, 9999, 9000), true);
    assert.equal(termHolds({ revision: 1, renewedAt: 1000 }, 10_000, 9000), false);
    assert.equal(termHolds(null, 0, 9000), false);
  });
});

/** The lease bucket as nats-server 2.9 keeps it, on the test's clock. */
class FakeKv implements LeaseStore {
  private seq = 0;
  private entry: { value: string; revision: number; at: number } | null = null;
  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}
  private live() {
    if (this.entry && this.clock.now() - this.entry.at >= this.ttlMs) this.entry = null;
    return this.entry;
  }
  private wrong(): Error {
    return Object.assign(new Error("wrong last sequence: 3"), { code: 10071 });
  }
  get(): Promise<KvEntry | null> {
    const e = this.live();
    if (!e) return Promise.resolve(null);
    return Promise.resolve({
      operation: "PUT",
      revision: e.revision,
      string: () => e.value,
    } as unknown as KvEntry);
  }
  create(_k: string, v: unknown): Promise<number> {
    if (this.live()) return Promise.reject(this.wrong());
    return Promise.resolve(this.write(String(v)));
  }
  update(_k: string, v: unknown, revision: number): Promise<number> {
    if (this.live()?.revision !== revision) return Promise.reject(this.wrong());
    return Promise.resolve(this.write(String(v)));
  }
  delete(_k: string, o?: { previousSeq?: number }): Promise<void> {
    if (o?.previousSeq !== undefined && this.live()?.revision !== o.previousSeq)
      return Promise.reject(this.wrong());
    this.entry = null;
    this.seq++;
    return Promise.resolve();
  }
  /** Another writer (an operator, a process with a bug) overwrites the key. */
  overwrite(value: string): void {
    this.write(value);
  }
  private write(value: string): number {
    this.entry = { value, revision: ++this.seq, at: this.clock.now() };
    return this.seq;
  }
}

/** The shared clock as a process sees it: a stopped one (SIGSTOP) runs none of its timers. */
class ProcessClock implements Clock {
  stopped = false;
  constructor(private readonly c: FakeClock) {}
  now(): number {
    return this.c.now();
  }
  every(ms: number, fn: () => void): Cancel {
    return this.c.every(ms, () => {
      if (!this.stopped) fn();
    });
  }
  after(ms: number, fn: () => void): Cancel {
    return this.c.after(ms, () => {
      if (!this.stopped) fn();
    });
  }
}

function process(name: string, kv: LeaseStore, clock: FakeClock) {
  const events: string[] = [];
  const pc = new ProcessClock(clock);
  const election = new LeaderElection(kv, name, 9000, pc, logger, {
    elected: (prev) => events.push(`elected after ${prev ?? "none"}`),
    deposed: (reason) => events.push(`deposed: ${reason}`),
    standingBy: (holder) => events.push(`standby for ${holder}`),
  });
  return { election, events, clock: pc };
}

describe("the leader election", () => {
  it("one process leads and renews; the other stands by for as long as the lease is renewed", async () => {
    const clock = new FakeClock();
    const kv = new FakeKv(clock, 9000);
    const a = process("a", kv, clock);
    a.election.start();
    await flush();
    const b = process("b", kv, clock);
    b.election.start();
    await flush();
    for (let i = 0; i < 30; i++) {
      clock.advance(1000);
      await flush();
    }
    assert.deepEqual(a.events, ["elected after none"]);
    assert.deepEqual(b.events, ["standby for a"]);
    assert.equal(a.election.holds(), true);
    assert.equal(b.election.holds(), false);
  });

  it("a stalled leader stops holding at its TTL, the standby takes over, and the old one steps down when it wakes", async () => {
    const clock = new FakeClock();
    const kv = new FakeKv(clock, 9000);
    const a = process("a", kv, clock);
    a.election.start();
    await flush();
    const b = process("b", kv, clock);
    b.election.start();
    await flush();
    a.clock.stopped = true; // SIGSTOP
    clock.advance(8000);
    await flush();
    assert.equal(a.election.holds(), true, "still within the TTL of its last renewal");
    clock.advance(1000);
    assert.equal(a.election.holds(), false, "no answer once the TTL of its last write has passed");
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      await flush();
    }
    assert.deepEqual(b.events, ["standby for a", "elected after a"]);
    assert.equal(b.election.holds(), true);
    a.clock.stopped = false; // SIGCONT
    clock.advance(3000);
    await flush();
    assert.equal(a.events.length, 2);
    assert.match(a.events[1]!, /^deposed: lease not renewed/);
    assert.equal(b.election.holds(), true, "the old leader's release does not remove the new lease");
  });

  it("a leader whose compare-and-set fails steps down at once", async () => {
    const clock = new FakeClock();
    const kv = new FakeKv(clock, 9000);
    const a = process("a", kv, clock);
    a.election.start();
    await flush();
    kv.overwrite(JSON.stringify({ holder: "intruder" }));
    clock.advance(3000);
    await flush();
    assert.match(a.events.at(-1)!, /^deposed: the lease is now held by intruder/);
    assert.equal(a.election.holds(), false);
  });

  it("a clean stop releases the lease: the standby takes over at its next poll, not after the TTL", async () => {
    const clock = new FakeClock();
    const kv = new FakeKv(clock, 9000);
    const a = process("a", kv, clock);
    a.election.start();
    await flush();
    const b = process("b", kv, clock);
    b.election.start();
    await flush();
    await a.election.stop();
    clock.advance(3000);
    await flush();
    assert.deepEqual(b.events, ["standby for a", "elected after a"]);
    assert.equal(clock.now() - 1_000_000 < 9000, true);
  });

  it("an unreadable lease value is never overwritten: a standby waits for it to expire", async () => {
    const clock = new FakeClock();
    const kv = new FakeKv(clock, 9000);
    kv.overwrite("{not json");
    const b = process("b", kv, clock);
    b.election.start();
    await flush();
    assert.deepEqual(b.events, ["standby for (unreadable lease)"]);
    for (let i = 0; i < 4; i++) {
      clock.advance(3000);
      await flush();
    }
    assert.deepEqual(b.events, ["standby for (unreadable lease)", "elected after (unreadable lease)"]);
    await b.election.stop();
  });
});

describe("a reply under a term", () => {
  it("goes out while the term holds and not once it lapsed, however long the handler took", () => {
    let holds = true;
    const sent: string[] = [];
    let dropped = 0;
    const msg = {
      subject: "gt.api.demo.list",
      respond: (data?: unknown) => {
        sent.push(String(data));
        return true;
      },
    };
    const term = { holds: () => holds, fenced: () => undefined };
    const m = repliesWhileLeading(msg, term, () => dropped++);
    assert.equal(m.subject, "gt.api.demo.list", "the request reads as before");
    assert.equal(m.respond("one"), true);
    holds = false; // the lease ran out while the handler worked (a stall, SIGSTOP)
    assert.equal(m.respond("two"), false);
    assert.deepEqual(sent, ["one"]);
    assert.equal(dropped, 1);
  });
});

describe("the lease TTL setting", () => {
  const env = STEERING_ENV;
  it("defaults to 10 s; the flag beats GRIDTUNE_LEADER_TTL_MS", () => {
    assert.equal(compileSteeringConfig({}, env).leaderTtlMs, 10_000);
    assert.equal(compileSteeringConfig({}, { ...env, GRIDTUNE_LEADER_TTL_MS: "4000" }).leaderTtlMs, 4000);
    assert.equal(
      compileSteeringConfig({ leaderTtlMs: "2500" }, { ...env, GRIDTUNE_LEADER_TTL_MS: "4000" }).leaderTtlMs,
      2500,
    );
  });
  it("a TTL under a second or not a number is refused, naming the field", () => {
    for (const bad of ["500", "ten"])
      assert.throws(
        () => compileSteeringConfig({}, { ...env, GRIDTUNE_LEADER_TTL_MS: bad }),
        (e: unknown) => e instanceof ValidationError && /leaderTtlMs/.test(e.message),
      );
  });
});
