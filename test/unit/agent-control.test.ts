// The agent control channel's lease decisions (real AgentControl, Committer and AgentRegistry; the
// log, the dispatcher and S3 are in-memory stand-ins): a duplicate claim of an attempt is refused
// (a claim whose grant failed is not), a heartbeat never stops or lets lapse an attempt of a task
// that waits for its rebuild, names a killed task's attempts stale, and renews the leases the log
// knows even before the agent has registered again after a steering restart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { createLogger } from "../../protocol/log.ts";
import { AgentReply, type AgentRequest } from "../../protocol/messages.ts";
import { AgentControl } from "../../steering/shell/channels/agentControl.ts";
import { EMPTY_POLICY } from "../../steering/security/sitePolicy.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { EffectRunner } from "../../steering/shell/effects.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { AGENT_RULES, dispatcherStub, quietPorts } from "./fixtures/agentKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const logger = createLogger("test", { level: "error" });
type Ref = { jobId: string; attempt: number };

/**
 * Task "1" with two points: `running` claimed by s/a, `dispatched` waiting for a claim. `up`
 * switches the stand-in NATS: while false, appends and log reads fail.
 */
function setup(opts: { failClaim?: number; spec?: Partial<TaskSpecInput>; storage?: Partial<Storage> } = {}) {
  const d = new Driver(
    spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2, ...opts.spec }),
    "1",
  );
  d.sampleAll();
  const running = d.dispatch("s")!;
  d.claim(running, "s", "a");
  const dispatched = d.dispatch("s")!;
  const stored: LogEvent[] = [...d.log];
  const state = new SteeringState();
  for (const ev of stored) state.apply(ev);
  const nats = { up: true, claimsToFail: opts.failClaim ?? 0 };
  const log = {
    append(ev: LogEvent): Promise<void> {
      if (ev.type === "job-claimed" && nats.claimsToFail > 0) {
        nats.claimsToFail--;
        return Promise.reject(new Error("append timed out"));
      }
      if (!nats.up) return Promise.reject(new Error("disconnected"));
      stored.push(ev);
      return Promise.resolve();
    },
  };
  const c = new Committer(state, log, { publish: () => undefined }, logger, (id) =>
    nats.up
      ? Promise.resolve(stored.filter((e) => e.taskId === id))
      : Promise.reject(new Error("disconnected")),
  );
  const registry = new AgentRegistry(AGENT_RULES.leaseMs);
  const { dispatcher } = dispatcherStub(c, registry, () => Promise.resolve(["a.bin", "b.bin"]));
  const clock = new FakeClock();
  const control = () =>
    new AgentControl(
      c,
      (opts.storage ?? {}) as Storage,
      dispatcher,
      {} as JetStreamManager,
      logger,
      { refresh: () => Promise.resolve(EMPTY_POLICY) }, // registration is not exercised here
      clock,
    );
  const register = (agent = "a") =>
    registry.register({ site: "s", agent, slots: 2, gpus: [], runtime: "process" }, clock.now());
  return { d, c, state, stored, nats, registry, control, register, running, dispatched, clock };
}

/** One request on gt.hb.s.<agent>, as the server delivers it; resolves with the reply. */
function ask(ctl: AgentControl, req: AgentRequest, agent = "a"): Promise<AgentReply> {
  return new Promise((resolve, reject) => {
    const msg = {
      subject: `gt.hb.s.${agent}`,
      reply: `_INBOX.site.s.${agent}.x`,
      json: () => req,
      respond: (data: string) => {
        resolve(AgentReply.parse(JSON.parse(data)));
        return true;
      },
    };
    ctl.handle(msg as unknown as Msg).catch(reject);
  });
}

const claim = (ref: Ref): AgentRequest => ({ type: "claim", ...ref });
const heartbeat = (running: Ref[]): AgentRequest => ({
  type: "heartbeat",
  running,
  freeSlots: 0,
  draining: false,
});
const code = (r: AgentReply) => (r.type === "error" ? r.error.code : r.type);

