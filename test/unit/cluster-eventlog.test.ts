// The event log through a JetStream leader election, on a stand-in JetStream and a fake time (no
// sleeps): a batch whose publish fails as "jetstream is not enabled" is sent again under the same
// msgID (JetStream drops a retry that was stored before its ack was lost) until it is stored;
// past GRIDTUNE_NATS_RETRY_MS it fails naming the bound, and the task's later appends are refused
// until it is rebuilt; any other failure is not retried.
import type { PublishAck } from "../../steering/shell/ports.ts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NoRespondersError, RequestError } from "@nats-io/transport-node";
import { createLogger } from "../../protocol/log.ts";
import { ElectionRetryError, type RetryTime } from "../../protocol/natsRetry.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { EventLog } from "../../steering/shell/eventLog.ts";

const logger = createLogger("test", { level: "error" });
const bound = { totalMs: 15_000, baseMs: 100, maxMs: 2_000, jitter: 0 };

function fakeTime(): RetryTime & { t: number } {
  const f = {
    t: 5_000_000,
    now: () => f.t,
    sleep: (ms: number) => {
      f.t += ms;
      return Promise.resolve();
    },
    random: () => 0,
  };
  return f;
}

/** As nats.js 3 reports a publish while the stream has no leader. */
function notEnabled(): Error {
  const e = new Error("jetstream is not enabled", {
    cause: new RequestError("503", { cause: new NoRespondersError("gt.log.1") }),
  });
  e.name = "JetStreamNotEnabled";
  return e;
}

/** Fails the first `failures` publishes with `error()`, then stores; records every try. */
class ElectionJs {
  readonly tries: Array<{ subject: string; msgID: string | undefined }> = [];
  constructor(
    private failures: number,
    private readonly error: () => Error = notEnabled,
  ) {}
  publish(subject: string, _body: string, opts?: { msgID?: string }): Promise<PublishAck> {
    this.tries.push({ subject, msgID: opts?.msgID });
    if (this.failures-- > 0) return Promise.reject(this.error());
    return Promise.resolve({ seq: this.tries.length, duplicate: false });
  }
}

const event = (taskId: string): LogEvent => ({ type: "task-state", taskId, at: 1, state: "finished" });

describe("the event log through an election", () => {
  it("retries a batch under one msgID until it is stored; the next batch has another", async () => {
    const js = new ElectionJs(3);
    const log = new EventLog(js, logger, bound, fakeTime());
    await log.append(event("1"));
    assert.equal(js.tries.length, 4);
    const ids = new Set(js.tries.map((t) => t.msgID));
    assert.equal(ids.size, 1, "every try of the batch carries the same msgID");
    assert.ok([...ids][0], "a msgID is set");
    await log.append(event("1"));
    assert.notEqual(js.tries.at(-1)!.msgID, js.tries[0]!.msgID);
  });

  it("past the bound: the append fails naming it, and the task is refused until resumed", async () => {
    const js = new ElectionJs(Number.POSITIVE_INFINITY);
    const time = fakeTime();
    const log = new EventLog(js, logger, bound, time);
    const start = time.t;
    await assert.rejects(log.append(event("1")), (e) => {
      assert.ok(e instanceof ElectionRetryError, String(e));
      assert.match(e.message, /within 15000 ms/);
      assert.match(e.message, /GRIDTUNE_NATS_RETRY_MS/);
      return true;
    });
    assert.equal(time.t - start, bound.totalMs, "gave up at the bound, not before or after");
    await assert.rejects(log.append(event("1")), /was not stored; it is rebuilt/);
  });

  it("a failure an election does not cause is not retried", async () => {
    const js = new ElectionJs(1, () => new Error("maximum payload exceeded"));
    const log = new EventLog(js, logger, bound, fakeTime());
    await assert.rejects(log.append(event("1")), /maximum payload exceeded/);
    assert.equal(js.tries.length, 1);
  });
});
