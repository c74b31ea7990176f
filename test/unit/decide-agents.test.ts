// The agent control rules as pure decisions (core/decide/agents.ts), on literal times: no NATS, no
// S3, no sleeps. Each command of gt.hb.<site>.<agent> is decided into its events, its effects
// (registry changes, the site's JOBS consumer, log lines, pumps) and its reply.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRequest } from "../../protocol/messages.ts";
import { PROTOCOL_VERSION } from "../../protocol/version.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import {
  MAX_UPLOAD_BYTES,
  type AgentByeCommand,
  type AgentClaimCommand,
  type AgentHeartbeatCommand,
  type AgentPresignCommand,
  type AgentRegisterCommand,
  type Refusal,
} from "../../steering/core/decide/agents.ts";
import { decide } from "../../steering/core/decider.ts";
import type { Effect } from "../../steering/core/effects.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { World } from "../../steering/core/world.ts";
import { AGENT_RULES } from "./fixtures/agentKit.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const NOW = 5_000_000;
type Ref = { jobId: string; attempt: number };

/**
 * Task "1" with two points: `running` claimed by s/a (with a checkpoint), `dispatched` to site s,
 * waiting for a claim. Agent s/a is registered. `killed`: the task was killed since.
 */
function world(opts: { killed?: boolean; diverged?: boolean; registered?: boolean } = {}) {
  const d = new Driver(
    spec({
      maxPoints: 2,
      nPointsPerIteration: 2,
      nParallelEvaluation: 2,
      sandboxKey: "tasks/1/sandbox.tgz",
      trainingDS: "mnist",
    }),
    "1",
  );
  d.sampleAll();
  const running = d.dispatch("s")!;
  d.claim(running, "s", "a");
  const key = "tasks/1/points/0/ckpt.tgz";
  d.apply({
    type: "job-checkpoint",
    taskId: "1",
    at: d.tick(),
    ...running,
    artifact: { kind: "checkpoint", key, size: 10, etag: "e" },
    resource: 1,
  });
  const dispatched = d.dispatch("s")!;
  if (opts.killed) d.state("killed");
  const tasks = new SteeringState();
  for (const ev of d.log) tasks.apply(ev);
  const agents = new AgentRegistry(AGENT_RULES.leaseMs);
  if (opts.registered !== false)
    agents.register({ site: "s", agent: "a", slots: 2, gpus: [], runtime: "docker" }, 1_000);
  const w: World = {
    tasks,
    agents,
    diverged: new Set(opts.diverged ? ["1"] : []),
    rules: AGENT_RULES,
    leases: { baseline: 0, paused: false },
  };
  return { w, d, running, dispatched, tasks };
}

// The commands gt.hb.<site>.<agent> becomes, from agent s/a unless said otherwise.
const claim = (ref: Ref, agent = "a", site = "s"): AgentClaimCommand => ({
  type: "agent-claim",
  site,
  agent,
  request: { type: "claim", ...ref },
});
const heartbeat = (running: Ref[], freeSlots = 0, agent = "a"): AgentHeartbeatCommand => ({
  type: "agent-heartbeat",
  site: "s",
  agent,
  request: { type: "heartbeat", running, freeSlots, draining: false },
});
type Artifacts = Extract<AgentRequest, { type: "presign" }>["artifacts"];
const presign = (ref: Ref, artifacts: Artifacts, agent = "a"): AgentPresignCommand => ({
  type: "agent-presign",
  site: "s",
  agent,
  request: { type: "presign", ...ref, artifacts },
});
const bye = (running: Ref[], agent = "a"): AgentByeCommand => ({
  type: "agent-bye",
  site: "s",
  agent,
  request: { type: "bye", running },
});
const register = (
  over: Partial<AgentRegisterCommand["request"]> = {},
  siteRuntimes: AgentRegisterCommand["siteRuntimes"] = ["docker", "process"],
): AgentRegisterCommand => ({
  type: "agent-register",
  site: "s",
  agent: "a",
  request: {
    type: "register",
    v: PROTOCOL_VERSION,
    slots: 4,
    gpus: ["0"],
    runtime: "process",
    software: "t",
    ...over,
  },
  siteRuntimes,
});

