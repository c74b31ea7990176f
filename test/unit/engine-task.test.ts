import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { MAX_SITE_FAILURES } from "../../protocol/failures.ts";
import { Job } from "../../protocol/messages.ts";
import { TaskDetail, TaskSummary } from "../../protocol/api.ts";
import { JOB_ID_RE } from "../../protocol/names.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { MAX_POINTS_PER_CALL } from "../../steering/core/task/sampling.ts";
import { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import { detail, summarize } from "../../steering/core/views.ts";
import { Driver, engineState, spec } from "./fixtures/engineKit.ts";

const pointsOf = (d: Driver) => [...d.engine.points.values()];
const point = (d: Driver, id: number) => {
  const p = d.engine.points.get(id);
  assert.ok(p, `no point ${id}`);
  return p;
};

/** Two points, maxAttempts 1: point 0 fails, point 1 succeeds. */
function oneFailed(over: Parameters<typeof spec>[0] = {}): Driver {
  const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, maxAttempts: 1, ...over }));
  d.sampleAll();
  const a = d.dispatch()!;
  d.claim(a);
  d.finish(a, "failed", null);
  const b = d.dispatch()!;
  d.claim(b);
  d.finish(b, "ok", 0.7);
  return d;
}

void describe("TaskEngine: PanDA iteration rule", () => {
  void it("minUnevaluatedPoints 0: samples nPointsPerIteration, then only once every point is evaluated", () => {
    const d = new Driver(spec({ maxPoints: 5, nPointsPerIteration: 2, nParallelEvaluation: 5 }));
    assert.equal(d.engine.isComplete(), false, "nothing sampled yet");
    const first = d.engine.proposeSampling(d.tick());
    assert.ok(first);
    assert.equal(first.type, "points-added");
    assert.equal(first.taskId, "42");
    assert.equal(first.segment, 0);
    assert.equal(first.exhausted, false);
    assert.deepEqual(
      first.points.map((p) => p.pointId),
      [0, 1],
    );
    // proposing does not change state: the same proposal again until it is applied
    assert.deepEqual(d.engine.proposeSampling(first.at), first);
    assert.equal(d.engine.points.size, 0);
    d.apply(first);
    assert.equal(d.engine.proposeSampling(d.tick()), null, "2 unevaluated points: nothing due");

    const a = d.dispatch();
    const b = d.dispatch();
    assert.ok(a && b);
    d.claim(a);
    d.finish(a, "ok", 0.5);
    assert.equal(d.engine.proposeSampling(d.tick()), null, "1 point still unevaluated");
    d.claim(b);
    assert.equal(d.engine.proposeSampling(d.tick()), null, "a running point is unevaluated");
    d.finish(b, "ok", 0.4);

    const second = d.engine.proposeSampling(d.tick());
    assert.deepEqual(
      second?.points.map((p) => p.pointId),
      [2, 3],
    );
    d.apply(second);
    d.runToCompletion();
    assert.equal(d.engine.points.size, 5, "never more than maxPoints");
    const sizes = d.log
      .filter((e) => e.type === "points-added")
      .map((e) => (e.type === "points-added" ? e.points.length : 0));
    assert.deepEqual(sizes, [2, 2, 1], "the last iteration asks only for what is left of maxPoints");
    assert.equal(d.engine.proposeSampling(d.tick()), null);
    assert.equal(d.engine.isComplete(), true);
  });

  void it("minUnevaluatedPoints > 0: tops up by nPointsPerIteration − minUnevaluatedPoints when unevaluated points fall below the minimum", () => {
    const d = new Driver(
      spec({ maxPoints: 9, nPointsPerIteration: 4, minUnevaluatedPoints: 2, nParallelEvaluation: 9 }),
    );
    const sizes = () =>
      d.log
        .filter((e) => e.type === "points-added")
        .map((e) => (e.type === "points-added" ? e.points.length : 0));
    d.sampleAll();
    assert.deepEqual(sizes(), [2], "0 → +2; 2 unevaluated is not below 2: wait");
    const refs = [d.dispatch(), d.dispatch()];
    for (const r of refs) d.claim(r!);
    assert.equal(d.engine.proposeSampling(d.tick()), null, "2 running, not below 2");
    d.finish(refs[0]!, "ok", 1);
    const ev = d.engine.proposeSampling(d.tick());
    assert.equal(ev?.points.length, 2, "1 unevaluated < 2: 4 − 2 new points");
    d.apply(ev);
    d.finish(refs[1]!, "ok", 1);
    assert.equal(d.engine.proposeSampling(d.tick()), null, "2 unevaluated again: wait");
    d.runToCompletion();
    assert.deepEqual(sizes(), [2, 2, 2, 2, 1], "capped at maxPoints 9");
    assert.equal(d.engine.points.size, 9);
  });

  void it("a huge iteration is sampled a bounded part per call, the rest owed to the next calls", () => {
    const d = new Driver(
      spec({ maxPoints: 1_000_000, nPointsPerIteration: 1_000_000, nParallelEvaluation: 1 }),
    );
    const ev = d.engine.proposeSampling(d.tick());
    assert.ok(ev);
    assert.ok(ev.points.length <= MAX_POINTS_PER_CALL, `${ev.points.length} points in one call`);
    assert.equal(ev.points.length + ev.more, 1_000_000, "the rest of the iteration is owed");
    d.apply(ev);
    assert.equal(d.engine.samplingOwed(), true);
    const next = d.engine.proposeSampling(d.tick());
    assert.equal(next?.points[0]?.pointId, ev.points.length, "the next part follows on");
  });

  void it("built-in sampling stops once the segment's maxEvaluationJobs are used up", () => {
    const d = new Driver(
      spec({ maxPoints: 10, nPointsPerIteration: 2, maxEvaluationJobs: 2, nParallelEvaluation: 2 }),
    );
    d.sampleAll();
    for (const r of [d.dispatch(), d.dispatch()]) {
      d.claim(r!);
      d.finish(r!, "ok", 1);
    }
    assert.equal(d.engine.proposeSampling(d.tick()), null, "2 of 2 evaluation jobs used: no new points");
    assert.equal(d.engine.isComplete(), true);
  });

  void it("point ids are consecutive over iterations and job ids follow t<task>-p<point>-j1", () => {
    const d = new Driver(spec({ maxPoints: 4 }));
    d.runToCompletion();
    assert.deepEqual(
      pointsOf(d).map((p) => p.pointId),
      [0, 1, 2, 3],
    );
    for (const p of pointsOf(d)) {
      assert.equal(p.job.jobId, `t42-p${p.pointId}-j1`);
      assert.match(p.job.jobId, JOB_ID_RE);
      assert.equal(p.state, "done");
      assert.equal(p.attempts, 1);
    }
  });
});

