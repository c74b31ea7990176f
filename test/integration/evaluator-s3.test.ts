// S3 unreachable on real servers: the s3rver process is stopped mid-job and started again on the
// same port and directory. A short outage: the agent's uploads (checkpoints, outputs, log) are
// retried with backoff and succeed, the attempt counts once. An outage longer than the retries: the
// attempt's loss counts at once with its log listed as missing (the reason names the upload), the
// log is uploaded once S3 is back, and the agent keeps serving.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_BUCKET } from "../../stack/embedded.ts";
import { startS3Server, type S3ServerHandle } from "../../stack/s3Server.ts";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

describe("S3 unreachable while jobs run", { timeout: 240_000 }, () => {
  let stack: TestStack;
  /** The S3 server started by this test (the stack's own stop() only stops the first one). */
  let restarted: S3ServerHandle | null = null;
  before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 1 })));
  after(async () => {
    await stack?.cleanup();
    await restarted?.stop();
  });

  async function stopS3(): Promise<void> {
    await (restarted ?? stack.s3).stop();
    restarted = null;
  }
  async function startS3(): Promise<void> {
    restarted = await startS3Server({
      dir: join(stack.dir, "s3", "data"),
      port: stack.s3.port,
      buckets: [DEFAULT_BUCKET],
    });
  }

  it("a short outage: uploads are retried with backoff and succeed; one attempt, nothing lost", async () => {
    const api = await stack.connect();
    // 20 steps of 0.15 s with a checkpoint every 0.6 s; S3 goes away after step 4 for 5 s, so
    // checkpoint uploads and the final uploads (output, log) all meet the outage.
    const taskId = await api.submit(
      stepsTask(
        { maxPoints: 1, nParallelEvaluation: 1, checkPointToSave: ["checkpoint"], checkPointInterval: 0.01 },
        { steps: 20, delay: 0.15 },
      ),
    );
    await api.waitFor(taskId, (d) => (d.points[0]?.reports.length ?? 0) >= 4, 30_000);
    const down = Date.now();
    await stopS3();
    await new Promise((r) => setTimeout(r, 5000));
    await startS3();
    const d = await api.waitFinished(taskId, 60_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.attempts, 1, "no attempt was lost to the outage");
    assert.ok((d.finishedAt ?? 0) > down + 5000, "the results could only be stored after S3 came back");
    assert.equal(p.logKeys.length, 1);
    assert.notEqual(p.checkpointKey, null);
    const logs = (await api.call("download", { taskId, kinds: ["log", "checkpoint"] })).items;
    const log = logs.find((i) => i.kind === "log")!;
    assert.match(await (await fetch(log.url)).text(), /starting/);
    const ckpt = await fetch(logs.find((i) => i.kind === "checkpoint")!.url);
    assert.equal(ckpt.status, 200);
    assert.ok((await ckpt.arrayBuffer()).byteLength > 0);
  });

  it("an outage longer than the upload retries: the loss counts, the log follows once S3 is back", async () => {
    const api = await stack.connect();
    await stopS3();
    const taskId = await api.submit(
      stepsTask({ maxPoints: 1, nParallelEvaluation: 1, maxAttempts: 1 }, { steps: 2, delay: 0 }),
    );
    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.ok(Math.abs(p.loss! - ((Number(p.values.x) - 3) ** 2 + 0.5)) < 1e-9, "the computed loss counts");
    assert.equal(p.logKeys.length, 0);
    const gap = p.missing?.[0];
    assert.equal(gap?.kind, "log");
    assert.equal(gap.pending, true);
    assert.match(gap.reason, /upload to .* failed after \d+ tries.*the agent keeps trying/);
    assert.doesNotMatch(gap.reason, /X-Amz-Signature/, "presigned URLs never appear in reasons");

    await startS3();
    const later = await api.waitFor(taskId, (x) => (x.points[0]?.logKeys.length ?? 0) === 1, 120_000);
    assert.equal(later.points[0]!.missing, undefined, "the log arrived: nothing is missing");
    const ok = await api.waitFinished(
      await api.submit(stepsTask({ maxPoints: 2, nParallelEvaluation: 1 }, { steps: 2, delay: 0 })),
      60_000,
    );
    assert.equal(ok.counts.done, 2);
    assert.equal(ok.points[0]!.logKeys.length, 1);
  });
});
