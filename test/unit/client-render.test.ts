// Pure rendering: tables, rung tables, the SVG plot, results CSV, and the scheduler preview plans
// (checked against the test vectors of spec asha-family.md).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatNumber, renderTable } from "../../client/format.ts";
import { type TaskPreview, previewTask } from "../../client/plan.ts";
import { bestSoFar, renderPlotSvg, ticks } from "../../client/plot.ts";
import { rungsOf } from "../../client/render.ts";
import { resultRows, resultsCsv } from "../../client/verbs/results.ts";
import { renderPlan } from "../../client/verbs/preview.ts";
import { parseTaskSpec, type TaskSpecInput } from "../../protocol/taskConfig.ts";
import { sampleDetail, samplePoints } from "../harness/fakeSteering.ts";

const spec = (scheduler?: TaskSpecInput["scheduler"], over: Partial<TaskSpecInput> = {}) =>
  parseTaskSpec({
    outDS: "o/",
    evaluationContainer: "i",
    evaluationExec: "e",
    searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } },
    ...(scheduler ? { scheduler } : {}),
    ...over,
  });
const rows = (p: TaskPreview) => p.rows.map((r) => [r.resource, r.trials]);

describe("phpo rendering", () => {
  test("tables pad columns, right-align numbers and show null as -", () => {
    const t = renderTable(
      ["id", "name", "loss"],
      [
        [1, "a", 0.5],
        [10, "bbb", null],
      ],
    );
    assert.equal(t, "id  name  loss\n--  ----  ----\n 1  a      0.5\n10  bbb      -\n");
    assert.equal(formatNumber(0.1 + 0.2), "0.3");
    assert.equal(formatNumber(1e30), "1e+30");
    assert.equal(formatNumber(12345678.9), "1.23457e+7");
  });

  test("rung tables: the scheduler's levels only, each trial at its first report at or past the level", () => {
    const points = samplePoints();
    // the scheduler's rungs are 1 and 3 (max_t 9 is no rung): no table for a level only the reports have
    const rungs = rungsOf({
      points,
      rungs: [
        { segment: null, level: 1, values: [0.8, 0.9, 1.2], count: 3 },
        { segment: null, level: 3, values: [0.4, 0.7], count: 2 },
      ],
    });
    assert.deepEqual(
      rungs.map((r) => r.resource),
      [1, 3],
    );
    assert.deepEqual(rungs[0]?.entries, [
      { pointId: 2, loss: 0.8, resource: 1, promoted: true },
      { pointId: 0, loss: 0.9, resource: 1, promoted: true },
      { pointId: 1, loss: 1.2, resource: 1, promoted: false },
    ]);
    assert.deepEqual(
      rungs[1]?.entries.map((e) => [e.pointId, e.promoted]),
      [
        [2, true],
        [0, true],
      ],
    );
    assert.equal(rungs[1]?.recorded, 2);
    // no scheduler (FIFO, PanDA's default): no rung table at all, whatever the reports
    assert.deepEqual(rungsOf({ points }), []);
    assert.deepEqual(rungsOf({ points, rungs: [] }), []);
  });

  test("the SVG plot: well-formed, failed losses left out, best-so-far is monotone", () => {
    const svg = renderPlotSvg("task <7> & co", samplePoints(), "epochs");
    assert.match(svg, /task &lt;7&gt; &amp; co/);
    assert.equal(svg.split("<g ").length - 1, svg.split("</g>").length - 1);
    assert.doesNotMatch(svg, /NaN|Infinity|1e\+30/);
    const best = bestSoFar(samplePoints()).points.map((p) => p[1]);
    assert.deepEqual(best, [0.5, 0.25, 0.25]);
    assert.deepEqual(ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.match(renderPlotSvg("empty", [], "epochs"), /no data yet/);
  });

  test("results CSV quotes what needs quoting", () => {
    const d = sampleDetail("7");
    const p = d.points[0];
    assert.ok(p);
    p.values = { name: 'a "b", c' };
    const csv = resultsCsv(resultRows({ ...d, points: [p] }));
    assert.match(
      csv,
      /^task_id,point_id,segment,row,job,attempt,resource,loss,time,started_at,finished_at,attempts,state,site,name\n/,
    );
    assert.match(csv, /7,0,,report,,,1,0\.9,,,,1,done,local,"a ""b"", c"\n/);
  });

  test("preview: Determined adaptive ASHA is exact (TV-DET-4 a, c)", () => {
    const a = previewTask(
      spec({ type: "adaptive-asha", max_trials: 10, max_time: 100, max_concurrent_trials: 2 }),
    );
    assert.equal(a.exact, true);
    assert.deepEqual(rows(a), [
      [25, 6],
      [100, 4],
    ]);
    assert.deepEqual(
      a.brackets.map((b) => [b.rungs, b.trials]),
      [
        [[25, 100], 7],
        [[100], 3],
      ],
    );
    const c = previewTask(
      spec({
        type: "adaptive-asha",
        max_trials: 10,
        max_time: 900,
        divisor: 3,
        max_rungs: 10,
        max_concurrent_trials: 5,
      }),
    );
    assert.deepEqual(rows(c), [
      [100, 5],
      [300, 3],
      [900, 2],
    ]);
    assert.equal(c.totalCompute, 100 * 5 + 300 * 3 + 900 * 2);
    assert.equal(c.fullCompute, 10 * 900);
    const text = renderPlan(c, "batches");
    assert.match(text, /^ *5 +train to batches = 100$/m);
  });

  test("preview: sockeye rung sizes (TV-SR3-1) and FIFO", () => {
    const s = previewTask(spec({ type: "sockeye", r: 1, u: 1, R: 6, p: 2, max_trials: 20 }));
    assert.deepEqual(rows(s), [
      [1, 10],
      [2, 5],
      [3, 3],
      [4, 1],
      [5, 1],
    ]);
    assert.equal(s.trials, 20);
    const f = previewTask(spec(undefined, { maxPoints: 12 }));
    assert.deepEqual(rows(f), [[null, 12]]);
    assert.equal(f.totalCompute, null);
    assert.match(renderPlan(f, "epochs"), /12 +train to completion/);
  });

  test("preview: asynchronous ASHA uses steering's plan: whole trials per length, adding up to the budget", () => {
    const p = previewTask(spec({ type: "asha-stopping", max_t: 27, reduction_factor: 3, max_trials: 27 }));
    assert.equal(p.exact, true);
    assert.deepEqual(
      rows(p).map((r) => r[0]),
      [1, 3, 9, 27],
    );
    for (const [, n] of rows(p)) assert.ok(Number.isInteger(n) && (n ?? 0) > 0);
    assert.equal(p.trials, 27);
    const hb = previewTask(spec({ type: "hyperband", max_t: 9, reduction_factor: 3, max_trials: 30 }));
    assert.equal(hb.brackets.length, 3);
    assert.ok(Math.abs(hb.trials - 30) < 1e-9);
    assert.deepEqual(
      hb.brackets.map((b) => b.rungs),
      [[1, 3, 9], [3, 9], [9]],
    );
  });
});