void describe("TaskEngine: dispatch limits", () => {
  void it("nParallelEvaluation bounds the jobs in flight (dispatched or running)", () => {
    const d = new Driver(spec({ maxPoints: 6, nPointsPerIteration: 6, nParallelEvaluation: 2 }));
    d.sampleAll();
    assert.equal(d.engine.points.size, 6);
    const a = d.dispatch();
    const b = d.dispatch();
    assert.ok(a && b);
    assert.equal(d.engine.inFlight(), 2);
    assert.equal(d.engine.nextDispatchable(), null, "2 in flight, limit 2");
    d.claim(a);
    assert.equal(d.engine.nextDispatchable(), null, "claimed jobs still count");
    assert.deepEqual(
      d.engine
        .activeJobs()
        .map((j) => j.jobId)
        .sort(),
      [a.jobId, b.jobId].sort(),
    );
    d.finish(a, "ok", 0.1);
    assert.equal(d.engine.inFlight(), 1);
    const c = d.engine.nextDispatchable();
    assert.equal(c?.jobId, "t42-p2-j1", "FIFO by point");
  });

  void it("maxEvaluationJobs bounds all attempts, retries included, and then the task is complete", () => {
    const d = new Driver(
      spec({ maxPoints: 3, nPointsPerIteration: 3, maxEvaluationJobs: 4, maxAttempts: 3 }),
    );
    d.sampleAll();
    let attempts = 0;
    for (;;) {
      const r = d.dispatch();
      if (!r) break;
      attempts++;
      d.claim(r);
      d.finish(r, "failed", null);
    }
    assert.equal(attempts, 4);
    assert.equal(d.engine.attemptsUsedIn(0), 4);
    assert.equal(d.engine.inFlight(), 0);
    assert.equal(d.engine.isComplete(), true, "budget spent: the task is over");
    assert.equal(point(d, 0).state, "failed", "3 failed attempts");
    assert.equal(point(d, 1).attempts, 1);
  });

  void it("maxEvaluationJobs defaults to 2 × maxPoints", () => {
    const s = spec({ maxPoints: 2, nPointsPerIteration: 2, maxAttempts: 20 });
    const d = new Driver(s);
    assert.equal(d.engine.task.maxEvaluationJobs, 4);
    d.sampleAll();
    let n = 0;
    for (let r = d.dispatch(); r; r = d.dispatch()) {
      n++;
      d.claim(r);
      d.finish(r, "failed", null);
    }
    assert.equal(n, 4);
    assert.equal(d.engine.isComplete(), true);
  });
});

