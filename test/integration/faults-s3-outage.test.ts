// An S3 outage on the real stack (issue 14, item 7): the S3 server is stopped while attempts are
// uploading their outputs and while others are being claimed (their sandbox comes from S3), then
// started again on the same port and directory. Every point's computed loss is kept, each attempt
// counts once, the artifacts S3 missed are uploaded after the outage, and no point fails for good.
// The outage lasts GRIDTUNE_S3_OUTAGE_S seconds (default 45: longer than the agent's upload
// retries, so a loss that waited for its log would be thrown away); the 3-minute outage is
// `GRIDTUNE_S3_OUTAGE_S=180 node --import tsx scripts/run-tests.ts faults-s3-outage`.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildSandbox, uploadSandbox } from "../../client/sandbox.ts";
import type { PointView, TaskDetail } from "../../protocol/api.ts";
import { DEFAULT_BUCKET } from "../../stack/embedded.ts";
import { startS3Server, type S3ServerHandle } from "../../stack/s3Server.ts";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const OUTAGE_MS = Number(process.env.GRIDTUNE_S3_OUTAGE_S ?? "45") * 1000;
const POINTS = 8;
const STEPS = 6;

describe(`an S3 outage of ${OUTAGE_MS / 1000} s`, { timeout: OUTAGE_MS + 300_000 }, () => {
  let stack: TestStack;
  let restarted: S3ServerHandle | null = null;
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "gridtune-outage-"));
    stack = await startTestStack({
      agents: 2,
      slotsPerAgent: 2,
      // were an attempt to fail, its retries would spread over the outage rather than use it up
      env: {
        GRIDTUNE_RETRY_BASE_MS: String(Math.round(OUTAGE_MS / 4)),
        GRIDTUNE_RETRY_MAX_MS: String(OUTAGE_MS),
      },
    });
  });
  after(async () => {
    await stack?.cleanup();
    await restarted?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("keeps every computed loss, uploads what S3 missed afterwards, and fails no point", async () => {
    const api = await stack.connect();
    // a sandbox, so every claim needs S3 (the agent fetches it before the payload starts)
    await writeFile(join(tmp, "notes.json"), JSON.stringify({ about: "the outage test's sandbox" }));
    const sandbox = (await buildSandbox(tmp))!;
    const grant = await api.call("upload", { size: sandbox.data.length });
    await uploadSandbox(grant.url, sandbox.data);
    const taskId = await api.submit(
      stepsTask(
        {
          maxPoints: POINTS,
          nParallelEvaluation: 4,
          nPointsPerIteration: 4,
          maxAttempts: 2,
          sandboxKey: grant.key,
        },
        { steps: STEPS, delay: 0.4 },
      ),
    );
    // S3 goes away while the first points run (their uploads meet it) and the next are claimed
    await api.waitFor(taskId, (d) => d.points.some((p) => p.reports.length >= STEPS - 2), 60_000);
    const down = Date.now();
    await stack.s3.stop();
    const during = await api.waitFor(
      taskId,
      (d) => d.points.some((p) => (p.missing ?? []).some((m) => m.pending)),
      Math.min(OUTAGE_MS, 60_000),
    );
    const lossesDuring = new Map(
      during.points.filter((p) => p.state === "done").map((p) => [p.pointId, p.loss]),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, down + OUTAGE_MS - Date.now())));
    restarted = await startS3Server({
      dir: join(stack.dir, "s3", "data"),
      port: stack.s3.port,
      buckets: [DEFAULT_BUCKET],
    });
    const up = Date.now();

    const settled = (d: TaskDetail) =>
      d.state === "finished" && d.points.every((p) => (p.missing ?? []).every((m) => !m.pending));
    const d = await api.waitFor(taskId, settled, OUTAGE_MS + 240_000);
    const failed = d.points.filter((p) => p.state !== "done");
    assert.deepEqual(failed.map(brief), [], "no point fails for good");
    assert.equal(d.counts.done, POINTS);
    for (const p of d.points) {
      assert.equal(p.attempts, 1, `point ${p.pointId}: the outage cost no attempt`);
      assert.ok(
        Math.abs(p.loss! - ((Number(p.values.x) - 3) ** 2 + 1 / STEPS)) < 1e-9,
        `point ${p.pointId}'s loss`,
      );
      assert.deepEqual(p.missing ?? [], [], `point ${p.pointId}: every artifact reached S3 in the end`);
      assert.equal(p.logKeys.length, 1, `point ${p.pointId} has its log`);
    }
    // the losses reported while S3 was down were kept as they were
    for (const [id, loss] of lossesDuring) assert.equal(d.points.find((p) => p.pointId === id)?.loss, loss);
    const endedDuring = d.points.filter((p) =>
      (p.history ?? []).some((h) => h.finishedAt > down && h.finishedAt < up),
    );
    assert.ok(endedDuring.length > 0, "attempts ended while S3 was down (their uploads met the outage)");
    // their logs, uploaded late, are real
    const logs = (await api.call("download", { taskId, kinds: ["log"] })).items;
    assert.equal(logs.length, POINTS);
    for (const p of endedDuring) {
      const item = logs.find((i) => i.pointId === p.pointId)!;
      assert.match(await (await fetch(item.url)).text(), /starting/);
    }
  });
});

function brief(p: PointView): string {
  return `p${p.pointId} ${p.state}: ${p.error ?? ""}`;
}
