// The rules of `phpo dataset` that need no server: names and paths (protocol/datasets.ts), the
// scope rules steering applies (steering/shell/datasets.ts), phpo's own name check, the files `put`
// takes from a directory, the quota check (steering/core/limits.ts) and the admin's new overrides.
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { defaultStateDir, localFiles } from "../../client/datasetTransfer.ts";
import { checkPutName } from "../../client/verbs/dataset/put.ts";
import { DatasetName, DatasetPath } from "../../protocol/datasets.ts";
import { GridtuneError } from "../../protocol/errors.ts";
import { assertReadable, assertWritable } from "../../steering/shell/datasets.ts";
import { checkDatasetQuota, DEFAULT_TENANT_LIMITS, LimitExceededError } from "../../steering/core/limits.ts";
import { readLimitsFile, setLimits } from "../../steering/security/adminLimits.ts";

const code = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof GridtuneError ? `${e.code}: ${e.message}` : String(e);
  }
};

void describe("dataset rules", () => {
  void it("paths: relative, no dot segments, no empty segment, within S3's key length", () => {
    for (const ok of ["a.txt", "B/b1.h5", "x/y/z_1-2.bin", "..a", "a.."])
      assert.ok(DatasetPath.safeParse(ok).success, ok);
    for (const bad of [
      "",
      "/a",
      "a/",
      "a//b",
      "../a",
      "a/../b",
      "./a",
      "a/./b",
      ".",
      "..",
      "a b",
      "a\\b",
      "é",
      "x".repeat(751),
    ])
      assert.ok(!DatasetPath.safeParse(bad).success, JSON.stringify(bad));
    assert.ok(DatasetName.safeParse("user.alice.mnist").success);
    for (const bad of ["user..alice", "user.alice/x", ".hidden", "user.alice.a b"])
      assert.ok(!DatasetName.safeParse(bad).success, bad);
  });

  void it("writes: only user.<user>.<name>, the refusal naming the option and the rule", () => {
    assert.equal(
      code(() => assertWritable("alice", "user.alice.mnist", "--name")),
      null,
    );
    for (const name of [
      "user.bob.mnist",
      "user.alice.",
      "user.alicex.mnist",
      "public.mnist",
      "mnist",
      "user.ali",
    ])
      assert.match(
        code(() => assertWritable("alice", name, "--name")) ?? "accepted",
        new RegExp(
          `^FORBIDDEN: --name ${name.replaceAll(".", "\\.")}: you may write only datasets of your own scope, user\\.alice\\.<name>`,
        ),
      );
  });

  void it("reads: the user's own scope and any scope but another user's", () => {
    for (const name of ["user.alice.mnist", "public.mnist", "mnist", "group.atlas.x"])
      assert.equal(
        code(() => assertReadable("alice", name, "--trainingDS")),
        null,
        name,
      );
    assert.match(
      code(() => assertReadable("alice", "user.bob.mnist", "--trainingDS")) ?? "accepted",
      /^FORBIDDEN: --trainingDS user\.bob\.mnist is a private dataset of user bob: use a dataset of your own \(phpo dataset put DIR --name user\.alice\.<name>\)/,
    );
    // "user.alicex" is not alice's scope
    assert.match(
      code(() => assertReadable("alice", "user.alicex.d", "--trainingDS")) ?? "accepted",
      /^FORBIDDEN/,
    );
  });

  void it("phpo checks the name before sending anything (exit 2 for a bad one, FORBIDDEN for a foreign scope)", () => {
    assert.equal(checkPutName("user.alice.x", "alice"), "user.alice.x");
    assert.match(
      code(() => checkPutName("user.bob.x", "alice")) ?? "",
      /^FORBIDDEN: --name user\.bob\.x: your datasets are named user\.alice\.<name>/,
    );
    assert.match(
      code(() => checkPutName("user/alice", "alice")) ?? "",
      /^INVALID_ARGUMENT: --name user\/alice/,
    );
  });

  void it("put DIR takes regular files recursively, names relative to DIR; links are left out; bad names are named", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-ds-rules-"));
    try {
      await mkdir(join(dir, "d", "A"), { recursive: true });
      await writeFile(join(dir, "d", "a.txt"), "a");
      await writeFile(join(dir, "d", "A", "b.txt"), "bb");
      await writeFile(join(dir, "secret"), "host file");
      await symlink(join(dir, "secret"), join(dir, "d", "link.txt"));
      assert.deepEqual(
        localFiles([join(dir, "d")]).map((f) => [f.path, f.size]),
        [
          ["A/b.txt", 2],
          ["a.txt", 1],
        ],
      );
      assert.deepEqual(
        localFiles([join(dir, "d", "A", "b.txt")]).map((f) => f.path),
        ["b.txt"],
      );
      assert.match(
        code(() => localFiles([join(dir, "d", "a.txt"), join(dir, "d", "A", "..", "a.txt")])) ?? "",
        /two files would be named a\.txt/,
      );
      await writeFile(join(dir, "d", "with space.txt"), "x");
      assert.match(
        code(() => localFiles([join(dir, "d")])) ?? "",
        /"with space\.txt" cannot be a dataset file name/,
      );
      assert.match(code(() => localFiles([join(dir, "nope")])) ?? "", /no such file or directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it("resumable uploads keep their state under XDG_STATE_HOME, else the given HOME's ~/.local/state", () => {
    assert.equal(defaultStateDir({ XDG_STATE_HOME: "/s", HOME: "/h" }), "/s/gridtune/uploads");
    assert.equal(defaultStateDir({ HOME: "/h" }), "/h/.local/state/gridtune/uploads");
  });

  void it("quota: bytes and files after the upload, the refusal naming the limit and the admin command", () => {
    const limits = { ...DEFAULT_TENANT_LIMITS, datasetBytes: 100, datasetFiles: 3 };
    checkDatasetQuota("bob", limits, { bytes: 100, files: 3 }, "f");
    assert.throws(
      () => checkDatasetQuota("bob", limits, { bytes: 101, files: 1 }, "big.bin (101 bytes)"),
      (e: unknown) =>
        e instanceof LimitExceededError &&
        e.limit === "datasetBytes" &&
        /with big\.bin \(101 bytes\) your datasets would hold 101 bytes, the limit dataset_bytes is 100: .*set-limits bob --dataset-bytes 200/.test(
          e.message,
        ),
    );
    assert.throws(
      () => checkDatasetQuota("bob", limits, { bytes: 1, files: 4 }, "f"),
      (e: unknown) => e instanceof LimitExceededError && e.limit === "datasetFiles" && !e.retryable,
    );
  });

  void it("admin set-limits takes --dataset-bytes and --dataset-files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-ds-limits-"));
    try {
      const r = await setLimits(dir, "bob", { datasetBytes: "1000", datasetFiles: "7" });
      assert.deepEqual(r.overrides, { datasetBytes: 1000, datasetFiles: 7 });
      assert.deepEqual((await readLimitsFile(dir)).users.bob, { datasetBytes: 1000, datasetFiles: 7 });
      await assert.rejects(
        setLimits(dir, "bob", { datasetFiles: "0" }),
        /--dataset-files 0: give a positive whole number/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
