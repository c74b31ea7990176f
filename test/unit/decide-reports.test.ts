// The report rules as pure decisions (core/decide/reports.ts), on literal times: a report counts
// only for the attempt leased to that site and agent (the fence), a late report of a superseded
// attempt is ignored, a result ends the job and kicks a pump, and the scheduler's verdict on a
// logged progress report (a stop for an asha-stopping task's pruned trial) becomes a send-stop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentReport } from "../../protocol/messages.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { stopAllEffects } from "../../steering/core/decide/reports.ts";
import { decide } from "../../steering/core/decider.ts";
import type { LogEvent, LogEventOf } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { World } from "../../steering/core/world.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { beforePrune, LADDER, schedSpec, Sim } from "./fixtures/schedulerSim.ts";

const rules = {
  leaseMs: 30_000,
  heartbeatMs: 5_000,
  dispatchTimeoutMs: 300_000,
  retry: { baseMs: 0, maxMs: 0, jitter: 0 },
};

function worldOf(log: readonly LogEvent[]): World {
  const tasks = new SteeringState();
  for (const ev of log) tasks.apply(ev);
  return {
    tasks,
    agents: new AgentRegistry(rules.leaseMs),
    diverged: new Set(),
    rules,
    leases: { baseline: 0, paused: false },
  };
}

/** Task "42": one attempt running on s/a. */
function running() {
  const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }));
  d.sampleAll();
  const ref = d.dispatch("s")!;
  d.claim(ref, "s", "a");
  return { d, ref };
}

const progress = (ref: { jobId: string; attempt: number }, resource = 1): AgentReport => ({
  type: "progress",
  ...ref,
  resource,
  metrics: { loss: 0.5 },
});

function result(ref: { jobId: string; attempt: number }): AgentReport {
  return {
    type: "result",
    ...ref,
    status: "ok",
    loss: 0.25,
    metrics: { loss: 0.25 },
    resource: null,
    error: null,
    artifacts: [],
    missing: [],
    output: null,
    startedAt: 1,
    finishedAt: 2,
    exitCode: 0,
    failureClass: null,
  };
}

void describe("reports: the fence", () => {
  void it("takes a progress report of the attempt leased to that site and agent", () => {
    const { d, ref } = running();
    const r = decide(
      worldOf(d.log),
      { type: "report", site: "s", agent: "a", report: progress(ref), artifacts: [] },
      70_000,
    );
    assert.equal(r.reply.ignored, null);
    assert.deepEqual(r.events, [
      { type: "job-progress", taskId: "42", at: 70_000, ...ref, resource: 1, metrics: { loss: 0.5 } },
    ]);
  });

  void it("ignores a report from another site or another agent, naming who holds the lease", () => {
    const { d, ref } = running();
    const w = worldOf(d.log);
    const site = decide(
      w,
      { type: "report", site: "x", agent: "a", report: result(ref), artifacts: [] },
      70_000,
    );
    assert.deepEqual(site.events, []);
    assert.deepEqual(site.effects, []);
    assert.match(site.reply.ignored?.why ?? "", /leased to site s, not x/);
    const agent = decide(
      w,
      { type: "report", site: "s", agent: "b", report: result(ref), artifacts: [] },
      70_000,
    );
    assert.deepEqual(agent.events, []);
    assert.match(agent.reply.ignored?.why ?? "", /run by agent a, not b/);
  });

  void it("ignores a late report of a superseded attempt (lost, then retried)", () => {
    const { d, ref } = running();
    d.lose(ref);
    const retry = d.dispatch("s")!;
    d.claim(retry, "s", "a");
    const w = worldOf(d.log);
    const late = decide(
      w,
      { type: "report", site: "s", agent: "a", report: result(ref), artifacts: [] },
      70_000,
    );
    assert.deepEqual(late.events, []);
    assert.match(late.reply.ignored?.why ?? "", /attempt 1 of .* was superseded by attempt 2/);
    assert.equal(late.reply.ignored?.fields.attempt, 1);
    // the current attempt's report counts
    const now = decide(
      w,
      { type: "report", site: "s", agent: "a", report: result(retry), artifacts: [] },
      70_000,
    );
    assert.deepEqual(
      now.events.map((e) => [e.type, "attempt" in e ? e.attempt : null]),
      [["job-finished", 2]],
    );
  });

  void it("ignores a report of an unknown task, and a late artifact nobody awaits", () => {
    const { d, ref } = running();
    const w = worldOf(d.log);
    const other = { jobId: "t7-p0-j1", attempt: 1 };
    assert.equal(
      decide(w, { type: "report", site: "s", agent: "a", report: progress(other), artifacts: [] }, 1).reply
        .ignored?.why,
      "unknown task",
    );
    const late: AgentReport = { type: "artifact", ...ref, kind: "log", artifact: null, reason: null };
    const r = decide(w, { type: "report", site: "s", agent: "a", report: late, artifacts: [] }, 1);
    assert.deepEqual(r.events, []);
    assert.match(r.reply.ignored?.why ?? "", /has no missing log/);
  });
});

