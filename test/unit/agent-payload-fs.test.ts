// Issue 14: the agent (root with the docker runtime) reads a payload's working directory without
// following a link out of it: outputs (evaluator/payloadFs.ts), checkpoints and their fingerprints
// (evaluator/archive.ts). Each attack below is one a payload can stage in its own directory: a
// link to a host file, to a host directory, a linked parent directory (the reproduced attack: a
// checkpoint directory replaced by a link to the host's state directory), a FIFO, and a link
// swapped in and out while the agent reads.
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tar from "tar";
import { createTarball, fingerprint, safeExtract } from "../../evaluator/archive.ts";
import { openPayloadFile, readPayloadFile } from "../../evaluator/payloadFs.ts";

const SECRET = "SECRET-SEED-SUAKJ3";

let root = "";
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "gt-payload-fs-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A case: work/ (the payload's directory) and host/ (the agent's state: a seed, mode 0600). */
async function fresh(): Promise<{ dir: string; work: string; host: string; seed: string }> {
  const dir = join(root, `case-${++n}`);
  const work = join(dir, "work");
  const host = join(dir, "host");
  await mkdir(work, { recursive: true });
  await mkdir(host);
  const seed = join(host, "steering.nk");
  await writeFile(seed, SECRET, { mode: 0o600 });
  return { dir, work, host, seed };
}

/** Paths and contents of a .tgz made by createTarball. */
async function contents(file: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await tar.t({
    file,
    onReadEntry: (e) => {
      const chunks: Buffer[] = [];
      e.on("data", (c: Buffer) => chunks.push(c));
      e.on("end", () => out.set(e.path, Buffer.concat(chunks).toString()));
    },
  });
  return out;
}

function assertNoSecret(m: Map<string, string>): void {
  for (const [path, text] of m) assert.ok(!text.includes(SECRET), `${path} holds the host's secret`);
}

