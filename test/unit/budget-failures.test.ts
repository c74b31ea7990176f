// maxEvaluationJobs and the failure classes (docs/steering.md, "Budget" and "Failures"): counts
// that add up for every scheduler, PanDA's maxAttempts for the user's failures, a bound of its own
// for the site's, and a back-off that keeps a broken agent from burning a point in a moment.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { budgetNote, countsLine, renderShow } from "../../client/render.ts";
import { progressLine } from "../../client/verbs/watch.ts";
import { MAX_SITE_FAILURES, type FailureClass } from "../../protocol/failures.ts";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { TaskDetail, TaskSummary } from "../../protocol/api.ts";
import { Rng } from "../../steering/core/rng.ts";
import type { AgentRec } from "../../steering/core/agentRegistry.ts";
import type { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import { LogEvent } from "../../steering/core/events.ts";
import { agentsToAvoid, retryReadyAt } from "../../steering/core/retryPolicy.ts";
import { detail, summarize } from "../../steering/core/views.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { ALL, schedSpec, Sim } from "./fixtures/schedulerSim.ts";

const point = (d: Driver, id: number) => d.engine.points.get(id)!;

/** Every count line adds up, and the budget's `used` is the attempts dispatched. */
function checkCounts(s: TaskSummary): void {
  const c = s.counts;
  const line = countsLine(s);
  const states =
    c.done + c.failed + c.stopped + c.paused + c.budgetSpent + c.running + c.queued + c.cancelled;
  assert.equal(states, c.points, `the states add up to the points: ${line}`);
  assert.equal(c.evaluated, c.done + c.failed + c.stopped + c.paused, line);
  assert.ok(s.budget, "the summary has the budget");
  assert.equal(s.budget.used, c.jobs, line);
  assert.ok(s.budget.used <= s.budget.limit, `never past maxEvaluationJobs: ${line}`);
}

/** At the end: every point ended, and one whose attempts failed has PanDA's very large loss. */
function checkEnded(e: TaskEngine): void {
  const s = summarize(e);
  checkCounts(s);
  assert.equal(s.counts.running + s.counts.queued + s.counts.cancelled, 0, countsLine(s));
  for (const p of e.points.values()) {
    const why = `p${p.pointId} ${p.state} after ${p.failures}+${p.siteFailures} failures: ${countsLine(s)}`;
    if (p.state === "failed") {
      assert.ok(p.failures === e.spec.maxAttempts || p.siteFailures === MAX_SITE_FAILURES, why);
      assert.equal(p.loss, FAILED_POINT_LOSS, why);
    }
    if (p.state === "budget-spent") {
      assert.ok(s.budget?.spent, why);
      assert.match(countsLine(s), /budget spent \(\d+\/\d+ jobs\)/);
      if (p.failures + p.siteFailures > 0) assert.equal(p.loss, FAILED_POINT_LOSS, why);
    }
  }
}

const CLASSES: FailureClass[] = ["payload", "image", "oom", "timeout", "node-lost", "infrastructure"];

void describe("counts add up over random runs", () => {
  for (const [name, cfg] of ALL) {
    void it(`${name}: random failures of every class and budgets`, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const rng = new Rng(seed * 7919);
        const d = new Driver(
          schedSpec(cfg, { maxEvaluationJobs: rng.int(3, 40), maxAttempts: rng.int(1, 3) }),
          "42",
          seed,
        );
        const sim = new Sim(d, {
          failAt: () => rng.next() < 0.08,
          failClass: () => CLASSES[rng.int(0, CLASSES.length - 1)]!,
        });
        let ended = false;
        for (let i = 0; i < 20_000 && !ended; i++) {
          sim.pump();
          checkCounts(summarize(d.engine));
          if (d.engine.isComplete()) {
            d.state("finished");
            ended = true;
          } else if (!sim.step()) throw new Error(`${name} seed ${seed}: stuck`);
        }
        assert.ok(ended, `${name} seed ${seed} finished`);
        checkEnded(d.engine);
      }
    });
  }

  void it("no scheduler: random failures of every class and budgets", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = new Rng(seed);
      const d = new Driver(
        spec({
          maxPoints: rng.int(1, 12),
          nPointsPerIteration: 3,
          nParallelEvaluation: rng.int(1, 4),
          maxEvaluationJobs: rng.int(1, 30),
          maxAttempts: rng.int(1, 3),
        }),
        "42",
        seed,
      );
      const running: Array<{ jobId: string; attempt: number }> = [];
      for (let i = 0; i < 5000; i++) {
        d.sampleAll();
        for (let ref = d.dispatch(); ref; ref = d.dispatch()) {
          d.claim(ref);
          running.push(ref);
        }
        checkCounts(summarize(d.engine));
        if (d.engine.isComplete()) break;
        const ref = running.splice(rng.int(0, running.length - 1), 1)[0];
        assert.ok(ref, "something runs while the task is not complete");
        const roll = rng.next();
        if (roll < 0.5) d.finish(ref, "ok", rng.next());
        else if (roll < 0.6) d.lose(ref);
        else
          d.apply({
            ...d.finishEvent(ref, "failed", null),
            failureClass: CLASSES[rng.int(0, CLASSES.length - 1)]!,
          });
      }
      assert.ok(d.engine.isComplete(), `seed ${seed} complete`);
      d.state("finished");
      checkEnded(d.engine);
    }
  });
});

