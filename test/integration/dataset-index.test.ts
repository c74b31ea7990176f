// The dataset index on the real S3 server (the embedded SigV4-checking one, alone): `ls` reads one
// entry per dataset and never lists the files of every user; datasets older than the index are
// found by a one-time migration (a warning); commits, rm, publish and unpublish keep the entries;
// an unreadable entry is made again from its dataset; `admin dataset reindex` rebuilds it all.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { DEFAULT_BUCKET } from "../../stack/embedded.ts";
import { startS3Server, type S3ServerHandle } from "../../stack/s3Server.ts";
import { DatasetIndex } from "../../steering/shell/datasetIndex.ts";
import { listPublished, publishDataset, unpublishDataset } from "../../steering/shell/datasetPublish.ts";
import { Datasets } from "../../steering/shell/datasets.ts";
import { DEFAULT_TENANT_LIMITS } from "../../steering/core/limits.ts";
import { TenantLimitsReader } from "../../steering/shell/limits.ts";
import { keys, Storage } from "../../steering/shell/storage.ts";

const sha = (b: string) => createHash("sha256").update(b).digest("hex");

describe("the dataset index: ls costs O(datasets), not O(files)", { timeout: 120_000 }, () => {
  let work: string;
  let s3: S3ServerHandle;
  let storage: Storage;
  /** The prefixes listed since the last reset (a spy on Storage.list). */
  let listed: string[] = [];
  let warnings: string[] = [];
  let datasets: Datasets;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "gt-dsindex-"));
    s3 = await startS3Server({ dir: join(work, "s3", "data"), buckets: [DEFAULT_BUCKET] });
    storage = new Storage({
      endpoint: s3.endpoint,
      region: "us-east-1",
      bucket: DEFAULT_BUCKET,
      ...s3.credentials,
      presignTtlSeconds: 600,
    });
    const list = storage.list.bind(storage);
    storage.list = (prefix: string) => {
      listed.push(prefix);
      return list(prefix);
    };
  });
  after(async () => {
    storage?.close();
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    listed = [];
    warnings = [];
    datasets = new Datasets(storage, new TenantLimitsReader(DEFAULT_TENANT_LIMITS), () => 1024 * 1024, {
      warn: (m) => warnings.push(m),
    });
  });

  /** A file through the API's own path: datasetPut, the presigned PUT, datasetCommit. */
  async function putFile(user: string, name: string, path: string, body: string): Promise<void> {
    const req = { name, path, size: body.length, sha256: sha(body) };
    const r = await datasets.put(user, { verb: "datasetPut", ...req });
    assert.equal(r.type, "single");
    if (r.type !== "single") return;
    const res = await fetch(r.url, {
      method: "PUT",
      body,
      headers: { "content-length": String(body.length) },
    });
    assert.equal(res.status, 200);
    await datasets.commit(user, { verb: "datasetCommit", ...req });
  }

  it("datasets older than the index are found once by a full listing (a warning), then by their entries", async () => {
    // as steering before the index left them: objects and manifests, no entry, no marker
    await storage.put(keys.dataset("user.alice.old") + "a.txt", "aa");
    await storage.put(keys.dataset("user.alice.old") + "sub/b.txt", "bbb");
    await storage.put(keys.dataset("user.bob.old") + "c.txt", "c");
    await storage.put(keys.dataset("public.old") + "d.txt", "dddd");
    const first = await datasets.list("alice", { verb: "datasetList" });
    assert.deepEqual(first.datasets, [
      { name: "user.alice.old", files: 2, bytes: 5, published: false },
      { name: "public.old", files: 1, bytes: 4, published: true },
    ]);
    assert.deepEqual(first.usage, {
      bytes: 5,
      files: 2,
      maxBytes: DEFAULT_TENANT_LIMITS.datasetBytes,
      maxFiles: DEFAULT_TENANT_LIMITS.datasetFiles,
      uploads: 0,
      uploadBytes: 0,
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /listed every object under datasets\/ once/);
    assert.ok(listed.includes("datasets/"), "the migration lists everything once");
    assert.notEqual(await storage.head(keys.datasetIndexBuilt), null);
    assert.notEqual(await storage.head(keys.datasetIndex("user.bob.old")), null);

    // another steering process (a restart) finds the marker: no full listing again
    listed = [];
    const again = new Datasets(storage, new TenantLimitsReader(DEFAULT_TENANT_LIMITS), () => 1024 * 1024, {
      warn: (m) => warnings.push(m),
    });
    const bob = await again.list("bob", { verb: "datasetList" });
    assert.deepEqual(
      bob.datasets.map((d) => d.name),
      ["user.bob.old", "public.old"],
    );
    assert.equal(warnings.length, 1, "no second migration");
    assert.deepEqual(listed.sort(), [keys.datasetIndexPublished, keys.datasetIndexUsers + "user.bob."]);
  });

  it("a listing reads the user's entries and the published ones only: no dataset's files are listed", async () => {
    await putFile("carol", "user.carol.ds", "x.txt", "xyz");
    listed = [];
    const mine = await datasets.list("carol", { verb: "datasetList", mine: true });
    assert.deepEqual(mine.datasets, [{ name: "user.carol.ds", files: 1, bytes: 3, published: false }]);
    assert.deepEqual(listed, [keys.datasetIndexUsers + "user.carol."]);
    assert.ok(!listed.some((p) => p.startsWith("datasets/")), `listed ${listed.join(", ")}`);
  });

  it("commits add to a dataset's entry; rm removes it", async () => {
    await putFile("dave", "user.dave.ds", "1.txt", "1");
    await putFile("dave", "user.dave.ds", "2.txt", "22");
    await putFile("dave", "user.dave.other", "3.txt", "333");
    const ls = await datasets.list("dave", { verb: "datasetList", mine: true });
    assert.deepEqual(
      ls.datasets.map((d) => [d.name, d.files, d.bytes]),
      [
        ["user.dave.ds", 2, 3],
        ["user.dave.other", 1, 3],
      ],
    );
    assert.deepEqual([ls.usage.files, ls.usage.bytes], [3, 6]);
    await datasets.remove("dave", "user.dave.ds");
    const after = await datasets.list("dave", { verb: "datasetList", mine: true });
    assert.deepEqual(
      after.datasets.map((d) => d.name),
      ["user.dave.other"],
    );
    assert.equal(await storage.head(keys.datasetIndex("user.dave.ds")), null);
  });

  it("publish and unpublish keep the published entries; admin list reads them", async () => {
    const dir = join(work, "pub");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "p.txt"), "pp");
    await publishDataset(storage, "hep.idx", { type: "dir", dir }, false);
    const pub = await listPublished(storage);
    assert.deepEqual(
      pub.find((d) => d.name === "hep.idx"),
      { name: "hep.idx", files: 1, bytes: 2, published: true, checksummed: 1 },
    );
    const ls = await datasets.list("erin", { verb: "datasetList" });
    assert.ok(ls.datasets.some((d) => d.name === "hep.idx" && d.published));
    await unpublishDataset(storage, "hep.idx");
    assert.ok(!(await listPublished(storage)).some((d) => d.name === "hep.idx"));
  });

  it("an unreadable entry is made again from its dataset's listing (a warning)", async () => {
    await putFile("fred", "user.fred.ds", "f.txt", "ffff");
    await storage.put(keys.datasetIndex("user.fred.ds"), "{ not json");
    const ls = await datasets.list("fred", { verb: "datasetList", mine: true });
    assert.deepEqual(ls.datasets, [{ name: "user.fred.ds", files: 1, bytes: 4, published: false }]);
    assert.match(warnings.join("\n"), /unreadable/);
    const text = await storage.getText(keys.datasetIndex("user.fred.ds"));
    assert.deepEqual(JSON.parse(text ?? "null"), { name: "user.fred.ds", files: 1, bytes: 4 });
  });

  it("reindex lists everything again: files written with raw S3 keys since, and entries of datasets gone", async () => {
    await storage.put(keys.dataset("public.raw") + "r.txt", "rr");
    await storage.put(
      keys.datasetIndex("public.gone"),
      JSON.stringify({ name: "public.gone", files: 9, bytes: 9 }),
    );
    const before = (await datasets.list("gina", { verb: "datasetList" })).datasets.map((d) => d.name);
    assert.ok(before.includes("public.gone") && !before.includes("public.raw"), before.join(", "));
    const r = await new DatasetIndex(storage).rebuild(true);
    assert.ok(r.datasets >= 1);
    const names = (await datasets.list("gina", { verb: "datasetList" })).datasets.map((d) => d.name);
    assert.ok(names.includes("public.raw") && !names.includes("public.gone"), names.join(", "));
  });
});
