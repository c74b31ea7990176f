import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createTarball, fingerprint, safeExtract } from "../../evaluator/archive.ts";
import { rejectsCode } from "./fixtures/engineKit.ts";

const MKTAR = fileURLToPath(new URL("./fixtures/mktar.py", import.meta.url));

interface Entry {
  name: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "chardev" | "header-only";
  data?: string;
  size?: number;
  zeros?: boolean;
  mode?: number;
  uid?: number;
  linkname?: string;
  declared?: number;
}

let root = "";
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "gt-archive-test-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh case directory: work/ (where archives are made), dest/ (not created) and outside/ (a sentinel). */
async function fresh(): Promise<{ dir: string; dest: string; outside: string }> {
  const dir = join(root, `case-${++n}`);
  await mkdir(join(dir, "outside"), { recursive: true });
  await writeFile(join(dir, "outside", "keep.txt"), "untouched");
  return { dir, dest: join(dir, "dest"), outside: join(dir, "outside") };
}

function mktar(file: string, entries: Entry[]): string {
  execFileSync("/usr/bin/python3", [MKTAR, file, JSON.stringify(entries)]);
  return file;
}

/** Every path under dir, relative, sorted (directories with a trailing /). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const st = await lstat(join(d, name));
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) {
        out.push(`${r}/`);
        await walk(join(d, name), r);
      } else out.push(r);
    }
  };
  await walk(dir, "");
  return out;
}

/** The case directory holds exactly dest/ (empty), outside/keep.txt and the archive, nothing else. */
async function assertNothingWritten(
  c: { dir: string; dest: string; outside: string },
  archive: string,
): Promise<void> {
  assert.deepEqual(await tree(c.dest), [], "no partial output is left in dest");
  assert.deepEqual(await tree(c.outside), ["keep.txt"], "nothing written outside");
  assert.equal(await readFile(join(c.outside, "keep.txt"), "utf8"), "untouched");
  const top = (await readdir(c.dir)).sort();
  assert.deepEqual(top, ["dest", "outside", archive.split("/").pop()!].sort());
}

void describe("safeExtract: regular archives", () => {
  void it("extracts files and directories and returns the file paths", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "ok.tar.gz"), [
      { name: "a.txt", type: "file", data: "alpha" },
      { name: "sub", type: "dir" },
      { name: "sub/b.json", type: "file", data: '{"b":1}', mode: 0o600 },
      { name: "sub/deeper/c.py", type: "file", data: "print(1)" },
      { name: "empty", type: "dir" },
    ]);
    const files = await safeExtract(f, c.dest);
    assert.deepEqual([...files].sort(), ["a.txt", "sub/b.json", "sub/deeper/c.py"]);
    assert.deepEqual(await tree(c.dest), [
      "a.txt",
      "empty/",
      "sub/",
      "sub/b.json",
      "sub/deeper/",
      "sub/deeper/c.py",
    ]);
    assert.equal(await readFile(join(c.dest, "sub/b.json"), "utf8"), '{"b":1}');
    assert.equal((await stat(join(c.dest, "sub/b.json"))).mode & 0o777, 0o600);
  });

  void it("accepts an uncompressed tar too", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "ok.tar"), [{ name: "x.sh", type: "file", data: "echo" }]);
    assert.deepEqual(await safeExtract(f, c.dest), ["x.sh"]);
  });

  void it("merges into dest: other files are kept, same-named files replaced", async () => {
    const c = await fresh();
    await mkdir(join(c.dest, "sub"), { recursive: true });
    await writeFile(join(c.dest, "mine.txt"), "mine");
    await writeFile(join(c.dest, "sub", "old.txt"), "old");
    const f = mktar(join(c.dir, "m.tar.gz"), [
      { name: "sub/old.txt", type: "file", data: "new" },
      { name: "sub/more.txt", type: "file", data: "more" },
    ]);
    await safeExtract(f, c.dest);
    assert.equal(await readFile(join(c.dest, "mine.txt"), "utf8"), "mine");
    assert.equal(await readFile(join(c.dest, "sub/old.txt"), "utf8"), "new");
    assert.equal(await readFile(join(c.dest, "sub/more.txt"), "utf8"), "more");
    assert.deepEqual(
      (await readdir(c.dest)).filter((x) => x.startsWith(".extract-")),
      [],
      "the temporary directory is removed",
    );
  });

  void it("strips setuid/setgid/sticky bits and write bits for group/other, and does not keep the archive's owner", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "suid.tar.gz"), [
      { name: "suid", type: "file", data: "x", mode: 0o4755, uid: 12345 },
      { name: "sgid", type: "file", data: "x", mode: 0o2777, uid: 12345 },
      { name: "sticky", type: "dir", mode: 0o1777, uid: 12345 },
      { name: "sticky/f", type: "file", data: "x", mode: 0o6711 },
    ]);
    await safeExtract(f, c.dest);
    for (const [name, want] of [
      ["suid", 0o755],
      ["sgid", 0o755],
      ["sticky", 0o755],
      ["sticky/f", 0o711],
    ] as const) {
      const st = await stat(join(c.dest, name));
      assert.equal(st.mode & 0o7777, want, `${name}: mode ${(st.mode & 0o7777).toString(8)}`);
      assert.equal(st.uid, process.getuid?.(), `${name}: owner`);
    }
  });
});

