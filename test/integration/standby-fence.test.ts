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
import type { NatsConnection } from "@nats-io/transport-node";
import { steeringIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { LEADER_KEY, STREAM_LOG } from "../../protocol/subjects.ts";
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
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gridtune-fence-"));
    const store = new IdentityStore(dir);
    const seed = (await store.ensure(steeringIdentity())).seedFile;
    nats = await startNatsServer({ dir, store, port: 0 });
    nc = await connectNats({
      servers: nats.url,
      seedFile: seed,
      caFile: nats.caFile,
      identity: steeringIdentity(),
      logger: () => undefined,
    });
  });
  after(async () => {
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
});