const types = (effects: readonly Effect[]) => effects.map((e) => e.type);
const codeOf = (reply: { type: string }) => ("error" in reply ? (reply as Refusal).error.code : reply.type);
const messageOf = (reply: { type: string }) => ("error" in reply ? (reply as Refusal).error.message : "");

void describe("decide: agent-claim", () => {
  void it("grants a dispatched attempt to an agent of its site: one job-claimed, the lease, what to presign", () => {
    const { w, dispatched, running } = world();
    const d = decide(w, claim(dispatched, "b"), NOW);
    assert.deepEqual(d.events, [
      { type: "job-claimed", taskId: "1", at: NOW, ...dispatched, site: "s", agent: "b" },
    ]);
    assert.deepEqual(d.effects, [{ type: "renew-lease", ...dispatched, at: NOW }]);
    assert.deepEqual(d.reply, {
      type: "grant",
      taskId: "1",
      pointId: 1,
      sandboxKey: "tasks/1/sandbox.tgz",
      checkpointKey: null,
      trainingDS: "mnist",
    });
    // the running point's grant names its checkpoint (a claim after a restart resumes from it)
    const again = decide(w, claim(running), NOW);
    assert.equal(
      again.reply.type === "grant" ? again.reply.checkpointKey : null,
      "tasks/1/points/0/ckpt.tgz",
    );
  });

  void it("grants a running attempt to its own agent again without logging it twice", () => {
    const { w, running } = world();
    const d = decide(w, claim(running), NOW);
    assert.deepEqual(d.events, []);
    assert.deepEqual(d.effects, [{ type: "renew-lease", ...running, at: NOW }]);
    assert.equal(d.reply.type, "grant");
  });

  void it("refuses another agent's running attempt, a superseded or unknown one, and a killed task's", () => {
    const { w, running, dispatched } = world();
    const cases: Array<[Ref, string, RegExp]> = [
      [running, "b", /is run by agent a, not b/],
      [{ jobId: running.jobId, attempt: 2 }, "a", /superseded/],
      [{ jobId: "t9-p0-j1", attempt: 1 }, "a", /unknown job t9-p0-j1/],
    ];
    for (const [ref, agent, why] of cases) {
      const d = decide(w, claim(ref, agent), NOW);
      assert.equal(codeOf(d.reply), "STALE_ATTEMPT");
      assert.match(messageOf(d.reply), why);
      assert.deepEqual(d.events, [], "nothing logged");
      assert.deepEqual(types(d.effects), ["log"], "no lease renewed, the refusal logged");
    }
    const other = decide(w, claim(dispatched, "b", "t"), NOW);
    assert.match(messageOf(other.reply), /leased to site s, not t/);
    const killed = world({ killed: true });
    const k = decide(killed.w, claim(killed.running), NOW);
    assert.match(messageOf(k.reply), /task 1 was killed/);
    assert.deepEqual(k.events, []);
  });

  void it("asks a claim of a task waiting for its rebuild to come again (judged on the log only)", () => {
    const { w, dispatched } = world({ diverged: true });
    const d = decide(w, claim(dispatched), NOW);
    assert.deepEqual(d.reply, {
      type: "error",
      error: {
        code: "UNAVAILABLE",
        message: "task 1 is being rebuilt from its log; try again",
        retryable: true,
      },
    });
    assert.deepEqual([d.events, d.effects], [[], []]);
  });
});

