// The report intake's shell (real ResultIngest, Dispatcher and Committer; the log, JetStream and
// NATS are in-memory stand-ins; a fake clock): a report is acked only once its event is stored,
// the stop it causes goes to the agent only then (the send-stop effect), and a report from an
// agent that does not hold the attempt is acked, counted as ignored and logs nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsMsg } from "@nats-io/jetstream";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReport, ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { ResultIngest } from "../../steering/shell/channels/resultIngest.ts";
import { Committer } from "../../steering/shell/committer.ts";
import type { SteeringConfig } from "../../steering/shell/config.ts";
import { Dispatcher } from "../../steering/shell/dispatcher.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { openPolicy } from "./fixtures/apiKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";
import { beforePrune } from "./fixtures/schedulerSim.ts";

const logger = createLogger("test", { level: "error" });

function setup(log: readonly LogEvent[]) {
  const clock = new FakeClock(500_000);
  const state = new SteeringState();
  for (const ev of log) state.apply(ev);
  const stored: LogEvent[] = [];
  const held: Array<() => void> = [];
  const eventLog = {
    append: (ev: LogEvent) => new Promise<void>((resolve) => held.push(() => (stored.push(ev), resolve()))),
  };
  const c = new Committer(state, eventLog, { publish: () => undefined }, logger);
  const control: Array<{ subject: string; msg: ControlMessage }> = [];
  const nc = {
    publish: (subject: string, data: string) => {
      control.push({ subject, msg: JSON.parse(data) as ControlMessage });
    },
  };
  const registry = new AgentRegistry(60_000);
  const config = { leaseMs: 60_000, dispatchTimeoutMs: 60_000 } as SteeringConfig;
  const d = new Dispatcher(
    c,
    { publish: () => Promise.resolve({ seq: 1, duplicate: false }) },
    registry,
    () => openPolicy("site-a", ["process"]),
    {} as Storage,
    config,
    logger,
    0,
    undefined,
    clock,
    nc,
  );
  const ingest = new ResultIngest(c, {} as Storage, d, logger, clock);
  const release = () => {
    for (const ok of held.splice(0)) ok();
  };
  return { c, ingest, stored, control, release, clock, d };
}

function message(site: string, agent: string, report: AgentReport) {
  const m = {
    subject: subjects.results(site, agent, report.jobId),
    acked: false,
    naked: false,
    json: () => report,
    ack: () => void (m.acked = true),
    nak: () => void (m.naked = true),
  };
  return m;
}

/** The progress report that, once recorded, prunes its trial (schedulerSim's beforePrune). */
function progressOf(trigger: ReturnType<typeof beforePrune>["trigger"]): AgentReport {
  const { jobId, attempt, resource, metrics } = trigger;
  return { type: "progress", jobId, attempt, resource, metrics };
}

/** The serial queue has run what was queued, and the promise chains it started have settled. */
async function drained(c: Committer): Promise<void> {
  await c.serial(() => Promise.resolve());
  await new Promise((r) => setImmediate(r));
}

void describe("result intake", () => {
  void it("acks a pruning progress report once stored, and only then tells the agent to stop", async () => {
    const { log, trigger } = beforePrune();
    const { c, ingest, stored, control, release, clock } = setup(log);
    const ref = { jobId: trigger.jobId, attempt: trigger.attempt };
    const report: AgentReport = {
      type: "progress",
      ...ref,
      resource: trigger.resource,
      metrics: trigger.metrics,
    };
    const m = message("site-a", "agent-1", report);
    ingest.receive(m as unknown as JsMsg);
    await drained(c);
    assert.equal(m.acked, false, "not acked before the event is stored");
    assert.deepEqual(control, [], "no stop before the report that caused it is stored");
    release();
    await ingest.idle();
    assert.equal(m.acked, true);
    assert.deepEqual(
      stored.map((e) => [e.type, e.at]),
      [["job-progress", clock.now()]],
    );
    assert.deepEqual(control, [
      {
        subject: subjects.control("site-a", "agent-1"),
        msg: { type: "stop", ...ref, reason: "pruned" },
      },
    ]);
    assert.equal(ingest.ignored, 0);
  });

  void it("a report from an agent that does not hold the attempt is acked and ignored, logging nothing", async () => {
    const { log, trigger } = beforePrune();
    const { ingest, stored, control } = setup(log);
    const report = progressOf(trigger);
    const m = message("site-a", "intruder", report);
    ingest.receive(m as unknown as JsMsg);
    await ingest.idle();
    assert.equal(m.acked, true);
    assert.equal(ingest.ignored, 1);
    assert.deepEqual(stored, []);
    assert.deepEqual(control, []);
  });

  void it("while the leader lease has lapsed, a report is naked unread: nothing is decided or staged", async () => {
    const { log, trigger } = beforePrune();
    const { c, ingest, stored, control, d, release } = setup(log);
    let leading = false;
    d.leading = () => leading;
    const report = progressOf(trigger);
    const m = message("site-a", "agent-1", report);
    ingest.receive(m as unknown as JsMsg);
    await drained(c);
    release();
    await ingest.idle();
    assert.deepEqual([m.acked, m.naked], [false, true]);
    assert.deepEqual(stored, [], "nothing staged");
    assert.deepEqual(control, []);
    // leading again (or the next leader): the redelivered report is recorded
    leading = true;
    const again = message("site-a", "agent-1", report);
    ingest.receive(again as unknown as JsMsg);
    await drained(c);
    release();
    await ingest.idle();
    assert.equal(again.acked, true);
    assert.equal(stored.length, 1);
  });
});
