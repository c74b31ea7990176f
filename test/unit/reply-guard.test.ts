// Steering answers only into the requester's own inbox (issue 14): an API or agent request whose
// reply subject is anything else (a JetStream API subject, a stream's subject, another identity's
// inbox) is neither answered nor acted on, and is logged as a security event. Real Api and
// AgentControl over in-memory stand-ins; the same attack on the real stack is in
// test/integration/security-reply.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { agentIdentity, isOwnInbox, userIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentRequest, ApiRequest } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { PROTOCOL_VERSION } from "../../protocol/version.ts";
import { AgentControl } from "../../steering/shell/channels/agentControl.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { apiKit, call, createTask, openPolicy } from "./fixtures/apiKit.ts";
import { Driver, spec, specInput } from "./fixtures/engineKit.ts";
import { dispatcherStub } from "./fixtures/agentKit.ts";

/** Reply subjects a hostile requester sets: each would be a publish by steering. */
const HOSTILE = [
  "$JS.API.STREAM.PURGE.GTLOG",
  "$JS.API.STREAM.DELETE.JOBS",
  "gt.log.1",
  "gt.jobs.s",
  "gt.events.bob.1",
  "gt.ctl.s.a",
  "_INBOX.user.bob.x",
  "_INBOX.steering.x",
  "_INBOX.user.alice", // the prefix itself, not below it
  "_INBOX.user.alice.>",
  "_INBOX.user.alicex.y",
  undefined, // no reply at all: nothing to answer, so nothing is done
];

function capture() {
  const lines: string[] = [];
  return { lines, logger: createLogger("steering", { level: "warn", sink: (l) => lines.push(l) }) };
}

/** A request message with the given reply subject; collects what steering would publish. */
function request(subject: string, reply: string | undefined, body: unknown) {
  const sent: string[] = [];
  const msg = {
    subject,
    reply,
    json: () => JSON.parse(JSON.stringify(body)) as unknown,
    respond: (data: string) => {
      sent.push(data);
      return true;
    },
  } as unknown as Msg;
  return { msg, sent };
}

