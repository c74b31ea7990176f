// Least-privilege NATS against a real nats-server started from the generated configuration:
// each role's allowed path works, and each attack of issue 8 is refused (docs/security.md).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { jetstream, jetstreamManager, AckPolicy, RetentionPolicy } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  AuthorizationError,
  PermissionViolationError,
  connect,
  type NatsConnection,
} from "@nats-io/transport-node";
import { UnavailableError } from "../../protocol/errors.ts";
import { type Identity, connectionName } from "../../protocol/identity.ts";
import { connectNats, type NatsLogger } from "../../protocol/natsConnect.ts";
import { STREAM_JOBS, STREAM_RESULTS, KV_STATE, subjects, parseApiSubject } from "../../protocol/subjects.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { startNatsServer, type NatsServerHandle } from "../../steering/security/natsServer.ts";
import { ensurePki, issueClientCert } from "../../steering/security/pki.ts";

const A1: Identity = { role: "agent", site: "alpha", agent: "a1" };
const A2: Identity = { role: "agent", site: "alpha", agent: "a2" };
const B1: Identity = { role: "agent", site: "beta", agent: "b1" };
const ALICE: Identity = { role: "user", user: "alice" };
const BOB: Identity = { role: "user", user: "bob" };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Walks an error's cause chain for the PermissionViolationError and checks its subject. */
function assertViolation(err: unknown, subject: string | RegExp): true {
  let e: unknown = err;
  while (e instanceof Error && !(e instanceof PermissionViolationError)) e = e.cause;
  assert.ok(e instanceof PermissionViolationError, `expected a permission violation, got ${String(err)}`);
  if (typeof subject === "string") assert.equal(e.subject, subject);
  else assert.match(e.subject, subject);
  return true;
}
async function assertDenied(p: Promise<unknown>, subject: string | RegExp): Promise<void> {
  await assert.rejects(p, (err) => assertViolation(err, subject));
}
async function assertSubDenied(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  assertViolation(await timeout(sub.closed, 3000, `subscription to ${subject} refused`), subject);
}
/** Races `p` against a timer that is cleared afterwards (a pending timer would hold the test process). */
async function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("NATS security (real nats-server, TLS, nkeys)", () => {
  let dir: string;
  let store: IdentityStore;
  let srv: NatsServerHandle;
  let steering: NatsConnection;
  const conns: NatsConnection[] = [];
  const logs: { who: string; level: string; message: string }[] = [];

  const connectAs = async (identity: Identity, extra: Partial<Parameters<typeof connectNats>[0]> = {}) => {
    const logger: NatsLogger = (level, message) =>
      logs.push({ who: connectionName(identity), level, message });
    const nc = await connectNats({
      servers: srv.url,
      seedFile: store.seedFile(identity),
      caFile: srv.caFile,
      identity,
      logger,
      ...extra,
    });
    conns.push(nc);
    return nc;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-secnats-"));
    store = new IdentityStore(dir);
    for (const id of [A1, A2, B1, ALICE, BOB]) await store.ensure(id);
    srv = await startNatsServer({ dir, store });
    steering = await connectAs({ role: "steering" });
    const jsm = await jetstreamManager(steering);
    await jsm.streams.add({
      name: STREAM_JOBS,
      subjects: [subjects.jobsAll],
      retention: RetentionPolicy.Workqueue,
    });
    for (const site of ["alpha", "beta"]) {
      await jsm.consumers.add(STREAM_JOBS, {
        durable_name: site,
        filter_subject: subjects.jobs(site),
        ack_policy: AckPolicy.Explicit,
      });
    }
    await jsm.streams.add({ name: STREAM_RESULTS, subjects: [subjects.resultsAll] });
    const kv = await new Kvm(steering).create(KV_STATE);
    await kv.put("task.1", enc("secret state"));
    // Steering's API: the user comes from the subject, never from the payload.
    steering.subscribe(subjects.apiAll, {
      queue: "steering",
      callback: (_err, msg) => void msg.respond(enc(`hello ${parseApiSubject(msg.subject)?.user ?? "?"}`)),
    });
    steering.subscribe(subjects.heartbeatAll, {
      callback: (_e, msg) => void msg.respond(enc(`ok ${msg.subject}`)),
    });
  });

  after(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("agent: pull its site's job, working, nak, ack; result PubAck; heartbeat request; control", async () => {
    const jsS = jetstream(steering);
    await jsS.publish(subjects.jobs("alpha"), enc("job-1"));
    const nc = await connectAs(A1);
    const js = jetstream(nc, { checkAPI: false });
    const c = await js.consumers.get(STREAM_JOBS, "alpha");
    const m = await c.next({ expires: 2000 });
    assert.ok(m);
    assert.equal(dec(m.data), "job-1");
    m.working();
    m.nak();
    const again = await c.next({ expires: 2000 });
    assert.equal(again && dec(again.data), "job-1");
    assert.equal(await again!.ackAck(), true);
    const pa = await js.publish(subjects.results("alpha", "a1", "job-1"), enc('{"loss":1}'));
    assert.equal(pa.stream, STREAM_RESULTS);
    const hb = await nc.request(subjects.heartbeat("alpha", "a1"), enc("hb"), { timeout: 2000 });
    assert.equal(dec(hb.data), "ok gt.hb.alpha.a1");
    const ctl = nc.subscribe("gt.ctl.alpha.>", { max: 1 });
    await nc.flush();
    steering.publish(subjects.control("alpha", "a1"), enc("kill"));
    for await (const msg of ctl) assert.equal(dec(msg.data), "kill");
    const info = await (await jetstreamManager(steering)).consumers.info(STREAM_JOBS, "alpha");
    assert.equal(info.num_pending + info.num_ack_pending, 0);
  });

  test("user: API request answered with the subject's user; own events", async () => {
    const nc = await connectAs(ALICE);
    const r = await nc.request(subjects.api("alice", "list"), enc('{"user":"bob"}'), { timeout: 2000 });
    assert.equal(dec(r.data), "hello alice");
    const ev = nc.subscribe("gt.events.alice.>", { max: 1 });
    await nc.flush();
    steering.publish(subjects.events("alice", "7"), enc("done"));
    for await (const msg of ev) assert.equal(msg.subject, "gt.events.alice.7");
  });

  test("agent of site alpha cannot pull, see or ack site beta's jobs", async () => {
    await jetstream(steering).publish(subjects.jobs("beta"), enc("beta-job"));
    const nc = await connectAs(A1);
    const js = jetstream(nc, { checkAPI: false });
    await assertDenied(js.consumers.get(STREAM_JOBS, "beta"), "$JS.API.CONSUMER.INFO.JOBS.beta");
    await assertDenied(
      nc.request("$JS.API.CONSUMER.MSG.NEXT.JOBS.beta", enc('{"batch":1}'), { timeout: 2000 }),
      "$JS.API.CONSUMER.MSG.NEXT.JOBS.beta",
    );
    await assertSubDenied(nc, "gt.jobs.>");
    await assertSubDenied(nc, subjects.jobs("beta"));

    // Beta's agent holds the job; alpha forges an ack on its real ack subject: refused, logged.
    const b1 = await connectAs(B1);
    const m = await (
      await jetstream(b1, { checkAPI: false }).consumers.get(STREAM_JOBS, "beta")
    ).next({
      expires: 2000,
    });
    assert.ok(m);
    // The ack subject is the message's reply subject (JsMsgImpl.reply; not on the JsMsg interface).
    const ackSubject = (m as unknown as { reply: string }).reply;
    assert.ok(ackSubject.startsWith("$JS.ACK.JOBS.beta."), ackSubject);
    const before = logs.length;
    nc.publish(ackSubject, enc("+ACK"));
    await nc.flush();
    await timeout(
      (async () => {
        while (!logs.slice(before).some((l) => l.who === "agent:alpha:a1" && l.message.includes(ackSubject)))
          await new Promise((r) => setTimeout(r, 20));
      })(),
      3000,
      "violation logged",
    );
    const jsm = await jetstreamManager(steering);
    assert.equal(
      (await jsm.consumers.info(STREAM_JOBS, "beta")).num_ack_pending,
      1,
      "the forged ack was ignored",
    );
    assert.equal(await m.ackAck(), true);
    assert.ok(!nc.isClosed(), "a denied publish keeps the connection");
  });

  test("agent cannot publish a result as another site or agent", async () => {
    const js = jetstream(await connectAs(A1), { checkAPI: false });
    await assertDenied(js.publish(subjects.results("beta", "b1", "x"), enc("{}")), "gt.results.beta.b1.x");
    await assertDenied(js.publish(subjects.results("alpha", "a2", "x"), enc("{}")), "gt.results.alpha.a2.x");
    await assertDenied(js.publish(subjects.heartbeat("alpha", "a2"), enc("hb")), "gt.hb.alpha.a2");
  });

  test("agent cannot manage JetStream or read steering's KV state", async () => {
    const nc = await connectAs(A1);
    await assertDenied(jetstreamManager(nc), "$JS.API.INFO");
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    await assertDenied(jsm.streams.add({ name: "EVIL", subjects: ["evil.>"] }), "$JS.API.STREAM.CREATE.EVIL");
    await assertDenied(jsm.streams.delete(STREAM_JOBS), "$JS.API.STREAM.DELETE.JOBS");
    await assertDenied(jsm.consumers.delete(STREAM_JOBS, "alpha"), "$JS.API.CONSUMER.DELETE.JOBS.alpha");
    await assertDenied(
      jsm.consumers.add(STREAM_JOBS, { durable_name: "mine", filter_subject: "gt.jobs.beta" }),
      /^\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\.JOBS\.mine/,
    );
    await assertDenied(
      nc.request(`$JS.API.STREAM.MSG.GET.KV_${KV_STATE}`, enc('{"last_by_subj":"$KV.gtstate.task.1"}'), {
        timeout: 2000,
      }),
      `$JS.API.STREAM.MSG.GET.KV_${KV_STATE}`,
    );
    await assertDenied(
      nc.request(`$JS.API.DIRECT.GET.KV_${KV_STATE}.$KV.${KV_STATE}.task.1`, undefined, { timeout: 2000 }),
      `$JS.API.DIRECT.GET.KV_${KV_STATE}.$KV.${KV_STATE}.task.1`,
    );
    await assertSubDenied(nc, `$KV.${KV_STATE}.>`);
    await assertSubDenied(nc, "_INBOX.site.alpha.a2.>");
    await assertSubDenied(nc, "_INBOX.>");
    await assertSubDenied(nc, "gt.results.>");
    // Nothing changed on the server.
    const names: string[] = [];
    for await (const n of (await jetstreamManager(steering)).streams.names()) names.push(n);
    assert.deepEqual(names.sort(), [STREAM_JOBS, `KV_${KV_STATE}`, STREAM_RESULTS].sort());
  });

  test("user cannot use another user's API, events or inbox", async () => {
    const nc = await connectAs(ALICE);
    await assertDenied(
      nc.request(subjects.api("bob", "list"), enc("{}"), { timeout: 2000 }),
      "gt.api.bob.list",
    );
    await assertSubDenied(nc, "gt.events.bob.>");
    await assertSubDenied(nc, "gt.events.>");
    await assertSubDenied(nc, "_INBOX.user.bob.>");
    await assertDenied(
      jetstream(nc, { checkAPI: false }).publish(subjects.jobs("alpha"), enc("x")),
      "gt.jobs.alpha",
    );
  });

  test("anonymous and unknown-nkey connections are refused", async () => {
    await assert.rejects(
      connect({ servers: srv.url, tls: { caFile: srv.caFile }, timeout: 3000 }),
      AuthorizationError,
    );
    const seedFile = join(dir, "stranger.nk");
    await writeFile(seedFile, createUser().getSeed(), { mode: 0o600 });
    await assert.rejects(
      connectNats({ servers: srv.url, seedFile, caFile: srv.caFile, identity: A1, logger: () => {} }),
      (err) =>
        err instanceof UnavailableError &&
        /Authorization Violation/.test(err.message) &&
        /unknown or was removed/.test(err.message),
    );
  });

  test("onboarding and removal take effect on reload: removed agent is cut off and cannot reconnect", async () => {
    const newcomer: Identity = { role: "agent", site: "gamma", agent: "g1" };
    await store.ensure(newcomer);
    await srv.reload();
    const g1 = await connectAs(newcomer, { reconnectTimeWaitMs: 100 });
    await g1.flush();
    // The site keeps its copy of the seed after the admin removes the identity.
    const kept = join(dir, "kept-g1.nk");
    await copyFile(store.seedFile(newcomer), kept);
    await store.removeSite("gamma");
    await srv.reload();
    const closedWith = await timeout(g1.closed(), 10_000, "removed agent's connection closed");
    assert.ok(closedWith instanceof AuthorizationError, `closed with ${String(closedWith)}`);
    await assert.rejects(
      connectNats({
        servers: srv.url,
        seedFile: kept,
        caFile: srv.caFile,
        identity: newcomer,
        logger: () => {},
      }),
      (err) => err instanceof UnavailableError && /unknown or was removed/.test(err.message),
    );
  });

  test("TLS: a client without the project CA, or with another CA, fails with a clear error", async () => {
    await assert.rejects(
      connectNats({ servers: srv.url, seedFile: store.seedFile(A1), identity: A1, logger: () => {} }),
      (err) =>
        err instanceof UnavailableError &&
        /TLS verification/.test(err.message) &&
        /no CA file/.test(err.message),
    );
    const other = await ensurePki(join(dir, "other-pki"));
    await assert.rejects(
      connectNats({ servers: srv.url, seedFile: store.seedFile(A1), caFile: other.caFile, identity: A1 }),
      (err) => err instanceof UnavailableError && err.message.includes(other.caFile),
    );
  });
});

