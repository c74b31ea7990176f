// The monitor's rung ladder from a `show` reply: the trials steering names at each rung, what
// became of each, and the cut-off of the task's rule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildLadder, rungCutoff } from "../../client/monitor/ladder.ts";
import type { PointView, TaskDetail } from "../../protocol/api.ts";
import { parseSchedulerConfig } from "../../protocol/scheduler.ts";
import { generatedTask } from "../harness/monitorData.ts";

function point(pointId: number, state: PointView["state"], losses: number[], target: number): PointView {
  return {
    pointId,
    segment: null,
    values: { x: pointId },
    state,
    loss: losses[losses.length - 1] ?? null,
    attempts: 1,
    resource: losses.length,
    reports: losses.map((loss, i) => ({ resource: i + 1, loss })),
    site: null,
    agent: null,
    error: null,
    metricsKeys: [],
    logKeys: [],
    checkpointKey: null,
    trial: `t${pointId}`,
    target,
    jobs: 1,
  };
}

void describe("the monitor's rung ladder", () => {
  void it("takes a rung's trials from steering, with their fates and the syne-tune cut-off", () => {
    const base = generatedTask({ trials: 1, reports: 9 });
    const d: TaskDetail = {
      ...base,
      spec: {
        ...base.spec,
        scheduler: parseSchedulerConfig({
          type: "asha-stopping",
          max_t: 9,
          grace_period: 1,
          reduction_factor: 3,
        }),
      },
      points: [
        point(0, "done", [0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1], 9), // went on past rung 1 and 3
        point(1, "stopped", [0.9], 9), // stopped at rung 1
        point(2, "running", [0.6, 0.55, 0.5], 9), // at rung 3, running on
        point(3, "stopped", [0.7, 0.65], 9), // reported 2 after its stop: never recorded at 3
      ],
      rungs: [
        { segment: null, level: 1, values: [0.5, 0.6, 0.7, 0.9], trials: ["t0", "t2", "t3", "t1"], count: 4 },
        { segment: null, level: 3, values: [0.3, 0.5], trials: ["t0", "t2"], count: 2 },
      ],
    };
    const l = buildLadder(d);
    assert.ok(l);
    assert.match(l.rule, /syne-tune rule/);
    const [r1, r3] = l.rungs;
    assert.deepEqual(
      r1?.trials.map((t) => [t.pointId, t.fate]),
      [
        [0, "promoted"],
        [2, "promoted"],
        [3, "stopped"], // its report at 2 came after the stop: it is not at rung 3
        [1, "stopped"],
      ],
    );
    assert.deepEqual(r3?.counts, { promoted: 2, stopped: 0, waiting: 0, running: 0 } as never);
    // the top rung: point 0 trained to max_t; point 2 runs at 3 with target 9, let through
    assert.deepEqual(
      r3?.trials.map((t) => [t.pointId, t.fate]),
      [
        [0, "promoted"],
        [2, "promoted"],
      ],
    );
    // numpy linear quantile at level/next = 1/3 of [0.5, 0.6, 0.7, 0.9]: h = 1, so 0.6
    assert.equal(r1?.cutoff, 0.6);
    // 3/9 of [0.3, 0.5]: h = 1/3 → 0.3 + (0.5 - 0.3) / 3
    assert.ok(Math.abs((r3?.cutoff ?? 0) - (0.3 + 0.2 / 3)) < 1e-12);
  });

  void it("without trial names (an older steering), takes every point that reported at the level", () => {
    const d = generatedTask({ trials: 12, reports: 5 });
    const l = buildLadder(d);
    assert.deepEqual(
      l?.rungs.map((r) => [r.level, r.trials.length, r.recorded]),
      [
        [1, 12, 12],
        [3, 12, 12],
      ],
    );
    const values = l?.rungs[0]?.trials.map((t) => t.value) ?? [];
    assert.deepEqual(
      values,
      [...values].sort((a, b) => a - b),
      "best first",
    );
  });

  void it("applies each rule's cut-off", () => {
    const c = (rule: string) =>
      parseSchedulerConfig({ type: "asha-stopping", max_t: 9, reduction_factor: 3, rule }) as never;
    const v = [1, 2, 3, 4, 5, 6];
    assert.equal(rungCutoff(c("determined"), 3, 1, 3, v), 2); // the best max(⌊6/3⌋, 1) = 2
    assert.equal(rungCutoff(c("optuna"), 3, 1, 3, [1]), 1);
    assert.equal(rungCutoff(c("syne-tune"), 3, 1, 3, [1]), null); // fewer than 2 values
    assert.ok(Math.abs((rungCutoff(c("ray"), 3, 1, 3, v) ?? 0) - (1 + 5 / 3)) < 1e-12);
  });

  void it("is null for a task without an ASHA-family scheduler", () => {
    const d = generatedTask({ trials: 2, reports: 3 });
    assert.equal(buildLadder({ ...d, spec: { ...d.spec, scheduler: undefined } }), null);
  });
});
