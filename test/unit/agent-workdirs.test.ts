// The attempt's directories and the payload's files (evaluator/workDirs.ts): trees go away without
// following symlinks (small ones synchronously, large or nested ones through fs.rm), the scratch directory is made on first use, and a payload's output that
// resolves outside its working directory (a symlink to a host file, or through a symlinked
// directory) is refused instead of read; a FIFO does not block the agent.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  freshDir,
  LazyDir,
  payloadFile,
  readPayloadFile,
  realPathOf,
  removeTree,
} from "../../evaluator/workDirs.ts";

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

void describe("payload files", () => {
  const setup = async () => {
    const root = await fresh();
    const work = join(root, "work");
    await mkdir(work);
    await writeFile(join(root, "host-secret"), "secret");
    return { root, work, real: await realPathOf(work) };
  };

  void it("reads a regular file and one reached by a symlink inside the directory", async () => {
    const { work, real } = await setup();
    await writeFile(join(work, "out.json"), '{"loss":1}');
    await symlink("out.json", join(work, "output.json"));
    assert.equal(readPayloadFile(real, join(work, "output.json"), 100)?.toString(), '{"loss":1}');
    assert.deepEqual(payloadFile(real, join(work, "output.json")), {
      path: join(real, "out.json"),
      size: 10,
    });
  });

  void it("refuses a symlink to a host file and a path through a symlinked directory", async () => {
    const { root, work, real } = await setup();
    await symlink(join(root, "host-secret"), join(work, "output.json"));
    await symlink(root, join(work, "up"));
    for (const p of [join(work, "output.json"), join(work, "up", "host-secret")]) {
      assert.throws(() => readPayloadFile(real, p, 100), /resolves outside the working directory/);
      assert.throws(() => payloadFile(real, p), /resolves outside the working directory/);
    }
  });

  void it("is null for a missing file, a directory or a FIFO (without blocking), and refuses an oversized one", async () => {
    const { work, real } = await setup();
    assert.equal(readPayloadFile(real, join(work, "none.json"), 100), null);
    await mkdir(join(work, "dir"));
    assert.equal(readPayloadFile(real, join(work, "dir"), 100), null);
    assert.equal(payloadFile(real, join(work, "dir")), null);
    execFileSync("mkfifo", [join(work, "fifo")]);
    assert.equal(readPayloadFile(real, join(work, "fifo"), 100), null);
    await writeFile(join(work, "big.json"), "x".repeat(101));
    assert.throws(() => readPayloadFile(real, join(work, "big.json"), 100), /is 101 bytes; the limit is 100/);
  });
});