void describe("TaskEngine: failures and retries", () => {
  void it("a failed attempt is retried as attempt+1 of the same job until maxAttempts, then the point gets FAILED_POINT_LOSS", () => {
    const d = new Driver(spec({ maxPoints: 4, nPointsPerIteration: 2, maxAttempts: 3 }));
    d.sampleAll();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = d.dispatch();
      assert.deepEqual(
        r,
        { jobId: "t42-p0-j1", attempt },
        `attempt ${attempt} of point 0 comes first (FIFO)`,
      );
      d.claim(r);
      d.finish(r, "failed", null);
      const p = point(d, 0);
      assert.equal(p.failures, attempt);
      assert.equal(p.error, "exit code 1");
      assert.equal(p.errorCode, "EVALUATION_FAILED");
      if (attempt < 3) {
        assert.equal(p.state, "queued");
        assert.equal(p.job.state, "queued");
        assert.equal(p.job.attempt, attempt + 1);
        assert.equal(p.loss, null);
      }
    }
    const p = point(d, 0);
    assert.equal(p.state, "failed");
    assert.equal(p.job.state, "failed");
    assert.equal(p.loss, FAILED_POINT_LOSS);
    assert.equal(p.attempts, 3);
    // the task goes on
    const next = d.dispatch();
    assert.deepEqual(next, { jobId: "t42-p1-j1", attempt: 1 });
    d.claim(next);
    d.finish(next, "ok", 0.3);
    assert.ok(
      d.engine.proposeSampling(d.tick()),
      "point 0 failed counts as evaluated: next iteration is due",
    );
  });

  void it("ok without a loss is a failed attempt", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "ok", null);
    assert.equal(point(d, 0).failures, 1);
    assert.equal(point(d, 0).job.attempt, 2);
  });

  void it("job-lost is a site failure (node-lost, UNAVAILABLE, the reason recorded): MAX_SITE_FAILURES bounds it, not maxAttempts; a lost queued job is ignored", () => {
    const d = new Driver(
      spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 2, maxEvaluationJobs: 10 }),
    );
    d.sampleAll();
    d.lose({ jobId: "t42-p0-j1", attempt: 1 }, "never dispatched");
    assert.equal(point(d, 0).siteFailures, 0, "a queued job cannot be lost");
    const r = d.dispatch()!;
    d.lose(r, "agent agent-1 missed 3 heartbeats");
    let p = point(d, 0);
    assert.equal(p.failures, 0, "a lost node is not the user's failure");
    assert.equal(p.siteFailures, 1);
    assert.equal(p.errorCode, "UNAVAILABLE");
    assert.equal(p.failureClass, "node-lost");
    assert.equal(p.error, "agent agent-1 missed 3 heartbeats");
    assert.equal(p.job.attempt, 2);
    for (let i = 2; i <= MAX_SITE_FAILURES; i++) {
      assert.equal(point(d, 0).state, "queued", `${i - 1} lost < MAX_SITE_FAILURES, whatever maxAttempts`);
      const r2 = d.dispatch()!;
      d.claim(r2);
      d.lose(r2);
    }
    p = point(d, 0);
    assert.equal(p.state, "failed");
    assert.equal(p.loss, FAILED_POINT_LOSS);
    assert.equal(p.history.at(-1)?.failureClass, "node-lost");
    assert.equal(d.engine.isComplete(), true);
  });

  void it("a preempted attempt is requeued as attempt+1 without counting a failure", () => {
    const d = new Driver(
      spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 2, maxEvaluationJobs: 10 }),
    );
    d.sampleAll();
    for (let i = 1; i <= 4; i++) {
      const r = d.dispatch()!;
      assert.equal(r.attempt, i);
      d.claim(r);
      d.finish(r, "preempted", null);
      const p = point(d, 0);
      assert.equal(p.state, "queued");
      assert.equal(p.failures, 0, "preemption is not a failure");
      assert.equal(p.loss, null);
    }
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "failed", null);
    assert.equal(point(d, 0).state, "queued", "1 failure < maxAttempts 2");
    const r2 = d.dispatch()!;
    d.claim(r2);
    d.finish(r2, "ok", 0.2);
    assert.equal(point(d, 0).state, "done");
    assert.equal(point(d, 0).loss, 0.2);
    assert.equal(point(d, 0).error, null, "success clears the last error");
  });

  void it("a stopped attempt stops the point: not retried, counted as evaluated", () => {
    const d = new Driver(spec({ maxPoints: 3, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "stopped", null);
    const p = point(d, 0);
    assert.equal(p.state, "stopped");
    assert.equal(p.job.state, "stopped");
    assert.equal(p.failures, 0);
    assert.equal(p.loss, null);
    assert.equal(d.engine.nextDispatchable(), null);
    assert.equal(d.engine.proposeSampling(d.tick())?.points.length, 1);
  });
});

