// Issue 14: steering is no confused deputy. NATS checks a publisher's permission on the subject it
// publishes to, never on the reply subject of its request, and steering's answer is a publish to
// that reply subject. On the real stack (nats-server with TLS and nkeys, s3rver, steering):
// (a) a plain user's API requests and an agent's control requests whose reply subjects name
//     JetStream's API, the streams' subjects, another user's events or inbox, or steering's own
//     inbox are not answered, not acted on and logged; the streams keep every message and a task
//     survives a steering restart;
// (b) the second layer alone: the identity that serves requests (steering-api) cannot publish
//     there even when it tries directly (a bypassed reply check), the server refuses it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { agentIdentity, steeringApiIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentReply, type AgentRequest } from "../../protocol/messages.ts";
import { type ApiRequest } from "../../protocol/api.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { STREAM_JOBS, STREAM_LOG, STREAM_RESULTS, subjects } from "../../protocol/subjects.ts";
import { PROTOCOL_VERSION } from "../../protocol/version.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { SteeringService } from "../../steering/shell/service.ts";
import { connectAsSteering, startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const STREAMS = [STREAM_LOG, STREAM_JOBS, STREAM_RESULTS];

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function counts(jsm: JetStreamManager): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of STREAMS) out[s] = (await jsm.streams.info(s)).state.messages;
  return out;
}

/** Counts that stay the same for `quietMs` (steering's own dispatching has settled). */
async function settledCounts(jsm: JetStreamManager, quietMs = 1500): Promise<Record<string, number>> {
  let last = await counts(jsm);
  for (;;) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await counts(jsm);
    if (JSON.stringify(now) === JSON.stringify(last)) return now;
    last = now;
  }
}

/** Everything published to the target subjects, seen with steering's own (all-seeing) identity. */
function watch(nc: NatsConnection, targets: string[]): { seen: string[]; subs: Subscription[] } {
  const seen: string[] = [];
  const subs = targets.map((t) =>
    nc.subscribe(t, {
      callback: (_err, m) => {
        seen.push(`${m.subject}: ${m.string().slice(0, 120)}`);
      },
    }),
  );
  return { seen, subs };
}