void describe("safeExtract: hostile archives are rejected with ARCHIVE_REJECTED, nothing written", () => {
  const cases: Array<[string, Entry[], RegExp]> = [
    [
      "an absolute path",
      [
        { name: "ok.txt", type: "file", data: "ok" },
        { name: "/tmp/gt-abs-evil.txt", type: "file", data: "evil" },
      ],
      /gt-abs-evil\.txt.*escapes/,
    ],
    [
      "a '..' entry",
      [
        { name: "ok.txt", type: "file", data: "ok" },
        { name: "../escape.txt", type: "file", data: "evil" },
      ],
      /\.\.\/escape\.txt.*escapes/,
    ],
    [
      "a nested '..' entry",
      [{ name: "a/../../escape2.txt", type: "file", data: "evil" }],
      /escape2\.txt.*escapes/,
    ],
    ["a '..' directory", [{ name: "..", type: "dir" }], /escapes/],
    [
      "a symlink with an absolute target",
      [{ name: "etc", type: "symlink", linkname: "/etc" }],
      /"etc" is a SymbolicLink/,
    ],
    [
      "a relative symlink escaping, then a file through it",
      [
        { name: "lnk", type: "symlink", linkname: "../outside" },
        { name: "lnk/pwned.txt", type: "file", data: "evil" },
      ],
      /"lnk" is a SymbolicLink/,
    ],
    [
      "a relative symlink inside the directory",
      [
        { name: "a.txt", type: "file", data: "a" },
        { name: "b", type: "symlink", linkname: "a.txt" },
      ],
      /SymbolicLink/,
    ],
    [
      "a hard link",
      [
        { name: "a.txt", type: "file", data: "a" },
        { name: "h", type: "hardlink", linkname: "/etc/hostname" },
      ],
      /"h" is a Link/,
    ],
    ["a FIFO", [{ name: "fifo", type: "fifo" }], /"fifo" is a FIFO/],
    ["a character device", [{ name: "null", type: "chardev" }], /"null" is a CharacterDevice/],
  ];
  for (const [what, entries, msg] of cases) {
    void it(`${what}`, async () => {
      const c = await fresh();
      const f = mktar(join(c.dir, "evil.tar.gz"), entries);
      await rejectsCode(safeExtract(f, c.dest), "ARCHIVE_REJECTED", msg);
      await assertNothingWritten(c, f);
      assert.equal(existsSync("/tmp/gt-abs-evil.txt"), false);
      assert.equal(existsSync(join(c.dir, "escape.txt")), false);
    });
  }

  void it("a file beyond maxBytes: rejected before its data is written", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "bomb.tar.gz"), [{ name: "big.bin", type: "file", size: 300_000 }]);
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 200_000, maxEntries: 10 }),
      "ARCHIVE_REJECTED",
      "more than 200000 bytes",
    );
    await assertNothingWritten(c, f);
  });

  void it("a total size exactly at maxBytes is accepted", async () => {
    const c = await fresh();
    const f = mktar(
      join(c.dir, "many.tar.gz"),
      [0, 1, 2, 3].map((i) => ({ name: `f${i}`, type: "file" as const, size: 1000 })),
    );
    assert.equal((await safeExtract(f, c.dest, { maxBytes: 4000, maxEntries: 4 })).length, 4);
  });

  void it("a header declaring 10 GB is rejected on the header, without reading the data", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "declared.tar"), [
      { name: "huge.bin", type: "header-only", declared: 10_000_000_000 },
    ]);
    const t0 = Date.now();
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 1024 ** 3, maxEntries: 10 }),
      "ARCHIVE_REJECTED",
      `more than ${1024 ** 3} bytes`,
    );
    assert.ok(Date.now() - t0 < 5000);
    await assertNothingWritten(c, f);
  });

  void it("a gzip bomb (zeros) is rejected by the decompression-ratio guard", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "zeros.tar.gz"), [
      { name: "zeros.bin", type: "file", size: 20 * 1024 * 1024, zeros: true },
    ]);
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 1024 ** 3, maxEntries: 10 }),
      "ARCHIVE_REJECTED",
      /decompression ratio/,
    );
    await assertNothingWritten(c, f);
  });

  void it("too many entries (refused on the first entry over the limit)", async () => {
    const c = await fresh();
    const f = mktar(join(c.dir, "entries.tar.gz"), [{ name: "e.txt", type: "file", data: "x" }]);
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 1e9, maxEntries: 0 }),
      "ARCHIVE_REJECTED",
      "more than 0 entries",
    );
    await assertNothingWritten(c, f);
  });

  void it("too many entries, after several were written: ARCHIVE_REJECTED and no partial output", async () => {
    const c = await fresh();
    const f = mktar(
      join(c.dir, "entries.tar.gz"),
      Array.from({ length: 6 }, (_, i) => ({ name: `e${i}.txt`, type: "file" as const, data: "x" })),
    );
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 1e9, maxEntries: 5 }),
      "ARCHIVE_REJECTED",
      "more than 5 entries",
    );
    await new Promise((r) => setTimeout(r, 100)); // let stray writes land, if any
    await assertNothingWritten(c, f);
  });

  void it("the total size over several entries, after some were written: ARCHIVE_REJECTED and no partial output", async () => {
    const c = await fresh();
    const f = mktar(
      join(c.dir, "many.tar.gz"),
      [0, 1, 2, 3].map((i) => ({ name: `f${i}`, type: "file" as const, size: 1000 })),
    );
    await rejectsCode(
      safeExtract(f, c.dest, { maxBytes: 3500, maxEntries: 100 }),
      "ARCHIVE_REJECTED",
      "more than 3500 bytes",
    );
    await new Promise((r) => setTimeout(r, 100));
    await assertNothingWritten(c, f);
  });

  void it("a file that is not a tar archive", async () => {
    const c = await fresh();
    const f = join(c.dir, "junk.tar.gz");
    await writeFile(f, Buffer.from("\x1f\x8bthis is not gzip data at all".repeat(20)));
    await rejectsCode(safeExtract(f, c.dest), "ARCHIVE_REJECTED");
    await assertNothingWritten(c, f);
  });

  void it("never writes through a symlink already present in dest", async () => {
    const c = await fresh();
    await mkdir(c.dest);
    await symlink(c.outside, join(c.dest, "ckpt"));
    const f = mktar(join(c.dir, "through.tar.gz"), [{ name: "ckpt/pwned.txt", type: "file", data: "evil" }]);
    await safeExtract(f, c.dest).catch(() => undefined);
    assert.deepEqual(await tree(c.outside), ["keep.txt"], "nothing written outside through dest/ckpt");
    await rm(join(c.outside, "pwned.txt"), { force: true });
  });
});