void describe("replies only into the requester's inbox", () => {
  void it("isOwnInbox: below the identity's own prefix, no wildcards or empty tokens", () => {
    const alice = userIdentity("alice");
    assert.ok(isOwnInbox(alice, "_INBOX.user.alice.Z3kq.1"));
    for (const r of HOSTILE) assert.equal(isOwnInbox(alice, r), false, String(r));
    assert.equal(isOwnInbox(alice, "_INBOX.user.alice..x"), false);
    assert.equal(isOwnInbox(alice, "_INBOX.user.alice.*"), false);
    const a = agentIdentity("s", "a");
    assert.ok(isOwnInbox(a, "_INBOX.site.s.a.nuid.3"));
    assert.equal(isOwnInbox(a, "_INBOX.site.s.b.nuid"), false, "another agent of the same site");
    assert.equal(isOwnInbox(a, "_INBOX.user.a.x"), false);
  });

  void it("api: every verb with a hostile reply is not answered, changes nothing and is logged", async () => {
    const { lines, logger } = capture();
    const kit = apiKit({ logger });
    const e = createTask(kit, "1", "alice");
    const stored = kit.log.stored.length;
    const bodies: ApiRequest[] = [
      { verb: "submit", spec: specInput() as never },
      { verb: "list" },
      { verb: "show", taskId: "1" },
      { verb: "download", taskId: "1", kinds: ["metrics"] },
      { verb: "upload", size: 10 },
      { verb: "retry", taskId: "1", failedOnly: false },
      { verb: "pause", taskId: "1" },
      { verb: "resume", taskId: "1" },
      { verb: "kill", taskId: "1" },
    ] as ApiRequest[];
    let sent = 0;
    for (const body of bodies) {
      for (const reply of HOSTILE) {
        const r = request(subjects.api("alice", body.verb), reply, body);
        await kit.api.handle(r.msg);
        assert.deepEqual(r.sent, [], `${body.verb} answered on ${String(reply)}`);
        sent++;
      }
    }
    assert.equal(kit.log.stored.length, stored, "no event was logged: nothing was acted on");
    assert.equal(kit.state.engines.size, 1, "no task was submitted");
    assert.equal(e.state, "running", "the task was neither paused nor killed");
    const events = lines.filter((l) => l.includes("security: request dropped"));
    assert.equal(events.length, sent, "one security event per dropped request");
    assert.ok(events.every((l) => l.includes("identity=user:alice") && / warn /.test(l)));
    assert.ok(
      events.some(
        (l) => l.includes("subject=gt.api.alice.kill") && l.includes("reply=$JS.API.STREAM.PURGE.GTLOG"),
      ),
    );
    // the requester's own inbox is answered as before
    const ok = await call(kit, "alice", { verb: "list" });
    assert.ok(ok.ok);
  });

  void it("agent control: register, heartbeat, claim, presign and bye with a hostile reply do nothing", async () => {
    const { lines, logger } = capture();
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 }), "1");
    d.sampleAll();
    const job = d.dispatch("s")!;
    const stored: LogEvent[] = [...d.log];
    const state = new SteeringState();
    for (const ev of stored) state.apply(ev);
    const log = {
      append(ev: LogEvent): Promise<void> {
        stored.push(ev);
        return Promise.resolve();
      },
    };
    const c = new Committer(state, log, { publish: () => undefined }, logger, (id) =>
      Promise.resolve(stored.filter((ev) => ev.taskId === id)),
    );
    const registry = new AgentRegistry(30_000);
    const jsmCalls: string[] = [];
    const jsm = {
      consumers: {
        info: (stream: string, name: string) => {
          jsmCalls.push(`info ${stream}/${name}`);
          return Promise.resolve({});
        },
      },
    } as unknown as JetStreamManager;
    const control = new AgentControl(c, {} as Storage, dispatcherStub(c, registry).dispatcher, jsm, logger, {
      refresh: () => Promise.resolve(openPolicy("s", ["docker", "process"])),
    });
    const requests: AgentRequest[] = [
      { type: "register", v: PROTOCOL_VERSION, slots: 2, gpus: [], runtime: "process", software: "t" },
      { type: "heartbeat", running: [job], freeSlots: 2, draining: false },
      { type: "claim", ...job },
      { type: "presign", ...job, artifacts: [{ kind: "metrics", size: 10 }] },
      { type: "bye", running: [job] },
    ];
    const before = stored.length;
    let sent = 0;
    for (const req of requests) {
      for (const reply of [...HOSTILE, "_INBOX.site.s.b.x", "_INBOX.site.t.a.x"]) {
        const r = request(subjects.heartbeat("s", "a"), reply, req);
        await control.handle(r.msg);
        assert.deepEqual(r.sent, [], `${req.type} answered on ${String(reply)}`);
        sent++;
      }
    }
    assert.equal(stored.length, before, "no job-claimed or job-lost was logged");
    assert.equal(registry.get("s", "a"), undefined, "the agent was not registered");
    assert.deepEqual(jsmCalls, [], "no site consumer was looked up or made");
    const events = lines.filter((l) => l.includes("security: request dropped"));
    assert.equal(events.length, sent);
    assert.ok(events.every((l) => l.includes("identity=agent:s:a") && l.includes("subject=gt.hb.s.a")));

    // the same requests from the agent's own inbox are acted on (the checks above can fail)
    const own = request(subjects.heartbeat("s", "a"), "_INBOX.site.s.a.n.1", requests[0]);
    await control.handle(own.msg);
    assert.equal(own.sent.length, 1);
    assert.ok(registry.get("s", "a"));
    const claim = request(subjects.heartbeat("s", "a"), "_INBOX.site.s.a.n.2", requests[2]);
    await control.handle(claim.msg);
    assert.match(claim.sent[0] ?? "", /"claimed"/);
    assert.ok(stored.slice(before).some((ev) => ev.type === "job-claimed"));
  });
});
