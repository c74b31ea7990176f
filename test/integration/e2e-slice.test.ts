// The first end-to-end slice on real servers: a task submitted over NATS reaches steering, becomes
// JetStream jobs, runs on an agent (as a process, then in a hardened Docker container), and its
// results, metrics tarballs and logs come back and are stored. The payload is the quickstart's
// real training (an MLP on two moons), shipped in the task's sandbox as phpo would.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tar from "tar";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { dockerAnswers } from "../../stack/images.ts";
import { ensureTestImages } from "../harness/images.ts";
import { startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const QUICKSTART = new URL("../../examples/quickstart", import.meta.url).pathname;

async function uploadSandbox(api: StackClient): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gt-sandbox-"));
  const file = join(dir, "sandbox.tgz");
  await tar.c({ gzip: true, file, cwd: QUICKSTART, portable: true }, [
    "train.py",
    "moons.py",
    "exec_in_container.sh",
    "search_space.json",
  ]);
  const body = readFileSync(file);
  await rm(dir, { recursive: true, force: true });
  const { key, url } = await api.call("upload", { size: body.length });
  const res = await fetch(url, { method: "PUT", body, headers: { "content-length": String(body.length) } });
  assert.equal(res.status, 200);
  return key;
}

function quickstartSpec(sandboxKey: string, container: string) {
  const space = parseSearchSpace(JSON.parse(readFileSync(join(QUICKSTART, "search_space.json"), "utf8")));
  return {
    outDS: "user.demo.e2e/",
    evaluationContainer: container,
    evaluationExec: "sh ./exec_in_container.sh",
    evaluationMetrics: "metrics.tgz",
    evaluationMeta: "meta.json",
    searchSpace: { ...space, epochs: { method: "categorical" as const, dimension: { categories: [6] } } },
    maxPoints: 4,
    nParallelEvaluation: 2,
    nPointsPerIteration: 2,
    checkPointToSave: ["checkpoint"],
    sampler: { type: "random" as const, seed: 7 },
    sandboxKey,
  };
}

async function runSlice(stack: TestStack, container: string) {
  const api = await stack.connect("demo");
  const taskId = await api.submit(quickstartSpec(await uploadSandbox(api), container));
  const d = await api.waitFinished(taskId, 180_000);
  assert.equal(d.state, "finished");
  assert.equal(d.counts.points, 4);
  assert.equal(d.counts.done, 4, JSON.stringify(d.points.map((p) => p.error)));
  const losses = d.points.map((p) => p.loss as number);
  for (const l of losses) assert.ok(Number.isFinite(l) && l > 0 && l < 5, `loss ${l}`);
  assert.equal(d.best?.loss, Math.min(...losses));
  for (const p of d.points) {
    assert.equal(p.attempts, 1);
    assert.equal(p.values.epochs, 6);
    // one progress report per epoch, forwarded once each
    assert.deepEqual(
      p.reports.map((r) => r.resource),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(p.metricsKeys.length, 1);
    assert.equal(p.logKeys.length, 1);
  }
  // Metrics tarballs and logs come back through presigned URLs, named the PanDA way.
  const { items } = await api.call("download", { taskId, kinds: ["metrics", "log"] });
  assert.equal(items.length, 8);
  const dir = await mkdtemp(join(tmpdir(), "gt-dl-"));
  try {
    for (const it of items) {
      const res = await fetch(it.url);
      assert.equal(res.status, 200, it.name);
      const file = join(dir, it.name);
      await writeFile(file, Buffer.from(await res.arrayBuffer()));
      if (it.kind === "metrics") {
        assert.match(it.name, new RegExp(`^${taskId}\\.metrics\\.\\d{6}_a1\\.tgz$`));
        const names: string[] = [];
        await tar.t({ file, onReadEntry: (e) => void names.push(e.path) });
        assert.ok(
          names.some((n) => n.endsWith("metrics.csv")),
          names.join(","),
        );
      } else {
        assert.match(readFileSync(file, "utf8"), /exec_in_container\.sh: train\.py exited with 0/);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return d;
}

describe("first end-to-end slice", { timeout: 400_000 }, () => {
  describe("process runtime", () => {
    let stack: TestStack;
    before(async () => (stack = await startTestStack({ runtime: "process", agents: 1, slotsPerAgent: 2 })));
    after(() => stack?.cleanup());
    it("runs the quickstart training to maxPoints and stores every result", async () => {
      await runSlice(stack, "gridtune/python:1");
    });
  });

  describe("docker runtime", () => {
    let stack: TestStack;
    before(async () => {
      assert.ok(
        await dockerAnswers(),
        "no Docker daemon answers on /var/run/docker.sock: run `npm run setup` (as root) first",
      );
      await ensureTestImages();
      stack = await startTestStack({
        runtime: "docker",
        agents: 1,
        slotsPerAgent: 2,
        allowedImages: ["gridtune/python:1"],
      });
    });
    after(() => stack?.cleanup());
    it("runs the same task in hardened containers from the allow-list", async () => {
      await runSlice(stack, "gridtune/python:1");
    });
    it("fails every attempt of an image that is not on the site's allow-list, with the reason", async () => {
      const api = await stack.connect("demo");
      // maxEvaluationJobs defaults to 2 × maxPoints (PanDA): allow all three attempts here.
      const spec = {
        ...quickstartSpec(await uploadSandbox(api), "gridtune/busybox:1"),
        maxPoints: 1,
        maxEvaluationJobs: 3,
      };
      const d = await api.waitFinished(await api.submit(spec), 120_000);
      assert.equal(d.counts.failed, 1, JSON.stringify(d.points));
      assert.equal(d.points[0]?.attempts, 3);
      assert.match(d.points[0]?.error ?? "", /allow-list|not allowed/i);
    });
  });
});
