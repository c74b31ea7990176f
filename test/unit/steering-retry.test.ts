// The retry policy of a failing steering program (steering/core/task/steeringIterations.ts), with
// literal times: a failed iteration is due again only after its back-off, twice, and the third
// failure in a row (or a refusal no retry can mend) ends generation and names the task's failure;
// an iteration that gives an answer starts the count again. Iterations are numbered over the task.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backoff } from "../../protocol/backoff.ts";
import type { LogEventOf } from "../../steering/core/events.ts";
import { STEERING_MAX_ATTEMPTS, steeringRetryAt } from "../../steering/core/task/steeringIterations.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const B: Backoff = { baseMs: 1000, maxMs: 3000, jitter: 0 };

function iteration(
  over: Partial<LogEventOf<"steering-iteration">> & Pick<LogEventOf<"steering-iteration">, "at" | "outcome">,
): LogEventOf<"steering-iteration"> {
  return {
    type: "steering-iteration",
    taskId: "1",
    segment: 0,
    startedAt: over.at - 10,
    added: 0,
    exitCode: over.outcome === "failed" ? 1 : 0,
    reason: over.outcome === "failed" ? "exited with code 1" : null,
    retryAt: null,
    logKey: "tasks/1/steering/s0-g0-f0.log.txt",
    ...over,
  };
}

void describe("steering program retries", () => {
  void it("backs off 1 s, then 2 s, and gives up at the third failure in a row", () => {
    assert.equal(STEERING_MAX_ATTEMPTS, 3);
    assert.equal(steeringRetryAt(B, 0, true, 10_000, "k"), 11_000);
    assert.equal(steeringRetryAt(B, 1, true, 20_000, "k"), 22_000);
    assert.equal(steeringRetryAt(B, 2, true, 30_000, "k"), null);
    // a refusal (a refused configuration or sandbox) is not retried at all
    assert.equal(steeringRetryAt(B, 0, false, 10_000, "k"), null);
    // the jitter comes from the key: the same wait after a restart
    const j: Backoff = { ...B, jitter: 0.5 };
    const a = steeringRetryAt(j, 0, true, 0, "tasks/1/steering/s0-g0-f0.log.txt");
    assert.equal(a, steeringRetryAt(j, 0, true, 0, "tasks/1/steering/s0-g0-f0.log.txt"));
    assert.ok(a !== null && a >= 500 && a <= 1000, String(a));
  });

  void it("holds the segment's iteration until retryAt, and names the failure once generation ended", () => {
    const d = new Driver(spec({ steeringExec: "opt %IN %OUT", maxPoints: 4, nPointsPerIteration: 2 }));
    const e = d.engine;
    assert.deepEqual(
      e.steeringDue().map((x) => [x.failures, x.notBefore]),
      [[0, 0]],
    );
    d.apply(iteration({ at: 10_000, outcome: "failed", retryAt: 11_000 }));
    assert.deepEqual(
      e.steeringDue().map((x) => [x.n, x.failures, x.notBefore]),
      [[2, 1, 11_000]],
    );
    assert.equal(e.steering.summary().failure, null, "a failure to be retried is not the task's failure");
    d.apply(iteration({ at: 12_000, outcome: "failed", retryAt: 14_000 }));
    assert.deepEqual(
      e.steeringDue().map((x) => [x.failures, x.notBefore]),
      [[2, 14_000]],
    );
    d.apply(iteration({ at: 15_000, outcome: "failed", retryAt: null, reason: "exited with code 2: boom" }));
    // generation ends through the points-added event the dispatcher commits with it
    for (const ev of e.steeringResult(0, 0, [], true, 15_000)) d.apply(ev);
    assert.deepEqual(e.steeringDue(), []);
    const s = e.steering.summary();
    assert.equal(s.iterations, 3);
    assert.equal(s.failed, 3);
    assert.equal(s.failure, "iteration 3 failed: exited with code 2: boom");
    assert.equal(s.last?.iteration, 3);
    assert.equal(s.last?.hasLog, true);
  });

  void it("an answer resets the count of failures in a row", () => {
    const d = new Driver(spec({ steeringExec: "opt %IN %OUT", maxPoints: 4, nPointsPerIteration: 2 }));
    const e = d.engine;
    d.apply(iteration({ at: 1_000, outcome: "failed", retryAt: 2_000 }));
    d.apply(iteration({ at: 3_000, outcome: "points", added: 2 }));
    for (const ev of e.steeringResult(
      0,
      0,
      [
        { x: 0.1, n: 1 },
        { x: 0.2, n: 1 },
      ],
      false,
      3_000,
    ))
      d.apply(ev);
    assert.equal(e.steering.failures(0), 0);
    assert.equal(e.steering.notBefore(0), 0);
    assert.equal(e.steering.summary().failure, null);
    assert.deepEqual(
      e.steering.list.map((i) => [i.iteration, i.outcome, i.added]),
      [
        [1, "failed", 0],
        [2, "points", 2],
      ],
    );
  });
});