void describe("reports: what they become", () => {
  void it("a result ends the job (site and agent from the subject) and kicks a pump once durable", () => {
    const { d, ref } = running();
    const r = decide(
      worldOf(d.log),
      { type: "report", site: "s", agent: "a", report: result(ref), artifacts: [] },
      80_000,
    );
    const ev = r.events[0] as LogEventOf<"job-finished">;
    assert.equal(r.events.length, 1);
    assert.deepEqual([ev.type, ev.at, ev.site, ev.agent, ev.loss], ["job-finished", 80_000, "s", "a", 0.25]);
    assert.deepEqual(r.effects, [{ type: "kick" }]);
  });

  void it("a checkpoint whose upload the shell could not verify adds nothing", () => {
    const { d, ref } = running();
    const artifact = { kind: "checkpoint" as const, key: "k", size: 1, etag: "" };
    const report: AgentReport = { type: "checkpoint", ...ref, artifact, resource: 1 };
    const w = worldOf(d.log);
    const none = decide(w, { type: "report", site: "s", agent: "a", report, artifacts: [] }, 1);
    assert.deepEqual([none.events, none.reply.ignored], [[], null]);
    const taken = decide(w, { type: "report", site: "s", agent: "a", report, artifacts: [artifact] }, 1);
    assert.deepEqual(
      taken.events.map((e) => e.type),
      ["job-checkpoint"],
    );
  });
});

void describe("reports: verdicts", () => {
  void it("a progress report that makes asha-stopping prune the trial becomes a send-stop", () => {
    // a simulated asha-stopping task up to the report that gets a trial pruned: that report is the case
    const { log, trigger } = beforePrune();
    const w = worldOf(log);
    const ref = { jobId: trigger.jobId, attempt: trigger.attempt };
    const report: AgentReport = {
      type: "progress",
      ...ref,
      resource: trigger.resource,
      metrics: trigger.metrics,
    };
    const verdict = { type: "report-verdict" as const, ...ref, resource: trigger.resource, held: false };
    // before the report is folded in, the scheduler has not judged it: no stop yet
    assert.deepEqual(decide(w, verdict, 90_000).effects, []);
    const r = decide(w, { type: "report", site: "site-a", agent: "agent-1", report, artifacts: [] }, 90_000);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ["job-progress"],
    );
    for (const ev of r.events) w.tasks.apply(ev);
    assert.deepEqual(decide(w, verdict, 90_000).effects, [
      { type: "send-stop", site: "site-a", agent: "agent-1", ...ref, reason: "pruned" },
    ]);
  });

  void it("a held report that is not stopped gets a continue, at or past the first judged level only", () => {
    const d = new Driver(
      schedSpec({ type: "asha-stopping", ...LADDER }, { maxPoints: 6, nParallelEvaluation: 1 }),
    );
    const sim = new Sim(d);
    sim.pump();
    const job = d.engine.activeJobs()[0]!;
    const ref = { jobId: job.jobId, attempt: job.attempt };
    const w = worldOf(d.log);
    const at = (resource: number, held: boolean) =>
      decide(w, { type: "report-verdict", ...ref, resource, held }, 1).effects;
    assert.deepEqual(at(1, true), [
      { type: "send-continue", site: job.site!, agent: job.agent!, ...ref, resource: 1 },
    ]);
    assert.deepEqual(at(1, false), [], "not held: the agent waits for nothing");
    assert.deepEqual(at(0.5, true), [], "below the first judged level the agent never waits");
    assert.deepEqual(
      decide(w, { type: "report-verdict", jobId: ref.jobId, attempt: 9, resource: 1, held: true }, 1).effects,
      [],
      "a stale attempt gets no continue",
    );
  });

  void it("killing a task stops every attempt an agent holds, and only those", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 }));
    d.sampleAll();
    const held = d.dispatch("s")!;
    d.claim(held, "s", "a");
    d.dispatch("s"); // dispatched, not yet claimed: no agent to tell
    const e = worldOf(d.log).tasks.engines.get("42")!;
    assert.deepEqual(stopAllEffects(e, "killed"), [
      { type: "send-stop", site: "s", agent: "a", ...held, reason: "killed" },
    ]);
  });
});