describe("mutual TLS switch (verify: true)", () => {
  let dir: string;
  let store: IdentityStore;
  let srv: NatsServerHandle;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-secmtls-"));
    store = new IdentityStore(dir);
    await store.ensure(A1);
    srv = await startNatsServer({ dir, store, tls: { verify: true } });
  });
  after(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a client without a certificate fails with the mTLS hint; with one it connects", async () => {
    const base = { servers: srv.url, seedFile: store.seedFile(A1), caFile: srv.caFile, identity: A1 };
    await assert.rejects(connectNats({ ...base, timeoutMs: 1500, logger: () => {} }), (err) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(err.message, /mutual TLS refused the client certificate/);
      assert.ok(err.message.includes(srv.url));
      return true;
    });
    const cert = await issueClientCert(join(dir, "pki"), A1);
    const nc = await connectNats({ ...base, certFile: cert.certFile, keyFile: cert.keyFile });
    await nc.flush();
    await nc.close();
  });

  test("a valid certificate is not enough without a known nkey", async () => {
    const cert = await issueClientCert(join(dir, "pki"), A2);
    await assert.rejects(
      connect({
        servers: srv.url,
        tls: { caFile: srv.caFile, certFile: cert.certFile, keyFile: cert.keyFile },
        timeout: 3000,
      }),
      AuthorizationError,
    );
  });

  test("seed files readable by others are refused before connecting, without printing the seed", async () => {
    const seedFile = store.seedFile(A1);
    await chmod(seedFile, 0o644);
    try {
      await assert.rejects(connectNats({ servers: srv.url, seedFile, identity: A1 }), (err) => {
        assert.match((err as Error).message, /chmod 600/);
        assert.doesNotMatch((err as Error).message, /\bSU[A-Z2-7]{56}\b/);
        return true;
      });
    } finally {
      await chmod(seedFile, 0o600);
    }
  });
});