void describe("decide: agent-heartbeat", () => {
  void it("renews the attempts the log says run on the agent and names the others stale", () => {
    const { w, running, dispatched } = world();
    const superseded = { jobId: running.jobId, attempt: 9 };
    const d = decide(w, heartbeat([running, superseded, dispatched], 1), NOW);
    // the dispatched attempt is leased to the site: an agent of it may run it (its claim is on the way)
    assert.deepEqual(d.reply, { type: "ack", stale: [superseded] });
    assert.deepEqual(d.effects, [
      { type: "renew-lease", ...running, at: NOW },
      { type: "renew-lease", ...dispatched, at: NOW },
      { type: "agent-seen", site: "s", agent: "a", freeSlots: 1, draining: false, at: NOW },
      { type: "kick" },
    ]);
    assert.deepEqual(d.events, []);
    // no free slot: no pump
    assert.deepEqual(types(decide(w, heartbeat([running]), NOW).effects), ["renew-lease", "agent-seen"]);
  });

  void it("another agent's heartbeat neither renews the attempt nor keeps it: it is named stale to that agent", () => {
    const { w, running } = world();
    w.agents.register({ site: "s", agent: "b", slots: 1, gpus: [], runtime: "docker" }, 1_000);
    const d = decide(w, heartbeat([running], 0, "b"), NOW);
    assert.deepEqual(d.reply, { type: "ack", stale: [running] });
    assert.deepEqual(types(d.effects), ["agent-seen"]);
  });

  void it("names a killed task's attempts stale on every heartbeat while still renewing them", () => {
    const { w, running } = world({ killed: true });
    for (const t of [NOW, NOW + 5_000]) {
      const d = decide(w, heartbeat([running]), t);
      assert.deepEqual(d.reply, { type: "ack", stale: [running] });
      assert.deepEqual(d.effects[0], { type: "renew-lease", ...running, at: t });
    }
  });

  void it("a task waiting for its rebuild: its known attempts renewed, none named stale", () => {
    const { w, running } = world({ diverged: true });
    const later = { jobId: running.jobId, attempt: 2 }; // the log cannot hold an attempt the engine lacks
    const d = decide(w, heartbeat([running, later]), NOW);
    assert.deepEqual(d.reply, { type: "ack", stale: [] });
    assert.deepEqual(d.effects[0], { type: "renew-lease", ...running, at: NOW });
    assert.deepEqual(types(d.effects), ["renew-lease", "agent-seen"]);
  });

  void it("an agent not registered (steering restarted) is told to register, its leases still renewed", () => {
    const { w, running } = world({ registered: false });
    const d = decide(w, heartbeat([running], 2), NOW);
    assert.equal(codeOf(d.reply), "UNAUTHENTICATED");
    assert.match(messageOf(d.reply), /agent s\/a is not registered; register again/);
    assert.deepEqual(d.effects, [{ type: "renew-lease", ...running, at: NOW }], "no agent-seen, no pump");
  });
});

void describe("decide: agent-register", () => {
  void it("registers an agent of the current protocol whose runtime the site offers", () => {
    const { w } = world({ registered: false });
    const d = decide(w, register(), NOW);
    assert.deepEqual(d.reply, { type: "registered", leaseMs: 30_000, heartbeatMs: 5_000 });
    assert.deepEqual(d.events, []);
    // the site's consumer first: the pump the registration asks for has somewhere to send jobs
    assert.deepEqual(types(d.effects), ["ensure-site-consumer", "register-agent", "log", "kick"]);
    assert.deepEqual(d.effects[1], {
      type: "register-agent",
      site: "s",
      agent: "a",
      slots: 4,
      gpus: ["0"],
      runtime: "process",
      at: NOW,
    });
  });

  void it("refuses another protocol version, and changes nothing", () => {
    const { w } = world({ registered: false });
    const d = decide(w, register({ v: PROTOCOL_VERSION + 1 }), NOW);
    assert.equal(codeOf(d.reply), "PROTOCOL_MISMATCH");
    assert.match(
      messageOf(d.reply),
      new RegExp(`speaks protocol ${PROTOCOL_VERSION + 1}, steering speaks ${PROTOCOL_VERSION}`),
    );
    assert.deepEqual([d.events, d.effects], [[], []]);
  });

  void it("refuses a runtime the site does not offer, and the process runtime at a site without a policy", () => {
    const { w } = world({ registered: false });
    const d = decide(w, register({}, ["docker"]), NOW);
    assert.equal(codeOf(d.reply), "FORBIDDEN");
    assert.match(
      messageOf(d.reply),
      /does not offer \(runtimes: docker\); run the agent with --runtime docker/,
    );
    assert.deepEqual(d.effects, [], "not registered, no consumer made");

    const none = decide(w, register({}, null), NOW);
    assert.equal(codeOf(none.reply), "FORBIDDEN");
    assert.match(messageOf(none.reply), /site s has no policy/);
    assert.deepEqual(types(none.effects), ["log"], "only the warning");

    // a docker agent at a site without a policy registers (with the warning): no work goes there
    const ok = decide(w, register({ runtime: "docker" }, null), NOW);
    assert.equal(ok.reply.type, "registered");
    assert.deepEqual(types(ok.effects), ["log", "ensure-site-consumer", "register-agent", "log", "kick"]);
  });
});