void describe("TaskEngine: fencing and idempotence", () => {
  void it("fence accepts the current attempt on its site (claim: any agent; result: the claiming agent)", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const queued = d.engine.fence("t42-p0-j1", 1, "site-a", null);
    assert.equal(queued.ok, false);
    assert.ok(!queued.ok && queued.reason.includes("queued"), "a queued job cannot be claimed");
    const r = d.dispatch("site-a")!;
    const f = d.engine.fence(r.jobId, r.attempt, "site-a", "agent-9");
    assert.ok(f.ok, "a dispatched job may be claimed by any agent of its site");
    assert.equal(f.ok && f.job.jobId, r.jobId);
    d.claim(r, "site-a", "agent-1");
    assert.ok(d.engine.fence(r.jobId, r.attempt, "site-a", "agent-1").ok);
    assert.ok(d.engine.fence(r.jobId, r.attempt, "site-a", null).ok);
  });

  void it("fence refuses another site, naming both sites", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch("site-a")!;
    const f = d.engine.fence(r.jobId, r.attempt, "site-b", null);
    assert.equal(f.ok, false);
    assert.ok(
      !f.ok && f.reason.includes("site site-a") && f.reason.includes("site-b") && f.reason.includes(r.jobId),
      !f.ok ? f.reason : "",
    );
  });

  void it("fence refuses another agent once claimed, naming both agents", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r, "site-a", "agent-1");
    const f = d.engine.fence(r.jobId, r.attempt, "site-a", "agent-2");
    assert.equal(f.ok, false);
    assert.ok(
      !f.ok && f.reason.includes("agent agent-1") && f.reason.includes("agent-2"),
      !f.ok ? f.reason : "",
    );
  });

  void it("fence refuses a superseded attempt, naming both attempts, and an unknown job", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "failed", null);
    d.dispatch();
    const f = d.engine.fence(r.jobId, 1, "site-a", "agent-1");
    assert.equal(f.ok, false);
    assert.ok(
      !f.ok && /attempt 1 of t42-p0-j1 was superseded by attempt 2/.test(f.reason),
      !f.ok ? f.reason : "",
    );
    const u = d.engine.fence("t42-p7-j1", 1, "site-a", null);
    assert.ok(!u.ok && u.reason.includes("unknown job t42-p7-j1"));
    const fin = d.engine.fence(r.jobId, 2, "site-a", null);
    assert.ok(fin.ok, "attempt 2 is dispatched");
  });

  void it("fence refuses a finished attempt, naming its state", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "ok", 1);
    const f = d.engine.fence(r.jobId, r.attempt, "site-a", "agent-1");
    assert.ok(!f.ok && f.reason.includes("is done"), !f.ok ? f.reason : "");
  });

  void it("events for a superseded attempt change nothing", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1, maxAttempts: 3 }));
    d.sampleAll();
    const r1 = d.dispatch()!;
    d.claim(r1);
    d.finish(r1, "failed", null);
    const before = engineState(d.engine);
    d.finish(r1, "ok", 0.01);
    d.claim(r1);
    d.lose(r1);
    d.apply({ type: "job-dispatched", taskId: "42", at: d.tick(), ...r1, site: "site-z" });
    d.apply({ type: "job-progress", taskId: "42", at: d.tick(), ...r1, resource: 3, metrics: { loss: 0.3 } });
    assert.deepEqual(engineState(d.engine), before);
    assert.equal(point(d, 0).loss, null);
    assert.equal(point(d, 0).failures, 1);
  });

  void it("a progress report stored twice (redelivered, or sent twice) is listed once", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    const report = (resource: number, loss: number) =>
      d.apply({ type: "job-progress", taskId: "42", at: d.tick(), ...r, resource, metrics: { loss } });
    report(1, 0.5);
    report(2, 0.4);
    report(2, 0.4); // the same report again, with a later time
    report(1, 0.5); // an older one redelivered late
    report(3, 0.3);
    assert.deepEqual(
      point(d, 0).reports.map((x) => [x.resource, x.loss]),
      [
        [1, 0.5],
        [2, 0.4],
        [3, 0.3],
      ],
    );
  });

  void it("applying the same job-finished twice counts once (ok and failed)", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 }));
    d.sampleAll();
    const a = d.dispatch()!;
    const b = d.dispatch()!;
    d.claim(a);
    d.claim(b);
    const okEv = d.finishEvent(a, "ok", 0.5);
    d.apply(okEv);
    const s1 = summarize(d.engine);
    d.apply(okEv);
    assert.deepEqual(summarize(d.engine), s1);
    const failEv = d.finishEvent(b, "failed", null);
    d.apply(failEv);
    d.apply(failEv);
    assert.equal(point(d, 1).failures, 1);
    assert.equal(point(d, 1).job.attempt, 2);
    assert.equal(point(d, 1).attempts, 1);
  });

  void it("job-dispatched and job-claimed applied twice count once", () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.apply({ type: "job-dispatched", taskId: "42", at: d.tick(), ...r, site: "site-a" });
    assert.equal(point(d, 0).attempts, 1);
    assert.equal(d.engine.attemptsUsedIn(0), 1);
    d.claim(r, "site-a", "agent-1");
    d.claim(r, "site-a", "agent-2");
    assert.equal(point(d, 0).agent, "agent-1", "the second claim is ignored");
  });
});