void describe("createTarball", () => {
  void it("tars the present paths (files and directories), skips missing ones, and round-trips through safeExtract", async () => {
    const c = await fresh();
    const work = join(c.dir, "work");
    await mkdir(join(work, "ckpt", "inner"), { recursive: true });
    await writeFile(join(work, "ckpt", "inner", "w.bin"), "weights");
    await writeFile(join(work, "state.json"), "{}");
    const file = join(c.dir, "out.tgz");
    const r = await createTarball(work, ["ckpt", "state.json", "missing.txt", "./state.json"], file);
    assert.deepEqual(r, { present: ["ckpt", "state.json", "state.json"], skipped: [] });
    const files = await safeExtract(file, c.dest);
    assert.deepEqual([...files].sort(), ["ckpt/inner/w.bin", "state.json"]);
    assert.equal(await readFile(join(c.dest, "ckpt/inner/w.bin"), "utf8"), "weights");
    assert.equal((await readFile(file)).subarray(0, 2).toString("hex"), "1f8b", "gzipped");
  });

  void it("returns [] and writes nothing when no path is present", async () => {
    const c = await fresh();
    const file = join(c.dir, "none.tgz");
    assert.deepEqual(await createTarball(c.dir, ["nope", "nope/either"], file), { present: [], skipped: [] });
    assert.equal(existsSync(file), false);
  });

  void it("refuses paths outside the working directory, naming them", async () => {
    const c = await fresh();
    const work = join(c.dir, "work");
    await mkdir(work);
    for (const bad of ["../outside", "/etc/hostname", "a/../../outside/keep.txt"]) {
      await rejectsCode(
        createTarball(work, [bad], join(c.dir, "x.tgz")),
        "INVALID_ARGUMENT",
        `path ${bad} is outside the working directory`,
      );
    }
    assert.equal(existsSync(join(c.dir, "x.tgz")), false);
  });
});