void describe("decide: agent-presign", () => {
  void it("grants uploads of a running attempt up to its limits: the shell names the keys", () => {
    const { w, running } = world();
    const max = 100 * 1024 * 1024; // checkPointLimitMB defaults to 100
    const artifacts: Artifacts = [
      { kind: "checkpoint", size: max },
      { kind: "log", size: MAX_UPLOAD_BYTES },
    ];
    const d = decide(w, presign(running, artifacts), NOW);
    assert.deepEqual(d.reply, {
      type: "uploads",
      taskId: "1",
      pointId: 0,
      ...running,
      artifacts: [
        { kind: "checkpoint", size: max },
        { kind: "log", size: MAX_UPLOAD_BYTES },
      ],
    });
    assert.deepEqual([d.events, d.effects], [[], []]);
  });

  void it("refuses an oversize upload before anything is presigned", () => {
    const { w, running } = world();
    const artifacts: Artifacts = [
      { kind: "log", size: 1 },
      { kind: "checkpoint", size: 100 * 1024 * 1024 + 1 },
    ];
    const ckpt = decide(w, presign(running, artifacts), NOW);
    assert.equal(codeOf(ckpt.reply), "TOO_LARGE");
    assert.match(messageOf(ckpt.reply), /checkpoint of 104857601 bytes exceeds the limit of 104857600/);
    const log = decide(w, presign(running, [{ kind: "metrics", size: MAX_UPLOAD_BYTES + 1 }]), NOW);
    assert.equal(codeOf(log.reply), "TOO_LARGE");
  });

  void it("refuses an attempt that is not running on this agent", () => {
    const { w, running, dispatched } = world();
    for (const [ref, agent] of [
      [running, "b"],
      [dispatched, "a"],
      [{ jobId: "t9-p0-j1", attempt: 1 }, "a"],
    ] as const) {
      const d = decide(w, presign(ref, [{ kind: "log", size: 1 }], agent), NOW);
      assert.equal(codeOf(d.reply), "STALE_ATTEMPT", `${ref.jobId} by ${agent}`);
    }
  });
});

void describe("decide: agent-bye", () => {
  void it("hands back the attempts the log says the agent runs; the agent leaves", () => {
    const { w, running, tasks } = world();
    const d = decide(w, bye([running, { jobId: running.jobId, attempt: 9 }]), NOW);
    assert.deepEqual(d.events, [
      { type: "job-lost", taskId: "1", at: NOW, ...running, reason: "handed back by agent s/a" },
    ]);
    assert.deepEqual(types(d.effects), ["forget-lease", "remove-agent", "log", "kick"]);
    assert.deepEqual(d.reply, { type: "ack", stale: [] });
    for (const ev of d.events) tasks.apply(ev);
    assert.equal(tasks.engines.get("1")!.job(running.jobId)!.attempt, 2, "a retry follows at once");
  });

  void it("another agent's bye hands back none of this agent's attempts", () => {
    const { w, running } = world();
    const d = decide(w, bye([running], "b"), NOW);
    assert.deepEqual(d.events, []);
    assert.deepEqual(d.effects[0], { type: "remove-agent", site: "s", agent: "b" });
  });

  void it("an attempt named many times is lost once (one message cannot flood the log)", () => {
    const { w, running } = world();
    const d = decide(w, bye(Array.from({ length: 1000 }, () => running)), NOW);
    assert.equal(d.events.length, 1);
    assert.equal(types(d.effects).filter((t) => t === "forget-lease").length, 1);
  });

  void it("an attempt of a task waiting for its rebuild is left to its lease", () => {
    const { w, running } = world({ diverged: true });
    const d = decide(w, bye([running]), NOW);
    assert.deepEqual(d.events, []);
    assert.deepEqual(types(d.effects), ["log", "remove-agent", "log", "kick"]);
  });
});
