// The fences of standby steering on a real nats-server 2.9 (no S3, no agents): the leader lease
// in KV (create only when absent, compare-and-set renewal, expiry by the bucket TTL seen by a
// polling standby) and the event log's expected last sequence, which refuses a deposed leader's
// append once the new leader has appended.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { PermissionViolationError, type NatsConnection } from "@nats-io/transport-node";
import { steeringIdentity, type Identity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { KV_LEADER, LEADER_KEY, STREAM_LOG } from "../../protocol/subjects.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { startNatsServer, type NatsServerHandle } from "../../steering/security/natsServer.ts";
import { systemClock } from "../../steering/shell/clock.ts";
import { EventLog } from "../../steering/shell/eventLog.ts";
import {
  isWrongLastSequence,
  LeaderElection,
  NotLeaderError,
  openLeaseBucket,
} from "../../steering/shell/leadership.ts";

const logger = createLogger("test", { level: "error" });
const event = (taskId: string, at: number): LogEvent =>
  ({ type: "task-state", taskId, at, state: "running" }) as never;

describe("standby fences on nats-server", { timeout: 60_000 }, () => {
  let dir: string;
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let store: IdentityStore;
  const others: NatsConnection[] = [];
  const connectAs = async (identity: Identity) => {
    const c = await connectNats({
      servers: nats.url,
      seedFile: (await store.ensure(identity)).seedFile,
      caFile: nats.caFile,
      identity,
      logger: () => undefined,
    });
    if (identity.role !== "steering") others.push(c);
    return c;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gridtune-fence-"));
    store = new IdentityStore(dir);
    await store.ensure({ role: "agent", site: "s", agent: "a" });
    await store.ensure({ role: "user", user: "mallory" });
    nats = await startNatsServer({ dir, store, port: 0 });
    nc = await connectAs(steeringIdentity());
  });
  after(async () => {
    await Promise.allSettled(others.map((c) => c.close()));
    await nc?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a deposed leader's append is refused by the log's expected last sequence", async () => {
    await EventLog.ensureStream(await jetstreamManager(nc), 1);
    const js = jetstream(nc);
    const lastSeq = async () => (await (await jetstreamManager(nc)).streams.info(STREAM_LOG)).state.last_seq;
    const old = new EventLog(js, logger);
    const told: NotLeaderError[] = [];
    old.fence(await lastSeq(), (e) => told.push(e));
    await old.append(event("t1", 1));
    await old.append(event("t2", 2));
    // the new leader replays and reads the stream's last sequence, then appends
    const next = new EventLog(js, logger);
    next.fence(await lastSeq(), () => assert.fail("the new leader is fenced"));
    await next.append(event("t1", 3));
    const before = await lastSeq();
    await assert.rejects(
      old.append(event("t1", 4)),
      (e) => e instanceof NotLeaderError && isWrongLastSequence(e.cause),
    );
    await assert.rejects(old.append(event("t3", 5)), NotLeaderError);
    assert.equal(told.length, 1);
    assert.equal(await lastSeq(), before, "the server stored nothing of the deposed leader");
    await next.append(event("t3", 6));
    assert.equal(await lastSeq(), before + 1);
  });

  it("a retried append (same msgID, same expected sequence) whose first try was stored is a duplicate, not a refusal", async () => {
    const js = jetstream(nc);
    const last = (await (await jetstreamManager(nc)).streams.info(STREAM_LOG)).state.last_seq;
    const body = JSON.stringify(event("t9", 9));
    const first = await js.publish("gt.log.t9", body, { msgID: "retry-1", expect: { lastSequence: last } });
    const again = await js.publish("gt.log.t9", body, { msgID: "retry-1", expect: { lastSequence: last } });
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq);
  });

  it("the lease: create only when absent, a polling standby takes it once the TTL expires it", async () => {
    const { kv, ttlMs } = await openLeaseBucket(nc, 1500, 1);
    assert.equal(ttlMs, 1500);
    const events: string[] = [];
    const handlers = (name: string) => ({
      elected: () => events.push(`${name} elected`),
      deposed: (r: string) => events.push(`${name} deposed: ${r}`),
      standingBy: (h: string) => events.push(`${name} standby for ${h}`),
    });
    const a = new LeaderElection(kv, "a", ttlMs, systemClock, logger, handlers("a"));
    await a.tick();
    assert.equal(a.holds(), true);
    await assert.rejects(kv.create(LEADER_KEY, "{}"), (e) => isWrongLastSequence(e));
    const b = new LeaderElection(kv, "b", ttlMs, systemClock, logger, handlers("b"));
    await b.tick();
    assert.deepEqual(events, ["a elected", "b standby for a"]);
    // a stops renewing (no timers were started: only tick() polls), so the key expires by age
    const deadline = Date.now() + 10_000;
    while (!b.holds() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      await b.tick();
    }
    assert.equal(b.holds(), true, "the standby took the expired lease");
    await a.tick();
    assert.match(events.at(-1)!, /^a deposed: /);
    await b.stop();
    assert.equal(await kv.get(LEADER_KEY).then((e) => e?.operation ?? null), "DEL", "released on stop");
    // a released lease (a delete marker, not an expired key) is taken at once
    const c = new LeaderElection(kv, "c", ttlMs, systemClock, logger, handlers("c"));
    await c.tick();
    assert.equal(c.holds(), true);
    await c.stop();
  });

  it("neither an agent nor a user can take, renew, release or purge the lease", async () => {
    const { kv, ttlMs } = await openLeaseBucket(nc, 5000, 1);
    const leader = new LeaderElection(kv, "steering-1", ttlMs, systemClock, logger, {
      elected: () => undefined,
      deposed: () => undefined,
      standingBy: () => undefined,
    });
    await leader.tick();
    const revision = (await kv.get(LEADER_KEY))!.revision;
    const denied = (e: unknown) => {
      let x: unknown = e;
      while (x instanceof Error && !(x instanceof PermissionViolationError)) x = x.cause;
      return x instanceof PermissionViolationError;
    };
    for (const who of [
      { role: "agent", site: "s", agent: "a" },
      { role: "user", user: "mallory" },
    ] as const) {
      const c = await connectAs(who);
      const body = JSON.stringify({ holder: "intruder" });
      // a KV put is a JetStream publish on the key's subject; purge and delete are API requests
      await assert.rejects(c.request(`$KV.${KV_LEADER}.${LEADER_KEY}`, body, { timeout: 2000 }), denied);
      await assert.rejects(
        c.request(`$JS.API.STREAM.PURGE.KV_${KV_LEADER}`, "{}", { timeout: 2000 }),
        denied,
      );
      await assert.rejects(
        c.request(`$JS.API.STREAM.DELETE.KV_${KV_LEADER}`, "{}", { timeout: 2000 }),
        denied,
      );
    }
    const after = await kv.get(LEADER_KEY);
    assert.equal(after?.revision, revision, "the lease is unchanged");
    assert.equal(leader.holds(), true);
    await leader.stop();
  });
});
