// The task's sandbox in a steering iteration's directory (steering/program/sandbox.ts): the
// tarball is the user's and hostile. Each attack below is a hand-made tar.gz: a path out of the
// directory (`..`, absolute), a symbolic link, a hard link, a bomb over the size cap, a name given
// twice; each is refused naming the entry, and nothing lands outside the directory. A good
// sandbox is unpacked read-only, without the iteration's own %IN/%OUT names.
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { GridtuneError } from "../../protocol/errors.ts";
import { readSandbox, unpackSandbox, STEERING_SANDBOX_LIMITS } from "../../steering/program/sandbox.ts";

interface RawEntry {
  name: string;
  body?: string;
  type?: "0" | "1" | "2" | "5";
  link?: string;
}

/** A ustar tar.gz written byte by byte, so it can hold what no well-behaved tool would write. */
function tgz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, "utf8");
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(body.length.toString(8).padStart(11, "0") + "\0", 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write(e.type ?? "0", 156);
    if (e.link) h.write(e.link, 157, 100, "utf8");
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

async function refused(data: Buffer, why: RegExp, limits = STEERING_SANDBOX_LIMITS): Promise<void> {
  await assert.rejects(readSandbox(data, limits), (err) => {
    assert.ok(err instanceof GridtuneError, String(err));
    assert.equal(err.code, "ARCHIVE_REJECTED");
    assert.match(err.message, why);
    return true;
  });
}

void describe("steering sandbox: hostile tarballs", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "gt-steer-sandbox-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  void it("refuses paths out of the directory, links, and bombs, naming the entry", async () => {
    await refused(
      tgz([
        { name: "ok.py", body: "1" },
        { name: "../evil.py", body: "x" },
      ]),
      /"\.\.\/evil\.py" escapes/,
    );
    await refused(tgz([{ name: "/etc/evil.py", body: "x" }]), /"\/etc\/evil\.py" escapes/);
    await refused(tgz([{ name: "a/../../evil.py", body: "x" }]), /escapes/);
    await refused(
      tgz([{ name: "passwd.json", type: "2", link: "/etc/passwd" }]),
      /"passwd\.json" is a SymbolicLink/,
    );
    await refused(tgz([{ name: "hard.json", type: "1", link: "/etc/shadow" }]), /"hard\.json" is a Link/);
    await refused(tgz([{ name: "big.json", body: "x".repeat(5000) }]), /more than 4096 bytes/, {
      ...STEERING_SANDBOX_LIMITS,
      maxBytes: 4096,
    });
    await refused(tgz([{ name: "a.py" }, { name: "b.py" }, { name: "c.py" }]), /more than 2 entries/, {
      ...STEERING_SANDBOX_LIMITS,
      maxEntries: 2,
    });
    await refused(Buffer.from("not a tarball"), /not a readable tar\.gz/);
    assert.deepEqual(await readdir(root), [], "nothing written anywhere");
  });

  void it("refuses a name given twice instead of writing through the first", async () => {
    const dir = await mkdtemp(join(root, "twice-"));
    const entries = await readSandbox(
      tgz([
        { name: "opt.py", body: "good" },
        { name: "opt.py", body: "evil" },
      ]),
    );
    await assert.rejects(unpackSandbox(entries, dir), /entry "opt\.py" cannot be created/);
    assert.equal(await readFile(join(dir, "opt.py"), "utf8"), "good");
  });

  void it("unpacks a good sandbox read-only, leaving %IN and %OUT's names to the iteration", async () => {
    const dir = await mkdtemp(join(root, "good-"));
    const entries = await readSandbox(
      tgz([
        { name: "my_opt.py", body: "print(1)" },
        { name: "conf/", type: "5" },
        { name: "conf/settings.yaml", body: "step: 1" },
        { name: "idds_output.json", body: "[]" },
      ]),
    );
    assert.deepEqual(await unpackSandbox(entries, dir), ["conf", "my_opt.py"]);
    assert.equal(await readFile(join(dir, "conf", "settings.yaml"), "utf8"), "step: 1");
    assert.equal((await stat(join(dir, "my_opt.py"))).mode & 0o777, 0o444);
    assert.deepEqual((await readdir(dir)).sort(), ["conf", "my_opt.py"]);
  });
});
