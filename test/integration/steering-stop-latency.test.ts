// An asha-stopping stop reaches the payload within a report (issue 15), on the real stack (NATS,
// S3, steering, an agent with the process runtime): the curve payload appends an epoch to
// progress.jsonl every 10 ms; the agent reads it as it is written and pauses the payload at each
// rung level until steering's verdict. On the tree before this (file read once a second, no pause)
// pruned trials trained to 72-81 epochs after being judged at 1 or 3.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { FIXTURES, startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const CURVE = join(FIXTURES, "payloads", "curve.py");
/** Reports past the judged one a stopped trial may show: one, plus two for a loaded CI host's lag. */
const SLACK = 3;

describe("asha-stopping: the stop reaches the payload within a report", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let api: StackClient;
  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 3 });
    api = await stack.connect();
  });
  after(() => stack?.cleanup());

  it("a stopped trial's last report is at most 3 past the one it was judged at", async (t) => {
    const task: TaskSpecInput = {
      outDS: "user.test.stoplatency/",
      evaluationContainer: "gridtune/python:1",
      evaluationExec: `/usr/bin/python3 ${CURVE}`,
      searchSpace: {
        x: { method: "uniform", dimension: { low: 0, high: 6 } },
        delay: { method: "categorical", dimension: { categories: [0.01] } },
      } as never,
      maxPoints: 12,
      nParallelEvaluation: 3,
      scheduler: { type: "asha-stopping", max_t: 81, grace_period: 1, reduction_factor: 3 },
      sampler: { type: "random", seed: 5 },
    };
    const taskId = await api.submit(task);
    const d = await api.waitFinished(taskId, 240_000);
    assert.equal(d.state, "finished");
    const stopped = d.points.filter((p) => p.state === "stopped");
    assert.ok(stopped.length > 0, "some trial was pruned");
    let trained = 0;
    let plan = 0;
    const past: string[] = [];
    const overshoot: number[] = [];
    for (const p of d.points) {
      const last = p.reports.at(-1)?.resource ?? 0;
      trained += last;
      if (p.state === "stopped") {
        assert.ok(p.judged, `point ${p.pointId}: the decision's report`);
        plan += p.judged.resource;
        overshoot.push(last - p.judged.resource);
        if (last > p.judged.resource + SLACK)
          past.push(`point ${p.pointId}: judged at ${p.judged.resource}, trained to ${last}`);
      } else {
        assert.equal(p.state, "done", `point ${p.pointId} is ${p.state}`);
        plan += 81;
      }
    }
    // the plan: each pruned trial up to the rung it was judged at, the others to max_t
    t.diagnostic(`trained ${trained} epochs against a plan of ${plan} (${stopped.length} stopped)`);
    t.diagnostic(`epochs past the judged report, per stopped trial: ${overshoot.join(", ")}`);
    assert.deepEqual(past, [], "stopped trials trained on past their judged report");
    assert.ok(
      trained <= plan + SLACK * stopped.length,
      `trained ${trained} epochs against a plan of ${plan}`,
    );
  });
});