void describe("fingerprint", () => {
  const setup = async () => {
    const c = await fresh();
    const work = join(c.dir, "work");
    await mkdir(join(work, "ckpt"), { recursive: true });
    await writeFile(join(work, "ckpt", "a.bin"), "aaaa");
    await writeFile(join(work, "ckpt", "b.bin"), "bb");
    await writeFile(join(work, "top.json"), "{}");
    const t = new Date(1_700_000_000_000);
    for (const p of ["ckpt/a.bin", "ckpt/b.bin", "top.json"]) await utimes(join(work, p), t, t);
    return { ...c, work };
  };

  void it("lists every file with size and mtime, in a stable order", async () => {
    const { work } = await setup();
    const fp = fingerprint(work, ["ckpt", "top.json"]).value;
    assert.equal(
      fp,
      ["ckpt/a.bin:4:1700000000000", "ckpt/b.bin:2:1700000000000", "top.json:2:1700000000000"].join("|"),
    );
    assert.equal(fingerprint(work, ["ckpt", "top.json"]).value, fp, "stable when nothing changes");
    assert.equal(fingerprint(work, ["missing"]).value, "", "missing paths contribute nothing");
  });

  void it("changes when a file's size, mtime, or the set of files changes", async () => {
    const { work } = await setup();
    const fp0 = fingerprint(work, ["ckpt"]).value;
    await writeFile(join(work, "ckpt", "a.bin"), "aaaaa");
    const t = new Date(1_700_000_000_000);
    await utimes(join(work, "ckpt", "a.bin"), t, t);
    const fp1 = fingerprint(work, ["ckpt"]).value;
    assert.notEqual(fp1, fp0, "size changed");
    await utimes(join(work, "ckpt", "a.bin"), t, new Date(1_700_000_001_000));
    const fp2 = fingerprint(work, ["ckpt"]).value;
    assert.notEqual(fp2, fp1, "mtime changed");
    await writeFile(join(work, "ckpt", "c.bin"), "");
    assert.notEqual(fingerprint(work, ["ckpt"]).value, fp2, "a file was added");
  });

  void it("does not follow symlinks out of the working directory", async () => {
    const { work, outside } = await setup();
    await symlink(outside, join(work, "ckpt", "escape"));
    const fp = fingerprint(work, ["ckpt"]).value;
    assert.ok(!fp.includes("keep.txt"), `the fingerprint walked outside: ${fp}`);
    assert.throws(
      () => fingerprint(work, ["../outside"]),
      /path \.\.\/outside is outside the working directory/,
    );
  });
});