void describe("TaskEngine: task states", () => {
  void it("killed cancels queued points, keeps jobs in flight, stops sampling and dispatching", () => {
    const d = new Driver(spec({ maxPoints: 6, nPointsPerIteration: 4, nParallelEvaluation: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.state("killed");
    assert.equal(d.engine.state, "killed");
    assert.equal(d.engine.finishedAt, d.clock);
    assert.deepEqual(
      pointsOf(d).map((p) => p.state),
      ["running", "cancelled", "cancelled", "cancelled"],
    );
    assert.equal(point(d, 1).job.state, "cancelled");
    assert.equal(d.engine.inFlight(), 1);
    assert.equal(d.engine.nextDispatchable(), null);
    assert.equal(d.engine.proposeSampling(d.tick()), null);
    assert.equal(d.engine.isComplete(), false, "only a running task completes");
    d.finish(r, "failed", null);
    assert.equal(point(d, 0).state, "failed", "no retry in a killed task");
  });

  void it("a preempted attempt in a killed task is not registered as a failed point", {}, () => {
    const d = new Driver(spec({ maxPoints: 1, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.state("killed");
    d.finish(r, "preempted", null);
    const p = point(d, 0);
    assert.equal(p.failures, 0, "a preemption is not a failure");
    assert.notEqual(p.loss, FAILED_POINT_LOSS);
    assert.notEqual(p.state, "failed");
  });

  void it("paused stops sampling and dispatching; running resumes both", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2 }));
    d.sampleAll();
    d.state("paused");
    assert.equal(d.engine.nextDispatchable(), null);
    assert.equal(d.engine.isComplete(), false);
    assert.equal(d.engine.finishedAt, null);
    d.state("running");
    assert.ok(d.engine.nextDispatchable());
  });

  void it("isComplete only once all points are evaluated and sampling is over", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 1 }));
    d.sampleAll();
    const r = d.dispatch()!;
    assert.equal(d.engine.isComplete(), false, "in flight");
    d.claim(r);
    d.finish(r, "ok", 1);
    assert.equal(d.engine.isComplete(), false, "one more point to sample");
    d.runToCompletion();
    assert.equal(d.engine.isComplete(), true);
    d.state("finished");
    assert.equal(d.engine.isComplete(), false);
    assert.equal(d.engine.finishedAt, d.clock);
  });

  void it("points-requeued re-runs failed and cancelled points as a new job (seq+1, attempt 1), and reopens a finished task", () => {
    const d = oneFailed({ maxEvaluationJobs: 10 });
    assert.equal(point(d, 0).state, "failed");
    d.state("finished");
    d.requeue([0, 1, 99]);
    const p = point(d, 0);
    assert.equal(p.state, "queued");
    assert.equal(p.job.jobId, "t42-p0-j2");
    assert.equal(p.job.seq, 2);
    assert.equal(p.job.attempt, 1);
    assert.equal(p.failures, 0);
    assert.equal(p.loss, null);
    assert.equal(p.error, null);
    assert.equal(p.errorCode, null);
    assert.equal(point(d, 1).state, "done", "a done point is not requeued");
    assert.equal(point(d, 1).job.jobId, "t42-p1-j1");
    assert.equal(d.engine.state, "running");
    assert.equal(d.engine.finishedAt, null);
    assert.equal(d.engine.job("t42-p0-j1"), undefined, "the old job id is gone");
    const old = d.engine.fence("t42-p0-j1", 1, "site-a", "agent-1");
    assert.ok(!old.ok && old.reason.includes("t42-p0-j1"));
    const r = d.dispatch()!;
    assert.deepEqual(r, { jobId: "t42-p0-j2", attempt: 1 });
    d.claim(r);
    d.finish(r, "ok", 0.1);
    assert.equal(point(d, 0).state, "done");
    assert.equal(point(d, 0).attempts, 2);
    assert.equal(d.engine.isComplete(), true);
  });

  void it("points-requeued re-runs points cancelled by a kill", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2 }));
    d.sampleAll();
    d.state("finished");
    assert.equal(point(d, 0).state, "cancelled");
    d.requeue([0, 1]);
    assert.deepEqual(
      pointsOf(d).map((p) => [p.state, p.job.jobId]),
      [
        ["queued", "t42-p0-j2"],
        ["queued", "t42-p1-j2"],
      ],
    );
  });
});

