// The task engine with a scheduler, driven by log events only: suggestions recorded as
// trial-suggested events, reports fed in log order, promotions as new jobs resuming from the
// checkpoint, pruning as stop requests, PanDA's budgets, and replay determinism for every type.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { Job } from "../../protocol/messages.ts";
import { RUNG_VALUES_SHOWN, TaskDetail } from "../../protocol/api.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import type { LogEvent, LogEventOf } from "../../steering/core/events.ts";
import { createLogger } from "../../protocol/log.ts";
import { detail, jsonBytes } from "../../steering/core/views.ts";
import { Driver, engineState, spec } from "./fixtures/engineKit.ts";
import { ALL, curve, LADDER, schedSpec, Sim } from "./fixtures/schedulerSim.ts";

function replay(log: readonly LogEvent[]): TaskEngine {
  const e = new TaskEngine(log[0] as LogEventOf<"task-created">);
  for (const ev of log.slice(1)) e.apply(ev);
  return e;
}

const suggestions = (d: Driver) =>
  d.log.filter((e): e is LogEventOf<"trial-suggested"> => e.type === "trial-suggested");

void describe("TaskEngine with a scheduler: every type end to end, replayed exactly", () => {
  for (const [name, cfg] of ALL) {
    void it(`${name}: runs to completion within PanDA's budgets; a replay of the log rebuilds the same state`, () => {
      const d = new Driver(schedSpec(cfg));
      const sim = new Sim(d, {
        metrics: (x, step) => ({ loss: curve(x, step), size: (1 - x) * 10 }),
        failAt: (ref, step) => ref.jobId.endsWith("p2-j1") && ref.attempt === 1 && step === 1,
      });
      sim.run();
      const e = d.engine;
      assert.equal(e.state, "finished");
      assert.ok(e.points.size <= 12 && e.points.size > 0, `points ${e.points.size}`);
      assert.ok(e.attemptsUsedIn(0) <= e.task.maxEvaluationJobs);
      assert.ok(suggestions(d).length >= e.points.size);
      for (const p of e.points.values()) {
        assert.ok(
          ["done", "paused", "stopped", "failed"].includes(p.state),
          `point ${p.pointId} is ${p.state}`,
        );
        assert.equal(p.trial, `T${p.pointId}`, "trials and points are created in the same order");
        assert.ok(p.loss !== null);
      }
      // the failing first attempt of point 2 was retried and its trial went on
      const p2 = e.points.get(2)!;
      assert.ok(p2.attempts >= 2 && p2.state !== "failed");
      const again = replay(d.log);
      assert.deepEqual(engineState(again), engineState(e));
      assert.deepEqual(again.rungs(), e.rungs());
      assert.equal(again.schedulers?.[0]?.fault, null);
      TaskDetail.parse(detail(e));
    });
  }
});

