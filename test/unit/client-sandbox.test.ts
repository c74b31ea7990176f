// The sandbox: exactly PanDA's extensions, recursively, node_modules/.git and links skipped.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSandbox, listTarGz, sandboxFiles } from "../../client/sandbox.ts";

describe("phpo sandbox", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "phpo-sandbox-"));
    const files = [
      "config.json",
      "train.py",
      "run.sh",
      "env.yaml",
      "env.yml",
      "notes.txt",
      "model.pt",
      "data/deep/more/params.json",
      "data/deep/weights.h5",
      "node_modules/pkg/package.json",
      ".git/hooks/pre-commit.sh",
      ".hidden/keep.py",
    ];
    for (const f of files) {
      await mkdir(join(dir, f, ".."), { recursive: true });
      await writeFile(join(dir, f), `content of ${f}\n`);
    }
    await symlink(join(dir, "train.py"), join(dir, "link.py"));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test("selects *.json, *.py, *.sh, *.yaml recursively", () => {
    assert.deepEqual(sandboxFiles(dir), [
      ".hidden/keep.py",
      "config.json",
      "data/deep/more/params.json",
      "env.yaml",
      "run.sh",
      "train.py",
    ]);
  });

  test("the tar.gz holds those files under their relative paths", async () => {
    const sb = await buildSandbox(dir);
    assert.ok(sb);
    const tgz = join(dir, "..", `${join(dir).split("/").pop()}-sandbox.tgz`);
    await writeFile(tgz, sb.data);
    try {
      assert.deepEqual((await listTarGz(tgz)).sort(), sb.files);
    } finally {
      await rm(tgz, { force: true });
    }
  });

  test("an empty directory gives no sandbox", async () => {
    const empty = await mkdtemp(join(tmpdir(), "phpo-empty-"));
    try {
      assert.equal(await buildSandbox(empty), null);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test("a file that is not a tar.gz is rejected by listTarGz", async () => {
    const f = join(dir, "notes.txt");
    await assert.rejects(listTarGz(f));
  });
});