void describe("TaskEngine: retry limits", () => {
  void it("points-requeued on a killed task changes nothing, live or replayed from the log", () => {
    const d = oneFailed({ maxPoints: 3, nPointsPerIteration: 3 });
    d.state("killed");
    const before = engineState(d.engine);
    // a log written before steering checked for the kill inside its commit queue may hold this
    d.requeue([0, 2]);
    assert.deepEqual(engineState(d.engine), before);
    assert.equal(point(d, 0).state, "failed");
    assert.equal(point(d, 0).error, "exit code 1");
    assert.equal(point(d, 2).state, "cancelled");
    assert.equal(d.engine.nextDispatchable(), null);
    const replayed = new TaskEngine(d.log[0] as never);
    for (const ev of d.log.slice(1)) replayed.apply(ev);
    assert.deepEqual(engineState(replayed), engineState(d.engine));
  });

  void it("requeueShortfall: each point needs a job of its segment's maxEvaluationJobs, after the queued ones", () => {
    const d = oneFailed({ maxEvaluationJobs: 2 });
    assert.equal(d.engine.attemptsUsedIn(0), 2);
    assert.deepEqual(d.engine.requeueShortfall([0]), [
      { segment: 0, points: 1, used: 2, limit: 2, queued: 0 },
    ]);
    assert.deepEqual(d.engine.requeueShortfall([]), []);
    assert.deepEqual(d.engine.requeueShortfall([99]), [], "unknown points need nothing");
    assert.deepEqual(oneFailed({ maxEvaluationJobs: 3 }).engine.requeueShortfall([0]), []);
    // points already queued take their jobs first
    const q = new Driver(
      spec({ maxPoints: 3, nPointsPerIteration: 3, maxAttempts: 1, maxEvaluationJobs: 3 }),
    );
    q.sampleAll();
    const a = q.dispatch()!;
    q.claim(a);
    q.finish(a, "failed", null);
    assert.deepEqual(q.engine.requeueShortfall([0]), [
      { segment: 0, points: 1, used: 1, limit: 3, queued: 2 },
    ]);
  });
});

void describe("TaskEngine: segments", () => {
  const SEG_A = { a: { method: "categorical", dimension: { categories: ["A1", "A2"] } } };
  const SEG_B = { b: { method: "uniformint", dimension: { low: 100, high: 199 } } };
  const segSpec = () =>
    spec({
      maxPoints: 3,
      nPointsPerIteration: 2,
      nParallelEvaluation: 10,
      evaluationExec: `python train.py --seg=%SEGMENT_NAME "--tag=%SEGMENT_NAME run" %SEGMENT_NAMES`,
      trainingDS: "user.test.ds",
      segments: [
        { name: "seg_A", files: ["f1", "f3"] },
        { name: "seg-B", files: ["f2"] },
      ],
      segmentSearchSpaces: [SEG_A, SEG_B],
    } as never);

  void it("each segment is sampled separately, from its own space; maxPoints counts per segment", () => {
    const d = new Driver(segSpec());
    const evs = d.sampleAll();
    assert.deepEqual(
      evs.map((e) => [e.segment, e.points.length]),
      [
        [0, 2],
        [1, 2],
      ],
    );
    d.runToCompletion();
    const bySeg = [0, 1].map((s) => pointsOf(d).filter((p) => p.segment === s));
    assert.equal(bySeg[0]!.length, 3);
    assert.equal(bySeg[1]!.length, 3);
    for (const p of bySeg[0]!) assert.deepEqual(Object.keys(p.values), ["a"]);
    for (const p of bySeg[1]!) assert.deepEqual(Object.keys(p.values), ["b"]);
    assert.equal(new Set(pointsOf(d).map((p) => p.pointId)).size, 6, "point ids are unique across segments");
    assert.deepEqual(d.engine.segmentNames, ["seg_A", "seg-B"]);
    assert.equal(d.engine.isComplete(), true);
    assert.equal(summarize(d.engine).maxPoints, 6);
  });

  void it("the job budget counts per segment", () => {
    const d = new Driver(
      spec({
        maxPoints: 1,
        nPointsPerIteration: 1,
        maxEvaluationJobs: 2,
        maxAttempts: 5,
        segments: [{ name: "A" }, { name: "B" }],
      }),
    );
    d.sampleAll();
    let n = 0;
    for (let r = d.dispatch(); r; r = d.dispatch()) {
      n++;
      d.claim(r);
      d.finish(r, "failed", null);
    }
    assert.equal(n, 4, "2 attempts in each of 2 segments");
    assert.deepEqual([d.engine.attemptsUsedIn(0), d.engine.attemptsUsedIn(1)], [2, 2]);
    assert.equal(d.engine.isComplete(), true);
  });

  void it(
    "segments draw different points from the same space even when spec.sampler fixes a seed",
    {},
    () => {
      const d = new Driver(
        spec({
          maxPoints: 2,
          segments: [{ name: "A" }, { name: "B" }],
          sampler: { type: "random", seed: 5 },
        } as never),
      );
      const evs = d.sampleAll();
      assert.equal(evs.length, 2);
      assert.notDeepEqual(
        evs[0]!.points.map((p) => p.values),
        evs[1]!.points.map((p) => p.values),
      );
    },
  );

  void it("buildJob substitutes %SEGMENT_NAME inside tokens without splitting, and gives a schema-valid Job", () => {
    const d = new Driver(segSpec());
    d.sampleAll();
    const segB = pointsOf(d).find((p) => p.segment === 1)!;
    const j = buildJob(d.engine, segB.job.jobId);
    Job.parse(j);
    assert.deepEqual(j.evaluation.argv, [
      "python",
      "train.py",
      "--seg=seg-B",
      "--tag=seg-B run",
      "%SEGMENT_NAMES",
    ]);
    assert.equal(j.jobId, segB.job.jobId);
    assert.deepEqual(j.point, segB.values);
  });
});