void describe("agent control: claims", () => {
  void it("a repeated claim of an attempt by its own agent is granted again, logged once", async () => {
    // Idempotent, so a claim whose reply was lost (the agent's request timed out under load) or an
    // agent restarted with the job redelivered still runs the attempt. A second JOBS message for
    // an attempt the agent already runs or claims is the agent's to drop (agent-duplicate-jobs).
    const { control, register, dispatched, stored } = setup();
    register();
    const ctl = control();
    const replies = await Promise.all([ask(ctl, claim(dispatched)), ask(ctl, claim(dispatched))]);
    assert.deepEqual(replies.map(code), ["claimed", "claimed"]);
    assert.equal(code(await ask(ctl, claim(dispatched))), "claimed");
    assert.equal(stored.filter((e) => e.type === "job-claimed").length, 2, "one job-claimed per attempt");
  });

  void it("another agent's claim of a running attempt is refused", async () => {
    const { control, register, running } = setup();
    register();
    const other = await ask(control(), claim(running), "b");
    assert.equal(code(other), "STALE_ATTEMPT");
  });

  void it("a claim whose job-claimed was not logged is granted when the agent tries again", async () => {
    const { c, control, register, dispatched } = setup({ failClaim: 1 });
    register();
    const ctl = control();
    assert.equal(code(await ask(ctl, claim(dispatched))), "UNAVAILABLE");
    await c.serial(() => Promise.resolve()); // the rebuild the failure scheduled
    assert.equal(code(await ask(ctl, claim(dispatched))), "claimed");
  });

  void it("after a steering restart a running attempt's claim by its own agent is granted again", async () => {
    // the grant was lost with the old steering: the agent's own check drops a true duplicate
    const { control, register, running } = setup();
    register();
    assert.equal(code(await ask(control(), claim(running))), "claimed");
  });

  void it("an attempt of a killed task is not claimed again", async () => {
    const { d, c, control, register, running } = setup();
    register();
    await c.serial(() => c.commit({ type: "task-state", taskId: "1", at: d.tick(), state: "killed" }));
    const reply = await ask(control(), claim(running));
    assert.equal(code(reply), "STALE_ATTEMPT");
    assert.match(reply.type === "error" ? reply.error.message : "", /task 1 was killed/);
  });
});