/** One attempt of point 0 failing with `cls`, claimed by `agent`. */
function failOnce(d: Driver, cls: FailureClass, agent = "agent-1"): void {
  const ref = d.dispatch();
  assert.ok(ref, "an attempt is dispatched");
  d.claim(ref, "site-a", agent);
  d.apply({ ...d.finishEvent(ref, "failed", null, "site-a", agent), failureClass: cls });
}

void describe("the failure class picks the policy", () => {
  for (const cls of ["payload", "oom", "timeout"] as const) {
    void it(`${cls}: counts against maxAttempts, then PanDA's very large loss`, () => {
      const d = new Driver(
        spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 3, maxEvaluationJobs: 10 }),
      );
      d.sampleAll();
      failOnce(d, cls);
      failOnce(d, cls);
      assert.equal(point(d, 0).state, "queued");
      failOnce(d, cls);
      const p = point(d, 0);
      assert.equal(p.state, "failed");
      assert.equal(p.failures, 3);
      assert.equal(p.failureClass, cls);
      assert.equal(p.loss, FAILED_POINT_LOSS);
    });
  }

  for (const cls of ["image", "infrastructure", "node-lost"] as const) {
    void it(`${cls}: does not burn the user's attempts; MAX_SITE_FAILURES ends the point with the reason`, () => {
      const d = new Driver(
        spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 1, maxEvaluationJobs: 10 }),
      );
      d.sampleAll();
      for (let i = 1; i < MAX_SITE_FAILURES; i++) {
        failOnce(d, cls);
        const p = point(d, 0);
        assert.equal(p.state, "queued", `${i} ${cls} failures do not end a point with maxAttempts 1`);
        assert.equal(p.failures, 0);
      }
      failOnce(d, cls);
      const p = point(d, 0);
      assert.equal(p.state, "failed");
      assert.equal(p.siteFailures, MAX_SITE_FAILURES);
      assert.equal(p.failureClass, cls);
      assert.equal(p.error, "exit code 1");
      assert.equal(p.loss, FAILED_POINT_LOSS);
      const view = detail(d.engine).points[0]!;
      assert.equal(view.failureClass, cls);
      assert.deepEqual(
        view.history?.map((h) => h.failureClass),
        Array.from({ length: MAX_SITE_FAILURES }, () => cls),
      );
    });
  }

  void it("preempted: a hand-back is recorded with its class and counts against nothing", () => {
    const d = new Driver(
      spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 1, maxEvaluationJobs: 10 }),
    );
    d.sampleAll();
    const ref = d.dispatch()!;
    d.claim(ref);
    d.finish(ref, "preempted", null);
    const p = point(d, 0);
    assert.equal(p.state, "queued");
    assert.equal(p.failures + p.siteFailures, 0);
    assert.equal(p.history[0]?.failureClass, "preempted");
  });

  void it("the user's and the site's failures have separate bounds", () => {
    const d = new Driver(
      spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 2, maxEvaluationJobs: 10 }),
    );
    d.sampleAll();
    failOnce(d, "image");
    failOnce(d, "payload");
    failOnce(d, "image");
    assert.equal(point(d, 0).state, "queued", "1 payload < 2, 2 image < 3");
    failOnce(d, "payload");
    assert.equal(point(d, 0).state, "failed");
    assert.equal(point(d, 0).attempts, 4);
  });

  void it("a result from an agent before classes: the class comes from its error code", () => {
    const d = new Driver(
      spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 1, maxEvaluationJobs: 10 }),
    );
    d.sampleAll();
    const ref = d.dispatch()!;
    d.claim(ref);
    const { failureClass: _, ...old } = d.finishEvent(ref, "failed", null);
    const ev = LogEvent.parse({
      ...old,
      error: {
        code: "IMAGE_MISSING",
        message: "image gridtune/none:1 is not on this agent",
        retryable: false,
      },
    });
    d.apply(ev);
    assert.equal(point(d, 0).state, "queued", "a missing image does not use the only attempt");
    assert.equal(point(d, 0).failureClass, "image");
  });

  void it("an image failure waits its back-off (literal clock) and the retry avoids the agent", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    failOnce(d, "image", "agent-1");
    const failedAt = d.clock;
    const backoff = { baseMs: 20_000, maxMs: 600_000, jitter: 0.5 };
    const readyAt = (p: Parameters<typeof retryReadyAt>[1]) => retryReadyAt(backoff, p);
    const soon = d.engine.nextReady(failedAt + 100, readyAt);
    assert.equal(soon.job, null, "not dispatched again 0.1 s after the failure");
    assert.ok(soon.wakeAt !== null && soon.wakeAt >= failedAt + 10_000, `wakes at ${soon.wakeAt}`);
    const later = d.engine.nextReady(soon.wakeAt, readyAt);
    assert.equal(later.job?.attempt, 2);
    const agent = (name: string): AgentRec =>
      ({ agent: name, site: "site-a", draining: false, freeSlots: 1, lastSeen: soon.wakeAt }) as AgentRec;
    assert.deepEqual(
      agentsToAvoid(later.job, "site-a", [agent("agent-1"), agent("agent-2")], soon.wakeAt, 30_000),
      ["agent-1"],
    );
  });
});