void describe("checkpoints never pack what lies outside the working directory", () => {
  void it("a checkpoint file that is a link to a host file is left out, and the reason is given", async () => {
    const c = await fresh();
    await writeFile(join(c.work, "model.bin"), "weights");
    await symlink(c.seed, join(c.work, "weights.bin"));
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["model.bin", "weights.bin"], file);
    assert.deepEqual(r.present, ["model.bin"]);
    assert.match(r.skipped.join("\n"), /weights\.bin resolves outside the working directory/);
    const m = await contents(file);
    assert.deepEqual([...m.keys()], ["model.bin"]);
    assertNoSecret(m);
  });

  void it("a checkpoint directory that is a link to a host directory: nothing is packed", async () => {
    const c = await fresh();
    await symlink(c.host, join(c.work, "ckpt"));
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["ckpt"], file);
    assert.deepEqual(r.present, []);
    assert.match(
      r.skipped[0] ?? "",
      /ckpt resolves outside the working directory \(the symlink "ckpt" points to/,
    );
    assert.equal(existsSync(file), false, "no tarball is written");
  });

  void it("a linked PARENT directory of a named checkpoint file (the reproduced attack) is not followed", async () => {
    const c = await fresh();
    // checkPointToSave: state/steering.nk, state/model.bin; the payload replaced state/ by a link
    await writeFile(join(c.host, "model.bin"), "host file too");
    await symlink(c.host, join(c.work, "state"));
    await writeFile(join(c.work, "keep.txt"), "mine");
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["state/steering.nk", "state/model.bin", "keep.txt"], file);
    assert.deepEqual(r.present, ["keep.txt"]);
    assert.equal(r.skipped.length, 2);
    const m = await contents(file);
    assert.deepEqual([...m.keys()], ["keep.txt"]);
    assertNoSecret(m);
  });

  void it("a link to a host directory nested in a named directory (and a relative link climbing out) is left out", async () => {
    const c = await fresh();
    await mkdir(join(c.work, "ckpt", "inner"), { recursive: true });
    await writeFile(join(c.work, "ckpt", "inner", "w.bin"), "weights");
    await symlink(c.host, join(c.work, "ckpt", "inner", "host"));
    await symlink("../../../host/steering.nk", join(c.work, "ckpt", "inner", "up"));
    await symlink("w.bin", join(c.work, "ckpt", "inner", "latest")); // inside, but a link: left out too
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["ckpt"], file);
    assert.deepEqual(r.present, ["ckpt"]);
    assert.deepEqual(r.skipped, [
      "ckpt/inner/host is a symbolic link; left out",
      "ckpt/inner/latest is a symbolic link; left out",
      "ckpt/inner/up is a symbolic link; left out",
    ]);
    const m = await contents(file);
    assert.deepEqual([...m.keys()], ["ckpt/", "ckpt/inner/", "ckpt/inner/w.bin"]);
    assertNoSecret(m);
    // and it restores: only regular files and directories were stored
    const dest = join(c.dir, "restored");
    assert.deepEqual(await safeExtract(file, dest), ["ckpt/inner/w.bin"]);
    assert.equal(await readFile(join(dest, "ckpt/inner/w.bin"), "utf8"), "weights");
  });

  void it("a named path through a relative link that stays inside is followed", async () => {
    const c = await fresh();
    await mkdir(join(c.work, "runs", "5"), { recursive: true });
    await writeFile(join(c.work, "runs", "5", "w.bin"), "weights");
    await symlink("runs/5", join(c.work, "latest"));
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["latest/w.bin"], file);
    assert.deepEqual(r, { present: ["latest/w.bin"], skipped: [] });
    assert.deepEqual([...(await contents(file)).entries()], [["latest/w.bin", "weights"]]);
  });

  void it("'.' packs the whole working directory under relative names", async () => {
    const c = await fresh();
    await mkdir(join(c.work, "ckpt"));
    await writeFile(join(c.work, "ckpt", "w.bin"), "w");
    await writeFile(join(c.work, "top.json"), "{}");
    const file = join(c.dir, "ckpt.tgz");
    assert.deepEqual(await createTarball(c.work, ["."], file), { present: ["."], skipped: [] });
    assert.deepEqual([...(await contents(file)).keys()], ["ckpt/", "ckpt/w.bin", "top.json"]);
    assert.deepEqual(await safeExtract(file, join(c.dir, "restored")), ["ckpt/w.bin", "top.json"]);
  });

  void it("a FIFO, named or inside a directory, is left out without blocking", async () => {
    const c = await fresh();
    await mkdir(join(c.work, "ckpt"));
    execFileSync("mkfifo", [join(c.work, "ckpt", "pipe"), join(c.work, "named-pipe")]);
    await writeFile(join(c.work, "ckpt", "w.bin"), "w");
    const file = join(c.dir, "ckpt.tgz");
    const r = await createTarball(c.work, ["ckpt", "named-pipe"], file);
    assert.deepEqual(r.present, ["ckpt"]);
    assert.deepEqual(r.skipped, [
      "ckpt/pipe is a FIFO; left out",
      "named-pipe is a FIFO; only a regular file is read; left out",
    ]);
    assert.deepEqual([...(await contents(file)).keys()], ["ckpt/", "ckpt/w.bin"]);
  });

  void it("over the uncompressed size limit: TOO_LARGE before anything is written", async () => {
    const c = await fresh();
    await writeFile(join(c.work, "big.bin"), Buffer.alloc(5000));
    const file = join(c.dir, "ckpt.tgz");
    await assert.rejects(
      createTarball(c.work, ["big.bin"], file, { maxBytes: 4999, maxEntries: 10 }),
      /5000 bytes of files to pack exceed the limit of 4999/,
    );
    assert.equal(existsSync(file), false);
  });

  void it("long names round-trip (PAX headers) and file modes keep no setuid bit", async () => {
    const c = await fresh();
    const deep = join(c.work, "d".repeat(120), "e".repeat(120));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, `${"f".repeat(150)}.bin`), "long", { mode: 0o4755 });
    const file = join(c.dir, "ckpt.tgz");
    await createTarball(c.work, ["d".repeat(120)], file);
    const dest = join(c.dir, "restored");
    const files = await safeExtract(file, dest);
    assert.deepEqual(files, [`${"d".repeat(120)}/${"e".repeat(120)}/${"f".repeat(150)}.bin`]);
    assert.equal(await readFile(join(dest, files[0]!), "utf8"), "long");
  });

  void it("the fingerprint does not follow a linked parent, a linked file or a nested link either", async () => {
    const c = await fresh();
    await symlink(c.host, join(c.work, "state"));
    await symlink(c.seed, join(c.work, "weights.bin"));
    await mkdir(join(c.work, "ckpt"));
    await symlink(c.host, join(c.work, "ckpt", "host"));
    const fp = fingerprint(c.work, ["state/steering.nk", "state", "weights.bin", "ckpt"]);
    assert.equal(fp.value, "", `the fingerprint walked outside: ${fp.value}`);
    assert.equal(fp.skipped.length, 4, fp.skipped.join("\n"));
  });
});

