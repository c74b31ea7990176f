// The attempt's directories and the payload's files (evaluator/workDirs.ts): trees go away without
// following symlinks (small ones synchronously, large or nested ones through fs.rm) and the scratch
// directory is made on first use. Reading the payload's files: agent-payload-fs.test.ts.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshDir, LazyDir, removeTree } from "../../evaluator/workDirs.ts";

const base = await mkdtemp(join(tmpdir(), "gridtune-workdirs-"));
after(() => rm(base, { recursive: true, force: true }));
let n = 0;
const fresh = async () => {
  const d = join(base, `case${n++}`);
  await mkdir(d);
  return d;
};

void describe("removeTree and freshDir", () => {
  void it("removes a nested tree, and symlinks without following them", async () => {
    const root = await fresh();
    const outside = join(root, "keep");
    await mkdir(outside);
    await writeFile(join(outside, "precious"), "x");
    const tree = join(root, "work");
    await mkdir(join(tree, "a", "b"), { recursive: true });
    await writeFile(join(tree, "a", "b", "f"), "1");
    await writeFile(join(tree, "input.json"), "{}");
    await symlink(outside, join(tree, "link-to-dir"));
    await symlink(join(outside, "precious"), join(tree, "link-to-file"));
    await removeTree(tree);
    await assert.rejects(stat(tree), /ENOENT/);
    assert.equal(await readFile(join(outside, "precious"), "utf8"), "x");
    await removeTree(tree); // absent is fine
  });

  void it("removes a flat directory of many files (the asynchronous path)", async () => {
    const tree = join(await fresh(), "many");
    await mkdir(tree);
    for (let i = 0; i < 300; i++) await writeFile(join(tree, `f${i}`), "");
    await symlink(base, join(tree, "link"));
    await removeTree(tree);
    await assert.rejects(stat(tree), /ENOENT/);
    assert.ok((await stat(base)).isDirectory());
  });

  void it("freshDir empties a leftover and makes missing parents", async () => {
    const root = await fresh();
    const d = join(root, "x", "y");
    await freshDir(d);
    await writeFile(join(d, "old"), "1");
    await freshDir(d);
    assert.deepEqual(await readdir(d), []);
  });

  void it("LazyDir makes its directory once, on first use", async () => {
    const d = new LazyDir(join(await fresh(), "scratch"));
    await assert.rejects(stat(d.path), /ENOENT/);
    assert.equal(await d.ensure(), d.path);
    assert.equal(await d.ensure(), d.path);
    assert.ok((await stat(d.path)).isDirectory());
  });
});