/** Two points, a budget of one job, that job run to the end: point 1 can get no job. */
function budgetOfOneUsed(): Driver {
  const d = new Driver(
    spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 1, maxEvaluationJobs: 1 }),
  );
  d.sampleAll();
  const ref = d.dispatch()!;
  d.claim(ref);
  d.finish(ref, "ok", 0.5);
  return d;
}

void describe("the budget: maxEvaluationJobs", () => {
  void it("ends the points it cannot pay for as budget-spent, and every summary says so", () => {
    // 4 points, 5 attempts: p0 fails 3 times, p1 twice, p2 and p3 never run
    const d = new Driver(
      spec({ maxPoints: 4, nPointsPerIteration: 4, nParallelEvaluation: 1, maxEvaluationJobs: 5 }),
    );
    d.sampleAll();
    for (let i = 0; i < 5; i++) {
      const ref = d.dispatch()!;
      d.claim(ref);
      d.finish(ref, "failed", null);
    }
    assert.equal(d.dispatch(), null, "nothing past the budget");
    assert.equal(d.engine.isComplete(), true);
    d.state("finished");
    assert.deepEqual(
      [0, 1, 2, 3].map((id) => [point(d, id).state, point(d, id).attempts, point(d, id).loss]),
      [
        ["failed", 3, FAILED_POINT_LOSS],
        ["budget-spent", 2, FAILED_POINT_LOSS],
        ["budget-spent", 0, null],
        ["budget-spent", 0, null],
      ],
    );
    const s = TaskSummary.parse(summarize(d.engine));
    checkEnded(d.engine);
    assert.equal(s.counts.budgetSpent, 3);
    assert.deepEqual(s.budget, { used: 5, limit: 5, spent: true });
    assert.equal(budgetNote(s), "budget spent (5/5 jobs)");
    assert.match(
      countsLine(s),
      /^4\/4 points: 0 done, 1 failed, 3 budget-spent, 0 running, 0 queued; .*budget spent \(5\/5 jobs\)$/,
    );
    assert.match(progressLine(s), /budget spent \(5\/5 jobs\)/);
    const shown = renderShow(TaskDetail.parse(detail(d.engine)));
    assert.match(shown, /budget spent \(5\/5 jobs\)/);
    assert.match(shown, /p0 \[payload error\]: exit code 1/);
  });

  void it("a kill cancels the queued points, even with the budget spent", () => {
    const d = budgetOfOneUsed();
    d.state("killed");
    assert.equal(point(d, 1).state, "cancelled");
    assert.equal(summarize(d.engine).counts.budgetSpent, 0);
  });

  void it("a budget-spent point can be retried once the budget allows", () => {
    const d = budgetOfOneUsed();
    d.state("finished");
    assert.equal(point(d, 1).state, "budget-spent");
    d.requeue([1]);
    assert.equal(point(d, 1).state, "queued");
  });
});
