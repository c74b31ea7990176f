// Fencing the event log (shell/eventLog.ts fence()): every append of a leader expects the
// stream's last sequence as its own acks tell it, on a stand-in stream that checks the expectation
// the way JetStream does (error 10071 "wrong last sequence"). Once another process has appended
// (a new leader), the old leader's next append is refused, it is told once, and it appends nothing
// more: the refusal is never retried as an ordinary failure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JetStreamClient, JetStreamPublishOptions } from "@nats-io/jetstream";
import { createLogger } from "../../protocol/log.ts";
import { eventsOf, type LogEvent } from "../../steering/core/events.ts";
import { EventLog } from "../../steering/shell/eventLog.ts";
import { NotLeaderError } from "../../steering/shell/leadership.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const logger = createLogger("test", { level: "error" });

/** One stream, shared by every writer; publishes are stored in the order sent. */
class Stream {
  readonly stored: Array<{ writer: string; events: LogEvent[] }> = [];
  get lastSeq(): number {
    return this.stored.length;
  }
  writer(name: string): JetStreamClient {
    return {
      publish: (_subject: string, body: string, o?: Partial<JetStreamPublishOptions>) => {
        const expected = o?.expect?.lastSequence;
        if (expected !== undefined && expected !== this.lastSeq)
          return Promise.reject(
            Object.assign(new Error(`wrong last sequence: ${this.lastSeq}`), { code: 10071 }),
          );
        const events = eventsOf(JSON.parse(body) as unknown).flatMap((r) => (r.ok ? [r.event] : []));
        this.stored.push({ writer: name, events });
        return Promise.resolve({ seq: this.lastSeq, stream: "GTLOG", duplicate: false });
      },
    } as unknown as JetStreamClient;
  }
}

function events(taskId: string): LogEvent[] {
  const d = new Driver(spec({ maxPoints: 4, nParallelEvaluation: 2 }), taskId);
  d.sampleAll();
  return d.log;
}

describe("the fenced event log", () => {
  it("a sole leader's appends all go through, several tasks in one flush included", async () => {
    const stream = new Stream();
    const log = new EventLog(stream.writer("a"), logger);
    let fenced = 0;
    log.fence(stream.lastSeq, () => fenced++);
    const all = [...events("1"), ...events("2"), ...events("3")];
    await Promise.all(all.map((e) => log.append(e)));
    await Promise.all(events("4").map((e) => log.append(e)));
    assert.equal(fenced, 0);
    assert.equal(
      stream.stored.flatMap((s) => s.events).length,
      all.length + events("4").length,
      "every event stored",
    );
  });

  it("after another process appended, the old leader's append is refused, reported once, and nothing more is sent", async () => {
    const stream = new Stream();
    const old = new EventLog(stream.writer("old"), logger);
    const reasons: NotLeaderError[] = [];
    old.fence(stream.lastSeq, (e) => reasons.push(e));
    const [first, ...rest] = events("1");
    await old.append(first!);
    // the new leader rebuilt from the log (sequence 1) and appended
    const next = new EventLog(stream.writer("new"), logger);
    next.fence(stream.lastSeq, () => assert.fail("the new leader is not fenced"));
    await next.append(events("2")[0]!);
    const refused = await Promise.allSettled(rest.map((e) => old.append(e)));
    assert.ok(refused.every((r) => r.status === "rejected" && r.reason instanceof NotLeaderError));
    assert.equal(reasons.length, 1, "told once");
    // and every later append is refused unsent, for any task
    await assert.rejects(old.append(events("3")[0]!), NotLeaderError);
    assert.deepEqual(
      stream.stored.map((s) => s.writer),
      ["old", "new"],
      "the deposed leader stored nothing after the new leader's append",
    );
  });

  it("while the leader lease has lapsed, nothing is appended though no one else appended; renewed, appends go on", async () => {
    // A NATS outage longer than the lease TTL: the lease lapses, the connections come back, and
    // until the next poll deposes the process its decisions (a lease tick that let no heartbeat
    // in) must not become durable, even though the log's sequence still matches.
    const stream = new Stream();
    const log = new EventLog(stream.writer("a"), logger);
    let holds = true;
    let fenced = 0;
    log.fence(
      stream.lastSeq,
      () => fenced++,
      () => holds,
    );
    const [first, second, third] = [events("1")[0], events("2")[0], events("3")[0]];
    await log.append(first!);
    holds = false;
    await assert.rejects(
      log.append(second!),
      (e: unknown) => e instanceof NotLeaderError && /lapsed/.test(e.message),
    );
    assert.equal(stream.lastSeq, 1, "nothing stored while lapsed");
    assert.equal(fenced, 0, "a lapse is not a fence: the election decides whether the term is lost");
    holds = true;
    await log.append(third!);
    assert.equal(stream.lastSeq, 2);
  });

  it("unfenced (a single steering), appends carry no expectation", async () => {
    const stream = new Stream();
    const log = new EventLog(stream.writer("a"), logger);
    stream.stored.push({ writer: "other", events: [] });
    await log.append(events("1")[0]!);
    assert.equal(stream.lastSeq, 2);
  });
});
