// An asha-stopping stop reaches the payload within one report with the docker runtime too, on the
// real stack (NATS, S3, steering, an agent with the docker runtime on the real dockerd): the
// payload, in the python image, appends an epoch to progress.jsonl every 200 ms; the agent reads
// each as it is written and pauses the container (docker pause) at each rung level until
// steering's verdict. A docker pause, unpause or kill is a call through dockerd and runc that took
// 20-100 ms on a loaded 2-core test host, one after another for one container: with epochs
// shorter than that the payload trains on while the call is on its way (with 20 ms epochs, 0-3
// epochs past the judged report, now and then more; with 100 ms epochs, 0-1, and 2 once while
// other tests ran beside it), so the epochs here are well longer than it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { dockerAvailable, ensureTestImages, PYTHON_IMAGE } from "../harness/images.ts";
import { startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const available = await dockerAvailable();
const skip = available ? false : "no Docker daemon answers (start dockerd or set DOCKER_HOST)";

/**
 * curve.py's learning curve, inline (a task submitted through the API has no sandbox): an epoch
 * every `delay` seconds up to input.json's "epochs", one progress line each.
 */
const CURVE = `
import json, time
p = json.load(open("input.json"))
x = float(p["x"]); target = int(p.get("epochs", 1)); delay = float(p["delay"])
loss = lambda e: (x - 3) ** 2 / 4 + 2.0 / e
for e in range(1, target + 1):
    time.sleep(delay)
    with open("progress.jsonl", "a") as f:
        f.write(json.dumps({"epoch": e, "loss": loss(e)}) + "\\n")
json.dump({"status": 0, "loss": loss(max(target, 1))}, open("output.json", "w"))
`;

/** Reports past the judged one a stopped trial may show: the one written while the pause went out. */
const SLACK = 1;

describe(
  "asha-stopping with the docker runtime: the stop reaches the payload within a report",
  { skip, timeout: 300_000 },
  () => {
    let stack: TestStack;
    let api: StackClient;
    before(async () => {
      await ensureTestImages();
      stack = await startTestStack({ agents: 1, slotsPerAgent: 3, runtime: "docker" });
      api = await stack.connect();
    });
    after(() => stack?.cleanup());

    it("a stopped trial's last report is at most 1 past the one it was judged at", async (t) => {
      const task: TaskSpecInput = {
        outDS: "user.test.stoplatency.docker/",
        evaluationContainer: PYTHON_IMAGE,
        evaluationExec: `/usr/bin/python3 -c '${CURVE}'`,
        searchSpace: {
          x: { method: "uniform", dimension: { low: 0, high: 6 } },
          delay: { method: "categorical", dimension: { categories: [0.2] } },
        } as never,
        maxPoints: 9,
        nParallelEvaluation: 3,
        scheduler: { type: "asha-stopping", max_t: 27, grace_period: 1, reduction_factor: 3 },
        sampler: { type: "random", seed: 5 },
      };
      const taskId = await api.submit(task);
      const d = await api.waitFinished(taskId, 240_000);
      assert.equal(d.state, "finished");
      const stopped = d.points.filter((p) => p.state === "stopped");
      assert.ok(stopped.length > 0, "some trial was pruned");
      const past: string[] = [];
      const overshoot: number[] = [];
      for (const p of d.points) {
        if (p.state !== "stopped") {
          assert.equal(p.state, "done", `point ${p.pointId} is ${p.state}: ${p.error ?? ""}`);
          continue;
        }
        assert.ok(p.judged, `point ${p.pointId}: the decision's report`);
        const last = p.reports.at(-1)?.resource ?? 0;
        overshoot.push(last - p.judged.resource);
        if (last > p.judged.resource + SLACK)
          past.push(`point ${p.pointId}: judged at ${p.judged.resource}, trained to ${last}`);
      }
      t.diagnostic(`epochs past the judged report, per stopped trial: ${overshoot.join(", ")}`);
      assert.deepEqual(past, [], "stopped trials trained on past their judged report");
    });
  },
);
