// The rules of `gridtune-steering admin dataset publish` that need no server: published names
// (never the users' `user.*` scope), --from as a user's dataset or a directory, and the S3
// settings the admin command takes (steering's keys, or the embedded stack's credentials file).
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { adminStorageConfig } from "../../steering/cli/adminDatasets.ts";
import { parsePublishedName, parseSource } from "../../steering/shell/datasetPublish.ts";
import { isPublishedName } from "../../steering/shell/datasets.ts";

const refusal = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof GridtuneError ? `${e.code}: ${e.message}` : String(e);
  }
};

void describe("admin dataset publish rules", () => {
  void it("a published name is any valid dataset name outside user.*", () => {
    for (const ok of ["public.mnist", "hep.atlas.2026", "mc23_13p6TeV.x", "users.x", "USER.x"])
      assert.equal(parsePublishedName(ok), ok);
    assert.match(
      refusal(() => parsePublishedName("user.alice.mnist")) ?? "",
      /^INVALID_ARGUMENT: NAME user\.alice\.mnist: user\.\* is the users' own scope .* e\.g\. public\.mnist$/,
    );
    assert.match(refusal(() => parsePublishedName("../x")) ?? "", /^INVALID_ARGUMENT: NAME "\.\.\/x"/);
    assert.match(refusal(() => parsePublishedName("a..b")) ?? "", /no '\.\.'/);
    assert.ok(!isPublishedName("user.bob.x") && !isPublishedName(""));
  });

  void it("--from: user.<u>.<name> is a user's dataset, anything else a directory", () => {
    assert.deepEqual(parseSource("user.demo.digits"), { type: "dataset", name: "user.demo.digits" });
    assert.deepEqual(parseSource("./data"), { type: "dir", dir: "./data" });
    assert.match(refusal(() => parseSource("user.demo/../x")) ?? "", /^INVALID_ARGUMENT: --from/);
  });

  void it("S3 settings: keys from the environment, else the stack's credentials file; none is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-dspub-unit-"));
    try {
      const endpoint = "http://127.0.0.1:9";
      const fromEnv = await adminStorageConfig(
        { dir },
        {
          S3_ENDPOINT: endpoint,
          AWS_ACCESS_KEY_ID: "AK",
          AWS_SECRET_ACCESS_KEY: "SK",
          GRIDTUNE_BUCKET: "bkt",
        },
      );
      assert.deepEqual(
        [fromEnv.endpoint, fromEnv.accessKeyId, fromEnv.secretAccessKey, fromEnv.bucket],
        [endpoint, "AK", "SK", "bkt"],
      );
      await assert.rejects(
        adminStorageConfig({ dir }, { S3_ENDPOINT: endpoint }),
        /steering's S3 keys are needed: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --dir/,
      );
      await mkdir(join(dir, "s3"));
      await writeFile(
        join(dir, "s3", "credentials.json"),
        JSON.stringify({ accessKeyId: "FILEKEY", secretAccessKey: "FILESECRET" }),
      );
      const fromFile = await adminStorageConfig({ dir, s3Bucket: "other" }, { S3_ENDPOINT: endpoint });
      assert.deepEqual([fromFile.accessKeyId, fromFile.bucket], ["FILEKEY", "other"]);
      await assert.rejects(adminStorageConfig({ dir }, {}), /pass --s3-endpoint or set S3_ENDPOINT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
