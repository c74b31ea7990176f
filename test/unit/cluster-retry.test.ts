// withElectionRetry with a fake time: retries what an election causes, with back-off, and gives
// up past the bound with an error naming it; anything else fails at once. No test sleeps.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { UnavailableError, ValidationError } from "../../protocol/errors.ts";
import {
  ElectionRetryError,
  isElectionError,
  type RetryTime,
  tryTimeout,
  withElectionRetry,
} from "../../protocol/natsRetry.ts";

/** Time that moves only by the helper's own sleeps (and by `cost` ms per try). */
function fakeTime(start = 1_000_000): RetryTime & { sleeps: number[]; t: number } {
  const f = {
    t: start,
    sleeps: [] as number[],
    now: () => f.t,
    sleep: (ms: number) => {
      f.sleeps.push(ms);
      f.t += ms;
      return Promise.resolve();
    },
    random: () => 0, // no jitter: the full delay
  };
  return f;
}

/** What nats.js 3 throws while a stream has no leader: "jetstream is not enabled" (a 503). */
function notEnabled(): Error {
  const e = new Error("jetstream is not enabled", {
    cause: new RequestError("no responders", { cause: new NoRespondersError("$JS.API") }),
  });
  e.name = "JetStreamNotEnabled";
  return e;
}

const bound = { totalMs: 15_000, baseMs: 100, maxMs: 2_000, jitter: 0.5 };

describe("isElectionError", () => {
  test("election failures are retryable, others are not", () => {
    assert.ok(isElectionError(notEnabled()));
    assert.ok(isElectionError(new TimeoutError()));
    assert.ok(isElectionError(new UnavailableError("x", { cause: new TimeoutError() })));
    const api = Object.assign(new Error("JetStream system temporarily unavailable"), {
      name: "JetStreamApiError",
      status: 503,
    });
    assert.ok(isElectionError(api));
    assert.ok(
      !isElectionError(
        Object.assign(new Error("stream not found"), { name: "JetStreamApiError", status: 404 }),
      ),
    );
    assert.ok(!isElectionError(new ValidationError("INVALID_ARGUMENT", "bad")));
    assert.ok(!isElectionError(new Error("maximum payload exceeded")));
  });
});

describe("withElectionRetry", () => {
  test("an election of ~4.5 s: retried with doubling delays, then the result", async () => {
    const time = fakeTime();
    const start = time.t;
    let tries = 0;
    const retried: number[] = [];
    const out = await withElectionRetry(
      "publish to GTLOG",
      () => {
        tries++;
        if (time.t - start < 4_500) return Promise.reject(notEnabled());
        return Promise.resolve("stored");
      },
      { bound, time, onRetry: (_e, n) => retried.push(n) },
    );
    assert.equal(out, "stored");
    assert.deepEqual(time.sleeps.slice(0, 5), [100, 200, 400, 800, 1600]);
    assert.ok(time.sleeps.every((d) => d <= bound.maxMs));
    assert.equal(retried.length, tries - 1);
  });

  test("past the bound: ElectionRetryError naming the operation, the bound and its setting", async () => {
    const time = fakeTime();
    let tries = 0;
    await assert.rejects(
      withElectionRetry(
        "publish to GTLOG",
        () => {
          tries++;
          return Promise.reject(notEnabled());
        },
        { bound, time, boundSetting: "GRIDTUNE_NATS_RETRY_MS" },
      ),
      (e) => {
        assert.ok(e instanceof ElectionRetryError, String(e));
        assert.ok(e instanceof UnavailableError);
        assert.equal(e.code, "UNAVAILABLE");
        assert.match(e.message, /publish to GTLOG failed \d+ time\(s\) within 15000 ms/);
        assert.match(e.message, /GRIDTUNE_NATS_RETRY_MS/);
        assert.match(e.message, /jetstream is not enabled/);
        assert.equal(e.attempts, tries);
        return true;
      },
    );
    // never waits past the bound, and tries once more at the bound itself
    const waited = time.sleeps.reduce((a, b) => a + b, 0);
    assert.equal(waited, bound.totalMs);
  });

  test("a failure an election does not cause is thrown at once, unretried", async () => {
    const time = fakeTime();
    let tries = 0;
    const bad = new ValidationError("TOO_LARGE", "too large");
    await assert.rejects(
      withElectionRetry(
        "x",
        () => {
          tries++;
          return Promise.reject(bad);
        },
        { bound, time },
      ),
      (e) => e === bad,
    );
    assert.equal(tries, 1);
    assert.deepEqual(time.sleeps, []);
  });

  test("each try is told the time left, and tryTimeout caps a request's timeout by it", async () => {
    const time = fakeTime();
    const left: number[] = [];
    await withElectionRetry(
      "x",
      (remaining) => {
        left.push(remaining);
        time.t += 1_000; // each try costs a second
        return left.length < 3 ? Promise.reject(new TimeoutError()) : Promise.resolve();
      },
      { bound, time },
    );
    assert.deepEqual(left, [15_000, 13_900, 12_700]);
    assert.equal(tryTimeout(10_000, 15_000), 10_000);
    assert.equal(tryTimeout(10_000, 2_500), 2_500);
    assert.equal(tryTimeout(10_000, 0), 1_000);
  });
});