void describe("TaskEngine with asha-promotion: pause and resume through checkpoints", () => {
  void it("a new trial's job trains to the milestone; a promotion is a new job (seq+1, attempt 1) resuming from the checkpoint", () => {
    const d = new Driver(schedSpec({ type: "asha-promotion", ...LADDER }, { nParallelEvaluation: 1 }));
    const sim = new Sim(d);
    sim.pump();
    const first = suggestions(d)[0]!;
    assert.deepEqual(first.suggestion, { action: "new", trial: "T0", milestone: 1 });
    const job0 = Job.parse(buildJob(d.engine, "t42-p0-j1"));
    assert.equal(job0.point.epochs, 1);
    const p0 = d.engine.points.get(0)!;
    assert.deepEqual([p0.job.target, p0.checkpointResource, p0.checkpointKey], [1, null, null]);
    // run until a promotion appears
    let promo: LogEventOf<"trial-suggested"> | undefined;
    for (let i = 0; i < 500 && !promo; i++) {
      if (!sim.step()) sim.pump();
      sim.pump();
      promo = suggestions(d).find((s) => s.suggestion.action === "promote");
    }
    assert.ok(promo, "a trial was promoted");
    assert.equal(promo.suggestion.action, "promote");
    const p = d.engine.points.get(promo.pointId)!;
    assert.equal(p.job.seq, 2);
    assert.equal(p.job.attempt, 1);
    assert.equal(p.jobs, 2);
    const job = Job.parse(buildJob(d.engine, p.job.jobId));
    assert.equal(job.jobId, `t42-p${p.pointId}-j2`);
    assert.deepEqual([p.job.target, p.checkpointResource], [3, 1], "trains from level 1 to 3");
    assert.equal(job.point.epochs, 3);
    assert.equal(p.checkpointKey, `ck/t42-p${p.pointId}-j1/1/1`);
  });

  void it("paused points are final when the task ends; rungs are in the task detail", () => {
    const d = new Driver(schedSpec({ type: "asha-promotion", ...LADDER }));
    new Sim(d).run();
    const states = [...d.engine.points.values()].map((p) => p.state);
    assert.ok(states.includes("paused"), "losers stay paused at their rung");
    assert.ok(states.includes("done"), "some trial reached max_t");
    const view = TaskDetail.parse(detail(d.engine));
    assert.ok(view.rungs && view.rungs.length === 2);
    assert.deepEqual(
      view.rungs.map((r) => r.level),
      [1, 3],
    );
    assert.equal(view.rungs[0]!.values.length, 12, "every trial recorded at the first rung");
    assert.equal(view.rungs[0]!.count, 12);
    // a reply keeps the best values of a rung only (a 100k-trial rung would not fit in one message)
    const capped = TaskDetail.parse(detail(d.engine, 0, 0, 5)).rungs![0]!;
    assert.equal(capped.count, 12);
    assert.deepEqual(capped.values, view.rungs[0]!.values.slice(0, 5));
    assert.deepEqual(
      capped.values,
      [...capped.values].sort((a, b) => a - b),
      "best (lowest loss) first",
    );
    // the whole reply counts: rungs give up their worst values until the task's part (summary,
    // spec, segments, rungs) takes at most half a page, and the points share what is left
    const head = jsonBytes({ ...detail(d.engine, 0, 0), rungs: undefined });
    const page = 2 * (head + 200);
    const cut = TaskDetail.parse(detail(d.engine, 0, 0, RUNG_VALUES_SHOWN, page)).rungs![0]!;
    assert.ok(cut.values.length < 12, `${cut.values.length} values kept`);
    assert.equal(cut.count, 12);
    assert.deepEqual(cut.values, view.rungs[0]!.values.slice(0, cut.values.length), "the best ones");
    const seen: number[] = [];
    for (let from: number | null = 0; from !== null;) {
      const p = detail(d.engine, from, Number.POSITIVE_INFINITY, RUNG_VALUES_SHOWN, page);
      // (a point larger than the room left still gets a page of its own: pages move on)
      assert.ok(p.points.length === 1 || jsonBytes(p) <= page, `${jsonBytes(p)} bytes, budget ${page}`);
      seen.push(...p.points.map((x) => x.pointId));
      from = p.pointsNext;
    }
    assert.deepEqual(
      seen,
      [...d.engine.points.keys()].sort((a, b) => a - b),
    );
    const promoted = view.points.find((pv) => (pv.jobs ?? 0) > 1);
    assert.ok(promoted && promoted.trial && promoted.target !== undefined);
    // reports of a resumed job start above the checkpoint: each level once
    for (const pv of view.points) {
      const levels = pv.reports.map((r) => r.resource);
      assert.deepEqual(
        levels,
        [...new Set(levels)].sort((a, b) => a - b),
        `point ${pv.pointId} re-reported`,
      );
    }
  });
});

void describe("TaskEngine with asha-stopping: pruning through the agent", () => {
  void it("a bad trial gets a stop request below max_t; its stopped job ends it with the loss of that report", () => {
    const d = new Driver(
      schedSpec({ type: "asha-stopping", ...LADDER }, { maxPoints: 6, nParallelEvaluation: 1 }),
    );
    const sim = new Sim(d);
    sim.run();
    const pruned = [...d.engine.points.values()].filter((p) => p.state === "stopped");
    assert.ok(pruned.length > 0, "some trial was pruned");
    for (const p of pruned) {
      assert.equal(p.job.stop, "pruned");
      assert.ok(p.fed < 9, "stopped before max_t");
      assert.equal(p.loss, curve(Number(p.values.x), p.fed));
      assert.equal(p.closed, true);
    }
    const finished = [...d.engine.points.values()].filter((p) => p.state === "done");
    for (const p of finished) assert.equal(p.resource, 9, "unpruned trials train to max_t in one job");
    assert.ok(suggestions(d).every((s) => s.suggestion.action === "new"));
  });

  void it("a stop decision is state: after a replay the still-running attempt is asked to stop again", () => {
    const d = new Driver(
      schedSpec({ type: "asha-stopping", ...LADDER }, { maxPoints: 6, nParallelEvaluation: 1 }),
    );
    const sim = new Sim(d);
    for (let i = 0; i < 2000 && d.engine.stopRequests().length === 0; i++) {
      sim.pump();
      sim.step();
    }
    const live = d.engine.stopRequests();
    assert.equal(live.length, 1);
    assert.equal(live[0]!.reason, "pruned");
    const again = replay(d.log);
    assert.deepEqual(
      again.stopRequests().map((s) => [s.job.jobId, s.job.attempt, s.reason]),
      live.map((s) => [s.job.jobId, s.job.attempt, s.reason]),
    );
    // later reports of the pruned attempt are recorded but not fed to the scheduler
    const ref = live[0]!.job;
    const fed = d.engine.pointOfJob(ref.jobId)!.fed;
    d.apply(
      sim.ev(
        "job-progress",
        { jobId: ref.jobId, attempt: ref.attempt },
        { resource: fed + 1, metrics: { loss: 0 } },
      ),
    );
    assert.equal(d.engine.pointOfJob(ref.jobId)!.fed, fed);
  });
});

