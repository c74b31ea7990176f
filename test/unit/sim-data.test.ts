// Curve sources of the simulator: the LCBench loader (real folders where ../shared/data is
// present, hostile CSV files always), the nearest-configuration mapping of a user's space, and a
// finished task's own reports (--from-task) as curves.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { TaskDetail } from "../../protocol/api.ts";
import { parseSchedulerConfig } from "../../protocol/scheduler.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import { timeAt, valueAt } from "../../steering/sim/curves.ts";
import { loadLcbench, lcbenchSource } from "../../steering/sim/lcbench.ts";
import { simSpec } from "../../steering/sim/methods.ts";
import { pairColumns } from "../../steering/sim/nearest.ts";
import { simulate } from "../../steering/sim/simulator.ts";
import { taskCurves } from "../../steering/sim/taskCurves.ts";
import { spec, throwsCode } from "./fixtures/engineKit.ts";

const LCBENCH = resolve(import.meta.dirname, "../../../shared/data/lcbench");
const SKIP = existsSync(LCBENCH) ? false : `LCBench is not at ${LCBENCH} (not shipped with the repository)`;

describe("LCBench folders", { skip: SKIP }, () => {
  it("the real curves of blood-transfusion: epochs 0..51, 100 − val_accuracy, cumulative time", () => {
    const d = loadLcbench(join(LCBENCH, "lcbench-blood-transfusion"));
    assert.equal(d.curves.length, 2000);
    assert.equal(d.maxEpoch, 51);
    const c0 = d.curves[0];
    assert.ok(c0);
    assert.equal(c0.resources[0], 0);
    // trial 0, epoch 1: val_accuracy 77.7108, time 0.870575 (first data lines of curves.csv)
    assert.ok(Math.abs(valueAt(c0, 1) - (100 - 77.7108)) < 1e-9);
    assert.equal(timeAt(c0, 1), 0.870575);
    assert.deepEqual(d.configs.columns, [
      "batch_size",
      "learning_rate",
      "momentum",
      "weight_decay",
      "num_layers",
      "max_units",
      "max_dropout",
    ]);
  });

  it("a user's space maps each point to the nearest configuration", () => {
    const d = loadLcbench(join(LCBENCH, "yahpo-lcbench-3945"));
    const space = {
      learning_rate: { method: "loguniform", dimension: { low: 1e-4, high: 1e-1 } },
      batch_size: { method: "uniformint", dimension: { low: 16, high: 512 } },
    } as SearchSpace;
    const src = lcbenchSource(d, space);
    // the smallest learning rate and batch size of the space land on a configuration with small ones
    const c = src.curveOf({ learning_rate: 1e-4, batch_size: 16 });
    const row = d.configs.rows[c.id];
    assert.ok(row);
    assert.ok((row[1] ?? 1) < 2e-3 && (row[0] ?? 512) < 64, JSON.stringify(row));
  });
});

describe("nearest configuration", () => {
  it("parameters pair with columns by name first, the others in column order", () => {
    const space = {
      lr: { method: "uniform", dimension: { low: 0, high: 1 } },
      momentum: { method: "uniform", dimension: { low: 0, high: 1 } },
      depth: { method: "uniformint", dimension: { low: 1, high: 5 } },
    } as SearchSpace;
    assert.deepEqual(pairColumns(space, ["batch_size", "learning_rate", "momentum"]), [
      ["lr", 0],
      ["momentum", 2],
      ["depth", 1],
    ]);
  });
});

