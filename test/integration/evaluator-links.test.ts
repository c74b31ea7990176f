// Issue 14 on real servers: a payload links its checkpoint paths to a root-only file of the host
// (standing for the steering seed in the host's state directory) and fails, so its checkpoint is
// saved and restored into the next attempt, which prints whatever it received into its log. The
// checkpoint stored on S3 holds the payload's own file and not the host's, the next attempt gets
// no host file, neither log shows it, and the first attempt's log names each left-out link; the
// second links its meta, metrics and progress files to host files, none of which is read. Run
// with the process runtime and, where a Docker daemon answers, with the docker runtime (the
// payload as uid 1000 in a container, the agent as root on the host).
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { Storage } from "../../steering/shell/storage.ts";
import { BUSYBOX_IMAGE, dockerAvailable, ensureTestImages } from "../harness/images.ts";
import { startTestStack, type TestStack } from "../harness/stack.ts";

const SECRET = "SEED-SUAKJ3HOSTONLY";
const dockerSkip = (await dockerAvailable()) ? false : "no Docker daemon answers on /var/run/docker.sock";

for (const runtime of ["process", "docker"] as const) {
  describe(
    `a payload's links to host files stay out of its checkpoints (${runtime} runtime)`,
    {
      skip: runtime === "docker" ? dockerSkip : false,
      timeout: 180_000,
    },
    () => {
      let stack: TestStack;
      let host = "";
      let storage: Storage;
      before(async () => {
        if (runtime === "docker") await ensureTestImages();
        stack = await startTestStack({ agents: 1, slotsPerAgent: 1, runtime });
        host = join(stack.dir, "host-state");
        await mkdir(host, { mode: 0o700 });
        await writeFile(join(host, "steering.nk"), SECRET, { mode: 0o600 });
        await writeFile(join(host, "progress.jsonl"), '{"epoch": 7, "loss": 4242}\n', { mode: 0o600 });
        storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
      });
      after(async () => {
        storage?.close();
        await stack?.cleanup();
      });

      it("attempt 1 links ckpt/seed.nk, state/ and weights.bin to the host; attempt 2 receives none of it", async () => {
        const api = await stack.connect();
        const seed = join(host, "steering.nk");
        // First attempt (no ckpt/good.txt yet): its own file plus three links out, then it fails.
        // Second attempt: prints everything it was given, links its meta, metrics and progress
        // files to the host's, then succeeds.
        const script = [
          "if [ -f ckpt/good.txt ]; then",
          'for f in ckpt/* state/* weights.bin; do echo "== $f"; cat "$f"; done; ls -lR;',
          `ln -s ${seed} meta.json && ln -s ${seed} metrics.tgz && ln -s ${host}/progress.jsonl progress.jsonl &&`,
          'echo "{\\"status\\": 0, \\"loss\\": 1}" > output.json;',
          "else",
          `mkdir -p ckpt && echo good-weights > ckpt/good.txt && ln -s ${seed} ckpt/seed.nk &&`,
          `ln -s ${host} state && ln -s ${seed} weights.bin && exit 3;`,
          "fi",
        ].join(" ");
        const taskId = await api.submit({
          outDS: `user.test.links-${runtime}/`,
          evaluationContainer: BUSYBOX_IMAGE,
          evaluationExec: `sh -c '${script}'`,
          searchSpace: { x: { method: "categorical", dimension: { categories: [1] } } } as never,
          maxPoints: 1,
          nParallelEvaluation: 1,
          maxAttempts: 2,
          checkPointToSave: ["ckpt", "state/steering.nk", "state", "weights.bin"],
          evaluationMeta: "meta.json",
          evaluationMetrics: "metrics.tgz",
        });
        const d = await api.waitFinished(taskId, 120_000);
        const p = d.points[0]!;

        const items = (await api.call("download", { taskId, kinds: ["log", "checkpoint"] })).items;
        const ckpt = items.find((i) => i.kind === "checkpoint");
        assert.ok(ckpt, "a checkpoint was stored");
        const tarText = gunzipSync(Buffer.from(await (await fetch(ckpt.url)).arrayBuffer())).toString(
          "latin1",
        );
        assert.ok(
          tarText.includes("ckpt/good.txt") && tarText.includes("good-weights"),
          "the payload's own file",
        );
        assert.ok(!tarText.includes(SECRET), "the checkpoint on S3 holds the host's file");
        assert.equal(p.state, "done", p.error ?? "");
        assert.equal(p.attempts, 2);

        const logs = new Map<number, string>();
        for (const i of items.filter((x) => x.kind === "log"))
          logs.set(i.attempt, await (await fetch(i.url)).text());
        const first = logs.get(Math.min(...logs.keys())) ?? "";
        const second = logs.get(Math.max(...logs.keys())) ?? "";
        assert.equal(logs.size, 2, `one log per attempt: ${[...logs.keys()].join(",")}`);
        for (const [attempt, text] of logs)
          assert.ok(!text.includes(SECRET), `log of attempt ${attempt}: ${text}`);
        // the first attempt is told what its checkpoint lacks, once per path
        for (const what of [
          "ckpt/seed.nk is a symbolic link",
          "state/steering.nk resolves outside",
          "state resolves outside",
          "weights.bin resolves outside",
        ])
          assert.ok(first.includes(`[gridtune] checkpoint: ${what}`), `"${what}" in ${first}`);
        // the second attempt got its own file back, and nothing else
        // (stdout and stderr interleave in the log)
        assert.match(second, /== ckpt\/good\.txt\n/);
        assert.match(second, /^good-weights$/m);
        assert.match(second, /weights\.bin.*No such file or directory/);
        assert.ok(!second.includes("seed.nk"), `ckpt/seed.nk was restored: ${second}`);

        // the linked progress, meta and metrics files were not read: no report, nothing stored
        assert.deepEqual(p.reports, []);
        assert.deepEqual(p.metricsKeys, []);
        const keys = await storage.list(`tasks/${taskId}/`);
        for (const { key } of keys)
          assert.match(key, /\/a[12]\/(checkpoint\.tgz|log\.txt)$/, "no meta, no metrics");
        for (const { key } of keys) {
          const body = Buffer.from(await (await fetch(await storage.presignGet(key))).arrayBuffer());
          const text = (body[0] === 0x1f ? gunzipSync(body) : body).toString("latin1");
          assert.ok(!text.includes(SECRET) && !text.includes("4242"), `${key} holds a host file`);
        }
      });
    },
  );
}