void describe("TaskEngine with a scheduler: PanDA budgets and failures", () => {
  void it("maxEvaluationJobs counts promotions as jobs; nothing is suggested past it", () => {
    const d = new Driver(
      schedSpec({ type: "asha-promotion", ...LADDER }, { maxPoints: 12, maxEvaluationJobs: 14 }),
    );
    new Sim(d).run();
    assert.equal(d.engine.attemptsUsedIn(0), 14);
    assert.equal(suggestions(d).length, 14);
    assert.ok(suggestions(d).some((s) => s.suggestion.action === "promote"));
  });

  void it("an attempt that keeps failing is retried maxAttempts times, then the trial fails with PanDA's loss", () => {
    const d = new Driver(schedSpec({ type: "asha-stopping", ...LADDER }, { maxPoints: 3, maxAttempts: 2 }));
    new Sim(d, { failAt: (ref) => ref.jobId === "t42-p1-j1" }).run();
    const p = d.engine.points.get(1)!;
    assert.equal(p.state, "failed");
    assert.equal(p.attempts, 2);
    assert.equal(p.loss, FAILED_POINT_LOSS);
    assert.equal(p.closed, true);
    assert.equal(d.engine.points.size, 3);
  });

  void it("no scheduler: proposeTrial offers nothing (PanDA's FIFO path is unchanged)", () => {
    const d = new Driver(spec({ maxPoints: 2 }));
    assert.equal(d.engine.proposeTrial(d.tick()), null);
    assert.ok(d.engine.proposeSampling(d.tick()));
  });
});

void describe("TaskEngine with a scheduler: divergence from the log", () => {
  void it("replay re-runs suggest() and refuses a log that disagrees (fault: no more suggestions)", () => {
    const d = new Driver(schedSpec({ type: "asha-promotion", ...LADDER }));
    new Sim(d).run();
    const log = d.log.map((e) =>
      e.type === "trial-suggested" && e.pointId === 4 && e.suggestion.action === "new"
        ? { ...e, suggestion: { ...e.suggestion, milestone: 3 } }
        : e,
    );
    const bad = replay(log);
    assert.match(bad.schedulers?.[0]?.fault ?? "", /replay diverged/);
    assert.equal(bad.points.has(4), false);
  });

  void it("a live suggestion whose append fails makes the Committer rebuild the engine from the log", async () => {
    const d = new Driver(schedSpec({ type: "asha-promotion", ...LADDER }));
    const sim = new Sim(d);
    for (let i = 0; i < 40; i++) {
      sim.pump();
      sim.step();
    }
    const stored: LogEvent[] = [...d.log];
    const state = new SteeringState();
    for (const ev of stored) state.apply(ev);
    let failNext = false;
    const log = {
      append: (ev: LogEvent) => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("append timed out"));
        }
        stored.push(ev);
        return Promise.resolve();
      },
    };
    const c = new Committer(
      state,
      log,
      { publish: () => undefined },
      createLogger("test", { level: "error" }),
      (id) => Promise.resolve(stored.filter((e) => e.taskId === id)),
    );
    const before = state.engines.get("42")!;
    const reference = replay(stored);
    // finish everything that runs so a slot is free, then lose the suggestion's append
    let proposal: LogEventOf<"trial-suggested"> | null = null;
    for (const r of [...sim.running]) {
      const p = before.pointOfJob(r.ref.jobId)!;
      const fin = d.finishEvent(r.ref, "ok", 1);
      await c.commit({ ...fin, resource: p.job.target, metrics: { loss: 1 } });
      reference.apply({ ...fin, resource: p.job.target, metrics: { loss: 1 } });
    }
    proposal = state.engines.get("42")!.proposeTrial(d.tick());
    assert.ok(proposal);
    assert.equal(state.engines.get("42")!.hasUnloggedSuggestion(), true);
    assert.equal(
      state.engines.get("42")!.proposeTrial(d.tick()),
      null,
      "no second suggestion on an unlogged one",
    );
    failNext = true;
    await assert.rejects(c.commit(proposal), /append timed out/);
    const rebuilt = state.engines.get("42")!;
    assert.notEqual(rebuilt, before);
    assert.equal(rebuilt.hasUnloggedSuggestion(), false);
    assert.deepEqual(engineState(rebuilt), engineState(reference));
    // the next suggestion is the one the log-derived scheduler gives, and it applies cleanly
    const next = rebuilt.proposeTrial(d.tick());
    assert.ok(next);
    await c.commit(next);
    assert.equal(state.engines.get("42")!.schedulers?.[0]?.fault, null);
    assert.deepEqual(engineState(replay(stored)), engineState(state.engines.get("42")!));
  });
});