describe("hostile or broken curve files are refused with the file, line and fix", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-csv-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const folder = (name: string, curves: string, configs = "trial,lr\n0,0.1\n1,0.01\n") => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "configs.csv"), configs);
    writeFileSync(join(d, "curves.csv"), curves);
    return d;
  };
  const HEAD = "trial,epoch,val_accuracy,time\n";

  it("a trial outside the configurations (or __proto__) is an error, not a crash or a polluted object", () => {
    const d = folder("far", `${HEAD}0,1,50,1\n1,1,60,1\n5000,1,70,1\n`);
    throwsCode(() => loadLcbench(d), "INVALID_ARGUMENT", "curves.csv line 4", "trial 0..1");
    const p = folder("proto", `${HEAD}0,1,50,1\n__proto__,1,60,1\n`);
    throwsCode(() => loadLcbench(p), "INVALID_ARGUMENT", "line 3");
  });

  it("epochs that do not ascend, a missing column, a configuration without a curve", () => {
    throwsCode(
      () => loadLcbench(folder("desc", `${HEAD}0,2,50,1\n0,1,60,2\n1,1,1,1\n`)),
      "INVALID_ARGUMENT",
      "must ascend",
    );
    throwsCode(
      () => loadLcbench(folder("col", "trial,epoch,time\n0,1,1\n")),
      "INVALID_ARGUMENT",
      'no column "val_accuracy"',
    );
    throwsCode(
      () => loadLcbench(folder("gap", `${HEAD}0,1,50,1\n`)),
      "INVALID_ARGUMENT",
      "configuration 1 has no curve",
    );
  });
});

/** A finished FIFO task of 4 points × 3 epochs; point p takes (p + 1) s per epoch; point 3 was cut short. */
function finishedTask(): TaskDetail {
  const t0 = 1_700_000_000_000;
  const points = [0, 1, 2, 3].map((p) => {
    const epochs = p === 3 ? [1] : [1, 2, 3];
    return {
      pointId: p,
      segment: null,
      values: { lr: p / 10 },
      state: "done",
      loss: 1 / (p + 1),
      attempts: 1,
      resource: epochs.at(-1) ?? 0,
      reports: epochs.map((e) => ({
        resource: e,
        loss: 1 / (p + 1) + 1 / e,
        job: 0,
        attempt: 1,
        at: t0 + e * (p + 1) * 1000,
      })),
      history: [
        {
          job: 0,
          attempt: 1,
          site: "s",
          agent: "a",
          status: "ok",
          loss: 1,
          startedAt: t0,
          finishedAt: t0 + 9000,
          error: null,
        },
      ],
      site: "s",
      agent: "a",
      error: null,
      metricsKeys: [],
      logKeys: [],
      checkpointKey: null,
    };
  });
  return TaskDetail.parse({
    taskId: "7",
    user: "alice",
    outDS: "user.alice.x",
    state: "finished",
    createdAt: t0,
    finishedAt: t0 + 10_000,
    maxPoints: 4,
    counts: { points: 4, done: 4, failed: 0, running: 0, queued: 0, jobs: 4 },
    best: null,
    spec: spec({ maxPoints: 4 }),
    points,
    segments: [],
  });
}

describe("--from-task: a finished task's reports as curves", () => {
  it("times from report arrival minus attempt start; points cut short are left out", () => {
    const t = taskCurves(finishedTask());
    assert.equal(t.source.curves.length, 3);
    assert.equal(t.dropped, 1);
    assert.deepEqual(t.pointIds, [0, 1, 2]);
    assert.equal(t.source.maxResource, 3);
    const c2 = t.source.curves[2];
    assert.ok(c2);
    assert.deepEqual([...c2.times], [3, 6, 9]);
    assert.equal(valueAt(c2, 3), 1 / 3 + 1 / 3);
  });

  it("the task's points are the search space: a FIFO re-run costs what the task cost", () => {
    const t = taskCurves(finishedTask());
    const r = simulate({
      spec: simSpec(t.source.space, parseSchedulerConfig({ type: "fifo", max_t: 3 }), 1, 3),
      source: t.source,
      workers: 1,
      seed: 3,
    });
    // every sampled trial costs its curve's 3, 6 or 9 s
    assert.equal(r.trials, 3);
    assert.ok([9, 12, 15, 18, 21, 24, 27].includes(r.compute), String(r.compute));
  });

  it("a task without progress reports says how to record them", () => {
    const d = finishedTask();
    for (const p of d.points) p.reports = [];
    throwsCode(() => taskCurves(d), "NOT_FOUND", 'run it with "scheduler": {"type": "fifo"');
  });
});
