// The summaries of `phpo show`, `list` and `watch` for every scheduler, from the engine driven by
// a simulated agent: counts that add up, attempts apart from jobs, the scheduler's real rungs, a
// pruned trial judged where the scheduler judged it, and the best trial at the top rung.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderShow, rungsOf } from "../../client/render.ts";
import { progressLine } from "../../client/verbs/watch.ts";
import { TaskDetail, TaskSummary, type PointView } from "../../protocol/api.ts";
import { detail, summarize } from "../../steering/core/views.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { ALL, LADDER, schedSpec, Sim } from "./fixtures/schedulerSim.ts";

function addsUp(s: TaskSummary): void {
  const c = s.counts;
  assert.equal(
    c.done + c.failed + c.stopped + c.paused + c.running + c.queued + c.cancelled,
    c.points,
    `counts add up: ${JSON.stringify(c)}`,
  );
  assert.equal(c.evaluated, c.done + c.failed + c.stopped + c.paused);
}

/** The resource a point's result belongs to, and the best point at the top one (the expected answer). */
function bestAtTop(points: readonly PointView[]): PointView | null {
  const withResult = points.filter((p) => (p.state === "done" || p.state === "paused") && p.loss !== null);
  const top = Math.max(...withResult.map((p) => p.resource ?? 0));
  const atTop = withResult.filter((p) => (p.resource ?? 0) === top);
  return atTop.sort((a, b) => (a.loss as number) - (b.loss as number))[0] ?? null;
}

void describe("summaries for every scheduler", () => {
  for (const [name, cfg] of ALL) {
    void it(`${name}: counts add up, every trial that ended is evaluated, attempts apart from jobs, real rungs`, () => {
      const d = new Driver(schedSpec(cfg));
      // one retried failure: point 2's first attempt fails at its first step
      const sim = new Sim(d, {
        metrics: (x, step) => ({ loss: (x - 0.5) ** 2 + 1 / step, size: (1 - x) * 10 }),
        failAt: (ref, step) => ref.jobId.endsWith("p2-j1") && ref.attempt === 1 && step === 1,
      });
      for (let i = 0; i < 40 && !d.engine.isComplete(); i++) {
        sim.pump();
        sim.step();
        addsUp(summarize(d.engine)); // mid-run too
      }
      sim.run();
      const s = TaskSummary.parse(summarize(d.engine));
      addsUp(s);
      assert.equal(s.counts.running + s.counts.queued, 0);
      // the whole budget of trials reached an end: none is left out of "evaluated"
      assert.equal(s.counts.evaluated + s.counts.cancelled, s.counts.points);
      assert.match(progressLine(s), new RegExp(` ${s.counts.evaluated}/${s.maxPoints} evaluated`));

      const det = TaskDetail.parse(detail(d.engine));
      for (const v of det.points) {
        const p = d.engine.points.get(v.pointId)!;
        assert.ok(v.attempts <= d.spec.maxAttempts, `p${v.pointId}: attempts ${v.attempts}`);
        assert.equal(v.jobs, p.jobs);
        assert.equal(v.dispatches, p.attempts);
        // a promoted point that never failed ran each of its jobs once: attempts 1, not 1 per job
        if (p.jobs > 1 && v.pointId !== 2) assert.equal(v.attempts, 1, `p${v.pointId}`);
      }
      assert.equal(det.points.find((v) => v.pointId === 2)?.attempts, 2, "the retried point: 2 attempts");
      assert.equal(
        s.counts.pointJobs,
        det.points.reduce((n, v) => n + (v.jobs ?? 0), 0),
      );

      // rung tables: exactly the scheduler's levels (none for FIFO)
      const levels = [...new Set(d.engine.rungs().map((r) => r.level))].sort((a, b) => a - b);
      assert.deepEqual(
        rungsOf(det).map((r) => r.resource),
        levels,
      );
      if (cfg.type === "fifo") assert.doesNotMatch(renderShow(det), /^rung/m);
      for (const r of rungsOf(det)) {
        for (const e of r.entries) assert.ok(e.resource >= r.resource);
      }

      // the best trial is the best at the highest level any trial reached with a result
      const want = bestAtTop(det.points);
      assert.ok(want, "a best trial");
      assert.equal(s.best?.pointId, want.pointId, `best ${JSON.stringify(s.best)}`);
      assert.equal(s.best?.loss, want.loss);
    });
  }

  void it("no scheduler: no rung table at all, best among done points", () => {
    const d = new Driver(spec({ maxPoints: 4, nPointsPerIteration: 4, nParallelEvaluation: 4 }));
    d.runToCompletion((id) => 1 - id / 10);
    d.state("finished");
    const det = TaskDetail.parse(detail(d.engine));
    assert.equal(det.rungs, undefined);
    assert.doesNotMatch(renderShow(det), /rung/);
    assert.equal(det.best?.pointId, 3);
    addsUp(det);
  });

  void it("PASHA: when no trial trains to max_t, its answer is the best at its final top rung", () => {
    const d = new Driver(schedSpec({ type: "pasha", max_t: 27, grace_period: 1, reduction_factor: 3 }));
    // rankings that agree at every level: PASHA never grows its top rung to max_t
    new Sim(d, { metrics: (x, step) => ({ loss: (x - 0.5) ** 2 + 1 / step }) }).run();
    const det = TaskDetail.parse(detail(d.engine));
    assert.equal(
      det.points.filter((p) => p.state === "done").length,
      0,
      `no trial done: ${det.points.map((p) => `${p.state}@${p.resource}`).join(" ")}`,
    );
    const top = Math.max(...det.points.map((p) => p.resource ?? 0));
    assert.ok(top < 27);
    const atTop = det.points.filter((p) => p.state === "paused" && p.resource === top);
    const want = atTop.sort((a, b) => (a.loss as number) - (b.loss as number))[0];
    assert.ok(want);
    assert.equal(det.best?.pointId, want.pointId);
    assert.match(renderShow(det), new RegExp(`best loss .* at point ${want.pointId} \\(epochs ${top}\\)`));
  });

  void it("asha-stopping: a pruned trial's row has the loss and resource it was judged at, its last report beside", () => {
    const d = new Driver(schedSpec({ type: "asha-stopping", ...LADDER }));
    // the agent stops each pruned job 2 steps after the decision, reporting on meanwhile
    new Sim(d, { stopLag: 2 }).run();
    const det = TaskDetail.parse(detail(d.engine));
    const pruned = det.points.filter((p) => p.state === "stopped");
    assert.ok(pruned.length > 0);
    const text = renderShow(det);
    for (const p of pruned) {
      const judged = p.judged;
      assert.ok(judged, `p${p.pointId} has its judged report`);
      const report = p.reports.find((r) => r.resource === judged.resource);
      assert.ok(report, `p${p.pointId}: a report at ${judged.resource}`);
      assert.equal(judged.loss, report.loss);
      assert.equal(p.loss, report.loss, "the loss it was judged with");
      assert.equal(p.resource, judged.resource, "the resource it was judged at");
      const last = p.reports.at(-1)!;
      assert.ok(last.resource > judged.resource, "it trained on before the stop reached it");
      const row = new RegExp(
        `^ *${p.pointId} +stopped +${String(report.loss).slice(0, 5).replace(".", "\\.")}\\d* +${judged.resource} +[0-9.]+ @ ${last.resource} `,
        "m",
      );
      assert.match(text, row);
    }
  });
});