void describe("agent control: heartbeats", () => {
  void it("renews a running attempt and names a superseded one stale", async () => {
    const { control, register, registry, running, clock } = setup();
    register();
    clock.advance(7_000);
    const reply = await ask(control(), heartbeat([running, { jobId: running.jobId, attempt: 9 }]));
    assert.deepEqual(reply, { type: "ack", stale: [{ jobId: running.jobId, attempt: 9 }] });
    assert.equal(registry.renewedAt(running.jobId, running.attempt, 0), clock.now());
    assert.equal(registry.renewedAt(running.jobId, 9, 0), 0, "the superseded attempt is not renewed");
  });

  void it("names a killed task's running attempt stale, on every heartbeat", async () => {
    const { d, c, control, register, running } = setup();
    register();
    await c.serial(() => c.commit({ type: "task-state", taskId: "1", at: d.tick(), state: "killed" }));
    const ctl = control(); // e.g. a steering restarted since the kill: its stop was never sent again
    for (let i = 0; i < 2; i++)
      assert.deepEqual(await ask(ctl, heartbeat([running])), { type: "ack", stale: [running] });
  });

  void it("never stops nor lets lapse an attempt of a task waiting for its rebuild", async () => {
    // A NATS outage longer than the lease: the lease check folds a job-lost whose append fails,
    // and the rebuild fails too. The log still says the attempt runs.
    const { d, c, nats, state, stored, control, register, registry, running, clock } = setup();
    register();
    nats.up = false;
    await assert.rejects(
      c.serial(() =>
        c.commit({ type: "job-lost", taskId: "1", at: d.tick(), ...running, reason: "lease expired" }),
      ),
    );
    assert.equal(c.isDiverged("1"), true);
    assert.notEqual(
      state.engines.get("1")!.job(running.jobId)!.attempt,
      running.attempt,
      "engine ahead of the log",
    );
    assert.ok(!stored.some((e) => e.type === "job-lost"));
    nats.up = true; // NATS is back; the agent's heartbeat comes before the rebuild
    clock.advance(40_000); // longer than the lease
    assert.deepEqual(await ask(control(), heartbeat([running])), { type: "ack", stale: [] });
    assert.equal(registry.renewedAt(running.jobId, running.attempt, 0), clock.now(), "lease renewed");
  });

  void it("renews the log's leases of an agent not registered yet (steering restarted)", async () => {
    const { control, registry, running, register, clock } = setup();
    const reply = await ask(control(), heartbeat([running]));
    assert.equal(code(reply), "UNAUTHENTICATED", "the agent is still told to register");
    const t = clock.now();
    assert.equal(registry.renewedAt(running.jobId, running.attempt, 0), t, "its attempt's lease renewed");
    // another agent's heartbeat cannot renew it: the fence checks the subject's agent
    clock.advance(5);
    assert.equal(code(await ask(control(), heartbeat([running]), "b")), "UNAUTHENTICATED");
    assert.equal(registry.renewedAt(running.jobId, running.attempt, 0), t);
    register();
    assert.deepEqual(await ask(control(), heartbeat([running])), { type: "ack", stale: [] });
  });
});

void describe("agent control: grants and goodbyes", () => {
  void it("a granted claim presigns what the decision names: sandbox, the point's training files, checkpoint", async () => {
    const presignGet = (key: string) => Promise.resolve(`get:${key}`);
    const { control, register, dispatched } = setup({
      spec: { sandboxKey: "tasks/1/sandbox.tgz", trainingDS: "mnist" },
      storage: { presignGet },
    });
    register();
    assert.deepEqual(await ask(control(), claim(dispatched)), {
      type: "claimed",
      grant: {
        sandbox: "get:tasks/1/sandbox.tgz",
        trainingData: [
          { name: "a.bin", url: "get:datasets/mnist/a.bin" },
          { name: "b.bin", url: "get:datasets/mnist/b.bin" },
        ],
        checkpoint: null,
      },
    });
  });

  void it("a bye hands back the agent's attempts and removes it; a task waiting for its rebuild is rebuilt first", async () => {
    const { d, c, nats, stored, control, register, registry, running } = setup();
    register();
    nats.up = false; // the lease check's job-lost is not logged, nor is the task rebuilt
    await assert.rejects(
      c.serial(() =>
        c.commit({ type: "job-lost", taskId: "1", at: d.tick(), ...running, reason: "lease expired" }),
      ),
    );
    assert.equal(c.isDiverged("1"), true);
    nats.up = true;
    assert.deepEqual(await ask(control(), { type: "bye", running: [running, running] }), {
      type: "ack",
      stale: [],
    });
    assert.equal(c.isDiverged("1"), false);
    const lost = stored.filter((e) => e.type === "job-lost");
    assert.deepEqual(
      lost.map((e) => e.type === "job-lost" && [e.jobId, e.attempt, e.reason]),
      [[running.jobId, running.attempt, "handed back by agent s/a"]],
    );
    assert.equal(registry.get("s", "a"), undefined, "the agent left the registry");
  });

  void it("the site's JOBS consumer is made only by a runner that has the port for it", async () => {
    const runner = new EffectRunner(quietPorts(new AgentRegistry(1), () => undefined));
    await assert.rejects(runner.run({ type: "ensure-site-consumer", site: "s" }), /no JOBS consumer port/);
  });
});