void describe("jobBuilder: buildJob", () => {
  void it("maps the spec and the current attempt to a schema-valid Job", () => {
    const d = new Driver(
      spec({
        maxPoints: 1,
        nPointsPerIteration: 1,
        evaluationExec: "bash -c 'python train.py --in input.json'",
        evaluationMetrics: "metrics.tgz",
        checkPointToSave: ["ckpt"],
        sandboxKey: "sandbox/abc.tgz",
        resources: { memoryMB: 512, cpus: 1.5, timeoutMinutes: 2, network: "bridge" },
      }),
    );
    d.sampleAll();
    const r = d.dispatch()!;
    d.claim(r);
    d.finish(r, "failed", null);
    const p = point(d, 0);
    const j = buildJob(d.engine, p.job.jobId);
    assert.deepEqual(Job.parse(j), j);
    assert.equal(j.jobId, "t42-p0-j1");
    assert.equal(j.attempt, 2);
    assert.equal(j.taskId, "42");
    assert.equal(j.user, "alice");
    assert.equal(p.segment, 0);
    assert.equal(p.job.target, null, "no resource level: the point is sent as sampled");
    assert.deepEqual(j.point, p.values);
    assert.deepEqual(j.evaluation.argv, ["bash", "-c", "python train.py --in input.json"]);
    assert.equal(j.evaluation.container, "busybox:1.36");
    assert.equal(j.evaluation.inputFile, "input.json");
    assert.equal(j.evaluation.trainingDataFile, "input_ds.json");
    assert.equal(j.evaluation.outputFile, "output.json");
    assert.equal(j.evaluation.metricsFile, "metrics.tgz");
    assert.equal(j.evaluation.metaFile, null);
    assert.deepEqual(j.evaluation.checkPointToSave, ["ckpt"]);
    assert.equal(j.evaluation.checkPointIntervalMs, 5 * 60_000);
    assert.equal(j.evaluation.checkPointLimitBytes, 100 * 1024 * 1024);
    assert.equal(j.evaluation.timeoutMs, 2 * 60_000);
    assert.equal(j.evaluation.memoryBytes, 512 * 1024 * 1024);
    assert.equal(j.evaluation.nanoCpus, 1_500_000_000);
    assert.equal(j.evaluation.network, "bridge");
    assert.deepEqual(j.judgeAt, [], "no scheduler: nothing to judge while the job runs");
    assert.equal(p.checkpointKey, null);
    for (const gone of [
      "v",
      "segment",
      "pointId",
      "resource",
      "trainingFiles",
      "hasSandbox",
      "hasCheckpoint",
    ])
      assert.ok(!(gone in j), `${gone} is not sent: the agent never read it`);
  });

  void it("throws for an unknown job", () => {
    const d = new Driver(spec());
    assert.throws(() => buildJob(d.engine, "t42-p0-j1"), /unknown job t42-p0-j1/);
  });
});

void describe("TaskEngine: determinism and rebuild", () => {
  const scenario = (d: Driver) => {
    d.sampleAll();
    const a = d.dispatch()!;
    d.claim(a);
    d.finish(a, "failed", null);
    const b = d.dispatch()!;
    d.claim(b);
    d.finish(b, "ok", 0.3);
    d.sampleAll();
    const c = d.dispatch()!;
    d.lose(c);
  };

  void it("two engines fed the same events end in identical states", () => {
    const s = spec({ maxPoints: 6, nPointsPerIteration: 2, nParallelEvaluation: 1 });
    const d1 = new Driver(s);
    scenario(d1);
    const d2 = new Driver(s);
    for (const ev of d1.log.slice(1)) d2.apply(ev);
    assert.deepEqual(engineState(d2.engine), engineState(d1.engine));
    assert.deepEqual(summarize(d2.engine), summarize(d1.engine));
  });

  void it("the same seed proposes the same points; another seed other points", () => {
    const s = spec({ maxPoints: 4, nPointsPerIteration: 4 });
    const p1 = new Driver(s, "42", 11).engine.proposeSampling(5);
    const p2 = new Driver(s, "42", 11).engine.proposeSampling(5);
    const p3 = new Driver(s, "42", 12).engine.proposeSampling(5);
    assert.ok(p1 && p3);
    assert.deepEqual(p2, p1);
    assert.notDeepEqual(
      p3.points.map((p) => p.values),
      p1.points.map((p) => p.values),
    );
  });

  void it("an engine rebuilt from the log continues with the same next sample as the original", () => {
    const s = spec({ maxPoints: 8, nPointsPerIteration: 2, nParallelEvaluation: 2 });
    const original = new Driver(s);
    scenario(original);
    assert.equal(original.runSteps(3), 3, "partway through");
    const created = original.log[0];
    assert.ok(created?.type === "task-created");
    // a restarted service: a fresh engine from the same log
    const rebuilt = new TaskEngine(created);
    for (const ev of original.log.slice(1)) rebuilt.apply(ev);
    assert.deepEqual(engineState(rebuilt), engineState(original.engine));
    // both go on with the same events until a sample is due
    const seen = original.log.length;
    for (const j of original.engine.activeJobs())
      original.finish({ jobId: j.jobId, attempt: j.attempt }, "ok", 0.8);
    for (let r = original.dispatch(); r; r = original.dispatch()) {
      original.claim(r);
      original.finish(r, "ok", 0.9);
    }
    for (const ev of original.log.slice(seen)) rebuilt.apply(ev);
    const next = original.engine.proposeSampling(123);
    assert.ok(next && next.points.length > 0, "a sample is due");
    assert.deepEqual(rebuilt.proposeSampling(123), next);
    assert.deepEqual(engineState(rebuilt), engineState(original.engine));
  });
});