void describe("outputs, meta and metrics are read without following a link out", () => {
  void it("reads a regular file and one reached by a relative link inside the directory", async () => {
    const c = await fresh();
    await mkdir(join(c.work, "res"));
    await writeFile(join(c.work, "res", "out.json"), '{"loss":1}');
    await symlink("res/out.json", join(c.work, "output.json"));
    assert.equal(readPayloadFile(c.work, "output.json", 100)?.toString(), '{"loss":1}');
  });

  void it("refuses a link to a host file, a linked parent, an absolute link, a link climbing out, and a loop", async () => {
    const c = await fresh();
    await symlink(c.seed, join(c.work, "output.json"));
    await symlink(c.host, join(c.work, "up"));
    await symlink("../host/steering.nk", join(c.work, "rel.json"));
    await mkdir(join(c.work, "sub"));
    await symlink("../../host", join(c.work, "sub", "climb"));
    await symlink("loop2", join(c.work, "loop1"));
    await symlink("loop1", join(c.work, "loop2"));
    for (const p of ["output.json", "up/steering.nk", "rel.json", "sub/climb/steering.nk"]) {
      assert.throws(() => readPayloadFile(c.work, p, 100), /resolves outside the working directory/, p);
      assert.throws(() => openPayloadFile(c.work, p), /resolves outside the working directory/, p);
    }
    assert.throws(() => readPayloadFile(c.work, "loop1", 100), /more than 40 times \(a loop\?\)/);
  });

  void it("is null for a missing file or a directory; refuses a FIFO (without blocking) and an oversized file", async () => {
    const c = await fresh();
    assert.equal(readPayloadFile(c.work, "none.json", 100), null);
    assert.equal(readPayloadFile(c.work, "none/deeper.json", 100), null);
    await mkdir(join(c.work, "dir"));
    assert.equal(readPayloadFile(c.work, "dir", 100), null);
    assert.equal(openPayloadFile(c.work, "dir"), null);
    execFileSync("mkfifo", [join(c.work, "fifo")]);
    assert.throws(() => readPayloadFile(c.work, "fifo", 100), /fifo is a FIFO; only a regular file is read/);
    await writeFile(join(c.work, "big.json"), "x".repeat(101));
    assert.throws(() => readPayloadFile(c.work, "big.json", 100), /is 101 bytes; the limit is 100/);
  });
});

void describe("a link swapped in and out while the agent reads", () => {
  /**
   * A payload that keeps swapping `name` between a real directory (holding a harmless file of the
   * same name as the host's) and a link to the host directory, with atomic renames.
   */
  function swapper(work: string, host: string, name: string): ChildProcess {
    const script = `
import os, sys
work, host, name = sys.argv[1:4]
real, link = os.path.join(work, ".real"), os.path.join(work, ".link")
os.makedirs(real, exist_ok=True)
open(os.path.join(real, "steering.nk"), "w").write("harmless")
os.symlink(host, link)
target = os.path.join(work, name)
os.rename(real, target)
print("ready", flush=True)
while True:
    os.rename(target, real); os.rename(link, target)
    os.rename(target, link); os.rename(real, target)
`;
    return spawn("/usr/bin/python3", ["-c", script, work, host, name], {
      stdio: ["ignore", "pipe", "inherit"],
    });
  }

  async function ready(p: ChildProcess): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once("data", () => resolve());
      p.once("exit", (code) => reject(new Error(`the swapper exited with ${code}`)));
    });
  }

  void it("checkpoints and output reads taken during the swaps never hold the host's file", async () => {
    const c = await fresh();
    const p = swapper(c.work, c.host, "state");
    try {
      await ready(p);
      let packed = 0;
      let read = 0;
      // at least 200 rounds, and on until both states were met (the swapper may be slow to run)
      for (let i = 0; i < 200 || (packed === 0 && i < 5000); i++) {
        const file = join(c.dir, `ckpt-${i % 2}.tgz`);
        const r = await createTarball(c.work, ["state/steering.nk", "state"], file).catch((e: Error) => {
          // the tree changed between the listing and the read: not saved this time
          assert.match(e.message, /changed while the checkpoint was written/);
          return null;
        });
        if (r && r.present.length > 0) {
          packed++;
          assertNoSecret(await contents(file));
        }
        const fp = fingerprint(c.work, ["state"]);
        assert.ok(!fp.value.includes(`:${SECRET.length}:`), `the host's file was listed: ${fp.value}`);
      }
      // reads are cheap: many more of them, to hit the moment between a check and the open
      for (let i = 0; i < 20_000 || (read === 0 && i < 100_000); i++) {
        let b: Buffer | null = null;
        try {
          b = readPayloadFile(c.work, "state/steering.nk", 100);
        } catch (e) {
          assert.match((e as Error).message, /resolves outside the working directory|more than 40 times/);
        }
        if (b) {
          read++;
          assert.equal(b.toString(), "harmless");
        }
      }
      assert.ok(packed > 0 && read > 0, `the race was exercised (${packed} packed, ${read} read)`);
    } finally {
      p.kill("SIGKILL");
    }
  });
});
