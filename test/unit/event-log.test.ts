// The EventLog's group commit on a stand-in JetStream whose publishes settle when the test says:
// a task's log never has a hole. Once a batch of a task is lost, the task's batches queued behind
// it are refused unsent (their `durable` rejects, so nothing acts on them) until the Committer has
// rebuilt the task from what the log holds; other tasks go on.
import type { PublishAck } from "../../steering/shell/ports.ts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { EventLog } from "../../steering/shell/eventLog.ts";
import { eventsOf, type LogEvent, type LogEventOf } from "../../steering/core/events.ts";
import { Driver, rejectsCode, spec } from "./fixtures/engineKit.ts";

const logger = createLogger("test", { level: "error" });
const tick = () => new Promise((r) => setImmediate(r));

/** JetStream publish whose acks the test gives (or withholds) one message at a time. */
class ManualJs {
  readonly stored: LogEvent[] = [];
  readonly sent: Array<{ subject: string; events: LogEvent[]; ok: () => void; fail: (e: Error) => void }> =
    [];
  publish(subject: string, body: string): Promise<PublishAck> {
    const events = eventsOf(JSON.parse(body) as unknown).flatMap((r) => (r.ok ? [r.event] : []));
    return new Promise((resolve, reject) => {
      this.sent.push({
        subject,
        events,
        ok: () => {
          this.stored.push(...events);
          resolve({ seq: this.stored.length, duplicate: false });
        },
        fail: reject,
      });
    });
  }
  /** The oldest publish not yet settled. */
  next(): ManualJs["sent"][number] {
    const s = this.sent.shift();
    assert.ok(s, "a publish was sent");
    return s;
  }
}

function setup() {
  const js = new ManualJs();
  const log = new EventLog(js, logger);
  const state = new SteeringState();
  const drivers = ["1", "2"].map((id) => new Driver(spec({ maxPoints: 4, nParallelEvaluation: 2 }), id));
  for (const d of drivers)
    for (const ev of d.log) {
      state.apply(ev);
      js.stored.push(ev);
    }
  const c = new Committer(state, log, { publish: () => undefined }, logger, (id) =>
    Promise.resolve(js.stored.filter((e) => e.taskId === id)),
  );
  return { js, log, state, c, drivers };
}

function dispatched(taskId: string, state: SteeringState): LogEventOf<"job-dispatched"> {
  const j = state.engines.get(taskId)!.nextDispatchable()!;
  return { type: "job-dispatched", taskId, at: Date.now(), jobId: j.jobId, attempt: j.attempt, site: "s" };
}

/** How the promise settled so far: "pending", "stored" or "refused: <error>". */
function outcome(p: Promise<unknown>): () => string {
  let s = "pending";
  p.then(
    () => (s = "stored"),
    (e: unknown) => (s = `refused: ${String(e)}`),
  );
  return () => s;
}

void describe("event log: no holes", () => {
  void it("a task's batch staged behind a lost one is refused unsent; other tasks go on", async () => {
    const { js, state, c } = setup();
    const sampled = c.stage(state.engines.get("1")!.proposeSampling(Date.now())!);
    await tick(); // flush 1: points-added of task 1
    const first = js.next();
    // staged while the points-added is unacknowledged: the next flush's batch of task 1
    const dispatch = c.stage(dispatched("1", state));
    const other = c.stage(state.engines.get("2")!.proposeSampling(Date.now())!);
    const dispatchOutcome = outcome(dispatch.durable);
    first.fail(new Error("TIMEOUT"));
    await assert.rejects(sampled.durable, /TIMEOUT/);
    await tick();
    // only task 2's batch goes out: task 1's was dropped, not sent
    assert.deepEqual(
      js.sent.flatMap((x) => x.events.map((e) => `${e.taskId}:${e.type}`)),
      ["2:points-added"],
    );
    assert.match(dispatchOutcome(), /^refused: .*earlier event of task 1/, "nothing acts on it");
    await rejectsCode(dispatch.durable, "UNAVAILABLE");
    const second = js.next();
    second.ok();
    await other.durable;
    assert.equal(js.sent.length, 0);
    assert.deepEqual(
      js.stored.filter((e) => e.taskId === "1").map((e) => e.type),
      ["task-created"],
      "no job-dispatched stored without the points-added it depends on",
    );
    // the rebuild the failure scheduled has run: task 1 is taken again, from what the log holds
    await c.serial(() => Promise.resolve());
    assert.equal(c.isDiverged("1"), false);
    assert.equal(state.engines.get("1")!.points.size, 0);
    const again = c.stage(state.engines.get("1")!.proposeSampling(Date.now())!);
    await tick();
    js.next().ok();
    await again.durable;
    assert.deepEqual(
      js.stored.filter((e) => e.taskId === "1").map((e) => e.type),
      ["task-created", "points-added"],
    );
  });

  void it("appends after a lost batch are refused until resume()", async () => {
    const { js, log, drivers } = setup();
    const d = drivers[0]!;
    const state = (s: "paused" | "running"): LogEvent => ({
      type: "task-state",
      taskId: "1",
      at: d.tick(),
      state: s,
    });
    const lost = log.append(state("paused"));
    await tick();
    js.next().fail(new Error("connection closed"));
    await assert.rejects(lost, /connection closed/);
    const refused = log.append(state("running"));
    const refusedOutcome = outcome(refused);
    await tick();
    assert.equal(js.sent.length, 0, "nothing of task 1 was sent");
    assert.match(refusedOutcome(), /^refused: /);
    await rejectsCode(refused, "UNAVAILABLE", "task 1");
    log.resume("1");
    const taken = log.append(state("running"));
    await tick();
    js.next().ok();
    await taken;
  });

  void it("a task's batches go out one at a time: the second waits for the first's ack", async () => {
    const { js, log, drivers } = setup();
    const d = drivers[0]!;
    // two batches' worth of events (a batch stays under 256 KiB)
    const big = "x".repeat(100 * 1024);
    // an unknown field makes each event large (EventLog only serializes it)
    const padded = (): LogEvent => {
      const ev = { type: "task-state", taskId: "1", at: d.tick(), state: "running", pad: big } as const;
      return ev;
    };
    const appends = Array.from({ length: 4 }, () => log.append(padded()));
    await tick();
    assert.equal(js.sent.length, 1, "one batch of the task in flight");
    const first = js.next();
    first.fail(new Error("TIMEOUT"));
    const results = await Promise.allSettled(appends);
    assert.ok(results.every((r) => r.status === "rejected"));
    await tick();
    assert.equal(js.sent.length, 0, "the batch behind the lost one was never sent");
  });
});