void describe("views: summarize and detail", () => {
  void it("counts points by state, jobs by attempts, and picks the lowest loss among done points", () => {
    const d = new Driver(
      spec({ maxPoints: 5, nPointsPerIteration: 5, nParallelEvaluation: 5, maxAttempts: 1 }),
    );
    d.sampleAll();
    const refs = [0, 1, 2, 3].map(() => d.dispatch()!);
    d.claim(refs[0]!);
    d.claim(refs[1]!);
    d.claim(refs[2]!);
    d.finish(refs[0]!, "ok", 0.8);
    d.finish(refs[1]!, "ok", 0.2);
    d.finish(refs[2]!, "failed", null); // FAILED_POINT_LOSS, never "best"
    // refs[3]: dispatched, not claimed → the point is still "queued"
    const s = summarize(d.engine);
    TaskSummary.parse(s);
    assert.deepEqual(s.counts, {
      points: 5,
      done: 2,
      failed: 1,
      running: 0,
      queued: 2,
      jobs: 4,
      stopped: 0,
      paused: 0,
      cancelled: 0,
      evaluated: 3,
      pointJobs: 5,
      budgetSpent: 0,
    });
    assert.deepEqual(s.best, { pointId: 1, loss: 0.2, values: point(d, 1).values });
    assert.equal(s.taskId, "42");
    assert.equal(s.user, "alice");
    assert.equal(s.outDS, "user.alice.hpo");
    assert.equal(s.state, "running");
    assert.equal(s.createdAt, 1000);
    assert.equal(s.finishedAt, null);
    assert.equal(s.maxPoints, 5);
    d.claim(refs[3]!);
    assert.equal(summarize(d.engine).counts.running, 1);
  });

  void it("best is null with no done point; a negative loss can be best", () => {
    const d = new Driver(spec({ maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 }));
    d.sampleAll();
    assert.equal(summarize(d.engine).best, null);
    const a = d.dispatch()!;
    const b = d.dispatch()!;
    d.claim(a);
    d.claim(b);
    d.finish(a, "ok", 0);
    d.finish(b, "ok", -3);
    assert.equal(summarize(d.engine).best?.pointId, 1);
    assert.equal(summarize(d.engine).best?.loss, -3);
  });

  void it("detail is schema-valid, sorted by point id, with per-segment counts and best losses", () => {
    const d = new Driver(
      spec({
        maxPoints: 2,
        nPointsPerIteration: 2,
        nParallelEvaluation: 4,
        segments: [{ name: "A" }, { name: "B" }],
      }),
    );
    d.sampleAll();
    const refs = [0, 1, 2].map(() => d.dispatch()!);
    for (const r of refs) d.claim(r, "site-a", "agent-7");
    d.finish(refs[0]!, "ok", 0.6, "site-a", "agent-7");
    d.finish(refs[1]!, "ok", 0.4, "site-a", "agent-7");
    d.finish(refs[2]!, "ok", 0.9, "site-a", "agent-7");
    const v = detail(d.engine);
    TaskDetail.parse(v);
    assert.deepEqual(
      v.points.map((p) => p.pointId),
      [0, 1, 2, 3],
    );
    assert.deepEqual(v.segments, [
      { name: "A", points: 2, best: 0.4 },
      { name: "B", points: 2, best: 0.9 },
    ]);
    assert.equal(v.points[0]?.segment, "A");
    assert.equal(v.points[0]?.site, "site-a");
    assert.equal(v.points[0]?.agent, "agent-7");
    assert.equal(v.points[3]?.state, "queued");
    assert.equal(v.best?.loss, 0.4);
    assert.equal(v.maxPoints, 4);
    assert.equal(v.spec, d.engine.spec);
  });
});
