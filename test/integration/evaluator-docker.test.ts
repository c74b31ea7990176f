// The evaluator with the docker runtime on real servers and the machine's real dockerd: a job whose
// image is not on the host is a failed attempt with IMAGE_MISSING's message (retried, then PanDA's
// very large loss), and the agent keeps serving: a job on a local image then runs in a container
// with the file protocol (input.json in the bind-mounted /srv/workDir, output.json out).
// The daemon itself is never restarted here (other work shares it).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { BUSYBOX_IMAGE, dockerAvailable, ensureTestImages } from "../harness/images.ts";
import { startTestStack, type TestStack } from "../harness/stack.ts";

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
    assert.match(
      p.error ?? "",
      /image "gridtune\/no-such-image:404" is not on this Docker host \(no registry is used\)/,
    );
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
