// phpo simulate --from-task on the real embedded stack: a task run with the "fifo" scheduler (every
// trial trains fully and reports each epoch) is fetched through the user's API, as phpo results
// does, and re-simulated with ASHA beside random search on its own learning curves.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FIXTURES, runBin, startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const CURVE = join(FIXTURES, "payloads", "curve.py");

describe("phpo simulate --from-task", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let api: StackClient;
  let home: string;
  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 3 });
    api = await stack.connect();
    home = await mkdtemp(join(tmpdir(), "phpo-sim-home-"));
  });
  after(async () => {
    await stack?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("re-simulates a finished task's own curves with ASHA against random search", async () => {
    const taskId = await api.submit({
      outDS: "user.test.curve/",
      evaluationContainer: "gridtune/python:1",
      evaluationExec: `/usr/bin/python3 ${CURVE}`,
      searchSpace: {
        x: { method: "uniform", dimension: { low: 0, high: 6 } },
        delay: { method: "categorical", dimension: { categories: [0.03] } },
      } as never,
      checkPointToSave: ["checkpoint"],
      maxPoints: 6,
      nParallelEvaluation: 3,
      scheduler: { type: "fifo", max_t: 9 },
      sampler: { type: "random", seed: 5 },
    });
    const d = await api.waitFinished(taskId, 180_000);
    assert.equal(d.state, "finished");
    const env = { HOME: home, GRIDTUNE_HOME: stack.dir };
    const args = ["simulate", "--from-task", taskId, "--compare", "random,asha-promotion", "--seeds", "3"];
    const text = await runBin("phpo", args, { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`6 curves of task ${taskId} \\(its points are the search space\\)`));
    const json = await runBin("phpo", ["--json", ...args, "--workers", "2"], { env });
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as {
      methods: Array<{ method: string; workers: number; computeRatio: { median: number } | null }>;
    };
    assert.deepEqual(
      out.methods.map((m) => [m.method, m.workers]),
      [
        ["random", 2],
        ["asha-promotion", 2],
      ],
    );
    assert.equal(out.methods[0]?.computeRatio?.median, 1);
    // the curves rank by x at every epoch, so ASHA finds random search's best with less compute
    const asha = out.methods[1]?.computeRatio;
    assert.ok(asha && asha.median < 1, JSON.stringify(asha));
  });

  it("a task id that is not yours or does not exist is a clear error", async () => {
    const r = await runBin("phpo", ["simulate", "--from-task", "999999"], {
      env: { HOME: home, GRIDTUNE_HOME: stack.dir },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /999999/);
  });
});