describe("steering answers only into the requester's inbox", { timeout: 240_000 }, () => {
  let stack: TestStack;
  const lines: string[] = [];
  const logger = createLogger("steering", { level: "warn", sink: (l) => lines.push(l) });
  let admin: NatsConnection;
  let jsm: JetStreamManager;
  let taskId: string;
  const conns: NatsConnection[] = [];

  before(async () => {
    // no agent processes: a stand-in agent registers by hand, so nothing runs and the stream
    // counts settle
    stack = await startTestStack({ agents: 0, logger });
    admin = await connectAsSteering(stack);
    jsm = await jetstreamManager(admin);
  });
  after(async () => {
    await Promise.allSettled([admin, ...conns].map((c) => c?.close()));
    await stack?.cleanup();
  });

  it("(a) hostile reply subjects on every API verb and agent request: no answer, no change, logged", async () => {
    const demo = await stack.connect("demo");
    await stack.connect("bob");
    taskId = await demo.submit(stepsTask({ maxPoints: 4 }));

    // a stand-in agent registers legitimately, so jobs are published to JOBS
    const spy = agentIdentity(stack.site, "spy");
    const created = await stack.store.ensure(spy);
    await stack.nats.reload();
    const agent = await connectNats({
      servers: stack.nats.url,
      seedFile: created.seedFile,
      caFile: stack.nats.caFile,
      identity: spy,
      logger: () => undefined,
    });
    conns.push(agent);
    const hb = subjects.heartbeat(stack.site, "spy");
    const register: AgentRequest = {
      type: "register",
      v: PROTOCOL_VERSION,
      slots: 2,
      gpus: [],
      runtime: "process",
      software: "test",
    };
    const registered = AgentReply.parse((await agent.request(hb, JSON.stringify(register))).json());
    assert.equal(registered.type, "registered");
    await eventually("jobs published", async () => (await counts(jsm))[STREAM_JOBS]! > 0);
    const before = await settledCounts(jsm);
    assert.ok(before[STREAM_LOG]! > 0 && before[STREAM_JOBS]! > 0, JSON.stringify(before));

    const hostile = [
      "$JS.API.STREAM.PURGE.GTLOG",
      "$JS.API.STREAM.DELETE.JOBS",
      "$JS.API.STREAM.PURGE.RESULTS",
      "gt.log.1",
      `gt.jobs.${stack.site}`,
      `gt.results.${stack.site}.spy.t${taskId}-p1-j1`,
      `gt.ctl.${stack.site}.spy`,
      "gt.events.bob.1",
      "_INBOX.user.bob.x",
      "_INBOX.steering.x",
    ];
    const { seen, subs } = watch(admin, [
      "$JS.API.STREAM.PURGE.>",
      "$JS.API.STREAM.DELETE.>",
      "gt.log.>",
      "gt.jobs.>",
      "gt.results.>",
      "gt.ctl.>",
      "gt.events.bob.>",
      "_INBOX.user.bob.>",
      "_INBOX.steering.x",
    ]);
    await admin.flush();

    const apiBodies: ApiRequest[] = [
      { verb: "submit", spec: stepsTask({ maxPoints: 1 }) as never },
      { verb: "list", from: 0 },
      { verb: "show", taskId, pointsFrom: 0, pointsLimit: 10 },
      { verb: "download", taskId, kinds: ["metrics"] },
      { verb: "upload", size: 10 },
      { verb: "retry", taskId, failedOnly: false },
      { verb: "pause", taskId },
      { verb: "resume", taskId },
      { verb: "kill", taskId },
      // phpo dataset: the same guard, before any of them is parsed
      { verb: "datasetList" },
      { verb: "datasetShow", name: "user.demo.x", from: 0 },
      { verb: "datasetGet", name: "user.demo.x", from: 0 },
      { verb: "datasetPut", name: "user.demo.x", path: "f", size: 1, sha256: "0".repeat(64) },
      {
        verb: "datasetParts",
        name: "user.demo.x",
        path: "f",
        uploadId: "u",
        size: 6 << 20,
        partSize: 5 << 20,
        partNumbers: [1],
      },
      { verb: "datasetCommit", name: "user.demo.x", path: "f", size: 1, sha256: "0".repeat(64) },
      { verb: "datasetRemove", name: "user.demo.x" },
    ];
    const job = { jobId: `t${taskId}-p1-j1`, attempt: 1 };
    const agentBodies: AgentRequest[] = [
      register,
      { type: "heartbeat", running: [job], freeSlots: 2, draining: false },
      { type: "claim", ...job },
      { type: "presign", ...job, artifacts: [{ kind: "metrics", size: 10 }] },
      { type: "bye", running: [job] },
    ];
    let sent = 0;
    for (const reply of hostile) {
      for (const body of apiBodies) {
        demo.nc.publish(subjects.api("demo", body.verb), JSON.stringify(body), { reply });
        sent++;
      }
      for (const body of agentBodies) {
        agent.publish(hb, JSON.stringify(body), { reply });
        sent++;
      }
    }
    await Promise.all([demo.nc.flush(), agent.flush()]);

    // requests from the requesters' own inboxes, queued behind the hostile ones, are answered:
    // steering has taken every hostile one by then; anything it had sent arrives within a moment
    await demo.call("list", {});
    const beat = { type: "heartbeat", running: [], freeSlots: 0, draining: false } satisfies AgentRequest;
    AgentReply.parse((await agent.request(hb, JSON.stringify(beat))).json());
    await new Promise((r) => setTimeout(r, 1000));
    await admin.flush();
    for (const s of subs) s.unsubscribe();
    assert.deepEqual(seen, [], "nothing was published to the reply subjects");
    assert.deepEqual(await counts(jsm), before, "every stream keeps its messages");

    const listed = await demo.call("list", {});
    assert.deepEqual(
      listed.tasks.map((t) => t.taskId),
      [taskId],
      "the hostile submit created nothing",
    );
    assert.equal(listed.tasks[0]!.state, "running", "the hostile pause/kill did nothing");

    const dropped = () => lines.filter((l) => l.includes("security: request dropped"));
    await eventually(`${sent} security events`, () => dropped().length >= sent);
    assert.equal(dropped().length, sent, "one security event per hostile request");
    for (const reply of hostile) {
      assert.ok(
        dropped().some(
          (l) =>
            l.includes("identity=user:demo") &&
            l.includes("subject=gt.api.demo.kill") &&
            l.includes(`reply=${reply}`),
        ),
        `no security event for kill with reply ${reply}`,
      );
      assert.ok(
        dropped().some(
          (l) =>
            l.includes(`identity=agent:${stack.site}:spy`) &&
            l.includes(`subject=${hb}`) &&
            l.includes(`reply=${reply}`),
        ),
        `no security event for an agent request with reply ${reply}`,
      );
    }

    // after a restart steering rebuilds every task from the event log: it was not purged
    const old = stack.steering as SteeringService;
    await old.close();
    const restarted = new SteeringService(compileSteeringConfig({}, stack.steeringEnv), logger);
    await restarted.start();
    stack.steering = restarted;
    const again = await demo.call("list", {});
    assert.deepEqual(
      again.tasks.map((t) => [t.taskId, t.state]),
      [[taskId, "running"]],
    );
    // normal requests and paging still work
    const shown = await demo.show(taskId);
    assert.equal(shown.taskId, taskId);
    const page = await demo.call("show", { taskId, pointsFrom: 0, pointsLimit: 1 });
    assert.ok(page.points.length <= 1);
  });

  it("(b) the request-serving identity cannot publish to JetStream or the streams itself", async () => {
    const violations: string[] = [];
    const api = await connectNats({
      servers: stack.nats.url,
      seedFile: stack.store.seedFile(steeringApiIdentity()),
      caFile: stack.nats.caFile,
      identity: steeringApiIdentity(),
      logger: (_level, message) => violations.push(message),
    });
    conns.push(api);
    const before = await settledCounts(jsm, 500);
    // a bypassed reply check: steering-api publishes a reply-like body straight to the targets
    const targets = [
      "$JS.API.STREAM.PURGE.GTLOG",
      "$JS.API.STREAM.DELETE.JOBS",
      "$JS.API.STREAM.PURGE.RESULTS",
      "gt.log.x",
      "gt.jobs.x",
      `gt.jobs.${stack.site}`,
      "gt.results.x.y.z",
      `gt.ctl.${stack.site}.spy`,
      "gt.events.demo.1",
      "_INBOX.steering.x",
    ];
    const { seen, subs } = watch(admin, targets);
    await admin.flush();
    for (const t of targets) api.publish(t, "{}");
    await api.flush();
    // the server drops each one and reports a violation
    await eventually("a violation per subject", () =>
      targets.every((t) => violations.some((v) => v.includes(`publish ${t} is not allowed`))),
    );
    // nor may it read the streams' subjects or other identities' inboxes
    for (const t of ["gt.log.>", "gt.results.>", "_INBOX.>"]) {
      const sub = api.subscribe(t);
      const closed = await Promise.race([
        sub.closed.then((e) => String(e)),
        new Promise<string>((r) => setTimeout(() => r("still open"), 5000)),
      ]);
      assert.match(closed, /Permissions Violation for Subscription/, t);
    }
    // what it is for still works: a reply into a user's inbox arrives
    const demo = await stack.connect("demo");
    const inbox = demo.nc.subscribe("_INBOX.user.demo.direct", { max: 1 });
    await demo.nc.flush();
    api.publish("_INBOX.user.demo.direct", "hello");
    for await (const m of inbox) assert.equal(m.string(), "hello");

    await admin.flush();
    await new Promise((r) => setTimeout(r, 300));
    for (const s of subs) s.unsubscribe();
    assert.deepEqual(seen, [], "the server delivered none of them");
    assert.deepEqual(await counts(jsm), before, "every stream keeps its messages");
  });
});
