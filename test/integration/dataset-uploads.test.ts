// Abandoned multipart uploads of dataset files, on the real S3 server (the embedded SigV4-checking
// one, alone): the server lists, describes and aborts uploads only for a signed request; an
// unfinished upload counts in its user's quota; the sweep, on a FakeClock moved past the age (no
// sleeping), aborts it in S3, and a resumed put then starts a new upload.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { World } from "../../steering/core/world.ts";
import { DEFAULT_BUCKET } from "../../stack/embedded.ts";
import { startS3Server, type S3ServerHandle } from "../../stack/s3Server.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { abortUploadPort, UploadSweep } from "../../steering/shell/datasetUploads.ts";
import { Datasets } from "../../steering/shell/datasets.ts";
import { EffectRunner } from "../../steering/shell/effects.ts";
import { DEFAULT_TENANT_LIMITS } from "../../steering/core/limits.ts";
import { quietPorts, testWorld } from "../unit/fixtures/agentKit.ts";
import { TenantLimitsReader } from "../../steering/shell/limits.ts";
import { keys, Storage } from "../../steering/shell/storage.ts";
import { FakeClock } from "../unit/fixtures/fakeClock.ts";

const MiB = 1024 * 1024;
const DAY = 24 * 3_600_000;
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe(
  "abandoned dataset uploads: counted in the quota, aborted by the sweep",
  { timeout: 120_000 },
  () => {
    let work: string;
    let s3: S3ServerHandle;
    let storage: Storage;
    const lines: string[] = [];
    const logger = createLogger("test", { sink: (l) => lines.push(l) });

    const storageWith = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
      new Storage({
        endpoint: s3.endpoint,
        region: "us-east-1",
        bucket: DEFAULT_BUCKET,
        ...credentials,
        presignTtlSeconds: 600,
      });

    before(async () => {
      work = await mkdtemp(join(tmpdir(), "gt-dsuploads-"));
      s3 = await startS3Server({ dir: join(work, "s3", "data"), buckets: [DEFAULT_BUCKET] });
      storage = storageWith(s3.credentials);
    });
    after(async () => {
      storage?.close();
      await s3?.stop();
      await rm(work, { recursive: true, force: true });
    });

    /** Starts a multipart upload of `size` bytes with datasetPut and sends part 1 (5 MiB). */
    async function startUpload(datasets: Datasets, user: string, name: string, size: number) {
      const req = { name, path: "train.bin", size, sha256: sha("unused") };
      const r = await datasets.put(user, { verb: "datasetPut", ...req, partSize: 5 * MiB });
      assert.equal(r.type, "multipart");
      if (r.type !== "multipart") throw new Error("not multipart");
      const { urls } = await datasets.parts(user, {
        verb: "datasetParts",
        name,
        path: req.path,
        uploadId: r.uploadId,
        size,
        partSize: 5 * MiB,
        partNumbers: [1],
      });
      const res = await fetch(urls[0]!.url, {
        method: "PUT",
        body: randomBytes(5 * MiB),
        headers: { "content-length": String(5 * MiB) },
      });
      await res.body?.cancel();
      assert.equal(res.status, 200);
      return { key: keys.dataset(name) + req.path, uploadId: r.uploadId, req };
    }

    it("the S3 server lists, describes and aborts uploads for a signed request only", async () => {
      const key = keys.dataset("user.srv.ds") + "f.bin";
      const started = Date.now();
      const uploadId = await storage.createMultipart(key);
      const other = await storage.createMultipart("tasks/1/other.bin");
      const url = await storage.presignPart(key, uploadId, 1, 3);
      assert.equal(
        (await fetch(url, { method: "PUT", body: "abc", headers: { "content-length": "3" } })).status,
        200,
      );

      const listed = await storage.listMultipartUploads("datasets/user.srv.");
      assert.deepEqual(
        listed.map((u) => [u.key, u.uploadId]),
        [[key, uploadId]],
      );
      // the server's clock is this machine's; its dates have whole-second precision at worst
      const initiated = listed[0]!.initiated;
      assert.ok(
        initiated >= started - 1000 && initiated <= Date.now(),
        `Initiated ${initiated} is its start`,
      );
      const parts = await storage.listParts(key, uploadId);
      assert.deepEqual(
        parts?.map((p) => [p.n, p.size]),
        [[1, 3]],
      );

      // another key pair (a wrong secret) and no signature at all are refused
      const forged = storageWith({ ...s3.credentials, secretAccessKey: "x".repeat(40) });
      try {
        await assert.rejects(forged.listMultipartUploads("datasets/"), /SignatureDoesNotMatch/);
        await assert.rejects(forged.abortMultipart(key, uploadId), /SignatureDoesNotMatch/);
        await assert.rejects(forged.listParts(key, uploadId), /SignatureDoesNotMatch/);
      } finally {
        forged.close();
      }
      const anonymous = await fetch(`${s3.endpoint}/${DEFAULT_BUCKET}?uploads`);
      assert.equal(anonymous.status, 403);
      const anonymousAbort = await fetch(`${s3.endpoint}/${DEFAULT_BUCKET}/${key}?uploadId=${uploadId}`, {
        method: "DELETE",
      });
      assert.equal(anonymousAbort.status, 403);
      // an upload id is the server's own name of a folder: one that leaves it names no upload
      await assert.rejects(storage.abortMultipart(key, `../${uploadId}`), /NoSuchUpload/);
      // an upload is aborted under its own key only
      await assert.rejects(
        storage.abortMultipart(keys.dataset("user.srv.ds") + "g.bin", uploadId),
        /NoSuchUpload/,
      );
      assert.notEqual(await storage.listParts(key, uploadId), null, "still there");

      await storage.abortMultipart(key, uploadId);
      assert.equal(await storage.listParts(key, uploadId), null);
      assert.deepEqual(await storage.listMultipartUploads("datasets/user.srv."), []);
      assert.ok(
        !existsSync(join(work, "s3", "data", DEFAULT_BUCKET, "._S3rver_uploads", uploadId)),
        "parts deleted",
      );
      await storage.abortMultipart("tasks/1/other.bin", other);
    });

    it("an unfinished upload counts in its user's quota until the sweep aborts it; a resumed put starts anew", async () => {
      const limiter = new TenantLimitsReader({ ...DEFAULT_TENANT_LIMITS, datasetBytes: 8 * MiB });
      const datasets = new Datasets(storage, limiter, () => 1024 * 1024);
      const up = await startUpload(datasets, "alice", "user.alice.big", 6 * MiB);

      // 5 MiB of parts are held: a new 4 MiB file would make 9 MiB, over the 8 MiB limit
      const ls = await datasets.list("alice", { verb: "datasetList", mine: true });
      assert.deepEqual(
        [ls.usage.bytes, ls.usage.files, ls.usage.uploads, ls.usage.uploadBytes],
        [5 * MiB, 1, 1, 5 * MiB],
      );
      const other = {
        verb: "datasetPut" as const,
        name: "user.alice.small",
        path: "s.bin",
        sha256: sha("x"),
      };
      const refusal = await datasets.put("alice", { ...other, size: 4 * MiB }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(refusal instanceof GridtuneError, String(refusal));
      assert.match(refusal.message, /would hold 9437184 bytes, the limit dataset_bytes is 8388608/);
      // resuming that upload is not charged twice: its parts become the 6 MiB file
      const resumed = await datasets.put("alice", {
        ...up.req,
        verb: "datasetPut",
        partSize: 5 * MiB,
        uploadId: up.uploadId,
      });
      assert.deepEqual(resumed, { type: "multipart", uploadId: up.uploadId, partSize: 5 * MiB });

      const clock = new FakeClock(Date.now());
      const state = new SteeringState();
      const c = new Committer(
        state,
        { append: () => Promise.resolve() },
        { publish: () => undefined },
        logger,
      );
      const agents = new AgentRegistry(30_000);
      const world: World = testWorld({ tasks: state, agents });
      const sweep = new UploadSweep({
        storage,
        run: (d, effects) => c.run(d, effects),
        world: () => world,
        effects: new EffectRunner({
          ...quietPorts(agents, () => undefined),
          logger,
          abortUpload: abortUploadPort(storage, logger),
        }),
        clock,
        maxAgeMs: DAY,
        logger,
      });
      clock.advance(DAY - 60_000);
      assert.deepEqual(await sweep.sweep(), { aborted: 0, kept: 1, freedBytes: 0 });
      assert.equal((await storage.listMultipartUploads("datasets/")).length, 1);

      clock.advance(2 * 60_000);
      assert.deepEqual(await sweep.sweep(), { aborted: 1, kept: 0, freedBytes: 5 * MiB });
      assert.deepEqual(await storage.listMultipartUploads("datasets/"), [], "gone from S3");
      assert.equal(await storage.listParts(up.key, up.uploadId), null);
      assert.match(lines.join("\n"), /abandoned dataset upload aborted.*user\.alice\.big\/train\.bin/);

      // the quota has its bytes back; a put resuming the aborted upload gets a new one
      const after = await datasets.list("alice", { verb: "datasetList", mine: true });
      assert.deepEqual([after.usage.bytes, after.usage.uploads], [0, 0]);
      await datasets.put("alice", { ...other, size: 4 * MiB });
      const again = await datasets.put("alice", {
        ...up.req,
        verb: "datasetPut",
        partSize: 5 * MiB,
        uploadId: up.uploadId,
      });
      assert.equal(again.type, "multipart");
      assert.ok(
        again.type === "multipart" && again.uploadId !== up.uploadId,
        "a new upload, not the aborted one",
      );
      if (again.type === "multipart") await storage.abortMultipart(up.key, again.uploadId);
    });
  },
);
