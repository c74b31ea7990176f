// The evaluator with the docker runtime on real servers and the machine's real dockerd: a job whose
// image is not on the host is a failed attempt with IMAGE_MISSING's message (retried, then PanDA's
// very large loss), and the agent keeps serving: a job on a local image then runs in a container
// with the file protocol (input.json in the bind-mounted /srv/workDir, output.json out).
// A task whose image is missing everywhere, with the default maxEvaluationJobs, ends with counts
// that add up, every point at 3 attempts or budget-spent, and phpo saying "budget spent".
// The daemon itself is never restarted here (other work shares it).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { TaskDetail } from "../../protocol/api.ts";
import { BUSYBOX_IMAGE, dockerAvailable, ensureTestImages } from "../harness/images.ts";
import { runBin, startTestStack, type TestStack } from "../harness/stack.ts";

const available = await dockerAvailable();
const skip = available ? false : "no Docker daemon answers on /var/run/docker.sock (start dockerd)";

describe("evaluator agent with the docker runtime", { skip, timeout: 240_000 }, () => {
  let stack: TestStack;
  before(async () => {
    await ensureTestImages();
    stack = await startTestStack({ agents: 1, slotsPerAgent: 2, runtime: "docker" });
  });
  after(() => stack?.cleanup());

  it("a missing image: failed attempts with IMAGE_MISSING's message, then the very large loss", async () => {
    const api = await stack.connect();
    const taskId = await api.submit({
      outDS: "user.test.missing/",
      evaluationContainer: "gridtune/no-such-image:404",
      evaluationExec: "sh -c true",
      searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
      maxPoints: 1,
      maxEvaluationJobs: 3,
      nParallelEvaluation: 1,
    });
    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "failed");
    assert.equal(p.attempts, 3);
    assert.equal(p.loss, FAILED_POINT_LOSS);
    assert.equal(p.failureClass, "image");
    assert.match(
      p.error ?? "",
      /image "gridtune\/no-such-image:404" is not on this Docker host \(no registry is used\)/,
    );
  });

  it("a missing image with the default budget: counts add up, 3 attempts or budget-spent, and phpo says so", async () => {
    const api = await stack.connect();
    // maxEvaluationJobs defaults to 2 x 4 = 8 attempts: two points fail after 3, two get one each
    const taskId = await api.submit({
      outDS: "user.test.budget/",
      evaluationContainer: "gridtune/no-such-image:404",
      evaluationExec: "sh -c true",
      searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
      maxPoints: 4,
      nParallelEvaluation: 2,
      nPointsPerIteration: 2,
    });
    const d = await api.waitFinished(taskId, 120_000);
    const c = d.counts;
    const line = JSON.stringify(c);
    assert.equal(c.points, 4, line);
    assert.equal(
      c.done + c.failed + c.stopped + c.paused + c.budgetSpent + c.running + c.queued + c.cancelled,
      c.points,
      `the counts add up: ${line}`,
    );
    assert.equal(c.jobs, 8, line);
    assert.deepEqual(d.budget, { used: 8, limit: 8, spent: true });
    assert.ok(c.failed >= 1 && c.budgetSpent >= 1, line);
    for (const p of d.points) {
      const why = `p${p.pointId}: ${p.state} after ${p.attempts} attempts`;
      assert.ok(
        (p.state === "failed" && p.attempts === 3) || p.state === "budget-spent",
        `every point at 3 attempts or budget-spent: ${why}`,
      );
      if (p.attempts > 0) {
        assert.equal(p.loss, FAILED_POINT_LOSS, `a started point gets PanDA's very large loss: ${why}`);
        assert.equal(p.failureClass, "image", why);
      }
      // the back-off (200 ms base in tests, at least half of it) holds each retry of a missing
      // image: no three attempts on one agent within 0.1 s
      const h = p.history ?? [];
      for (let i = 1; i < h.length; i++)
        assert.ok(
          (h[i]!.startedAt ?? 0) - h[i - 1]!.finishedAt >= 100,
          `p${p.pointId} attempt ${i + 1} waited its back-off: ${JSON.stringify(h)}`,
        );
    }

    const home = await mkdtemp(join(tmpdir(), "phpo-budget-"));
    try {
      const env = { HOME: home, GRIDTUNE_HOME: stack.dir };
      const show = await runBin("phpo", ["show", taskId], { env });
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /4\/4 points: 0 done, \d failed, \d budget-spent, 0 running, 0 queued/);
      assert.match(show.stdout, /budget spent \(8\/8 jobs\)/);
      assert.match(show.stdout, /p0 \[image missing or refused\]: .*gridtune\/no-such-image:404/);
      const list = await runBin("phpo", ["list"], { env });
      assert.match(list.stdout, /finished, budget spent \(8\/8 jobs\)/);
      const status = await runBin("phpo", ["status", taskId], { env });
      assert.match(status.stdout, /budget spent \(8\/8 jobs\)/);
      const json = TaskDetail.parse(
        JSON.parse((await runBin("phpo", ["--json", "show", taskId], { env })).stdout),
      );
      assert.deepEqual(json.budget, { used: 8, limit: 8, spent: true });
      assert.equal(json.counts.budgetSpent, c.budgetSpent);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("keeps serving: a job on a local image runs in a container with the file protocol", async () => {
    const api = await stack.connect();
    const taskId = await api.submit({
      outDS: "user.test.busybox/",
      evaluationContainer: BUSYBOX_IMAGE,
      // input.json is the point; the loss is x read back from it by the payload, in the container.
      evaluationExec:
        'sh -c \'test "$(pwd)" = /srv/workDir && x=$(sed -e "s/.*\\"x\\": *\\([0-9.]*\\).*/\\1/" input.json) && echo "{\\"status\\": 0, \\"loss\\": $x}" > output.json\'',
      searchSpace: { x: { method: "categorical", dimension: { categories: [0.25, 0.5] } } } as never,
      maxPoints: 2,
      nParallelEvaluation: 2,
      nPointsPerIteration: 2,
    });
    const d = await api.waitFinished(taskId, 90_000);
    assert.equal(d.counts.done, 2, JSON.stringify(d.points.map((p) => p.error)));
    for (const p of d.points) assert.equal(p.loss, p.values.x);
  });
});
