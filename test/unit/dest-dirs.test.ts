// Issue 14, item 9a: `phpo download --dest /proc/x` spun at 90 % CPU for 10 minutes: Node's
// recursive mkdir loops forever where mkdir answers ENOENT under an existing parent (/proc). The
// directory is now made one level at a time (protocol/dirs.ts), before connecting, and a --dest
// that cannot be made or written fails at once with exit code 2, naming --dest and the fix. The
// same for the agent's --work-dir (made at start, before any job could hang in the thread pool).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DirectoryError, makeDirs } from "../../protocol/dirs.ts";

const bin = (name: string) => fileURLToPath(new URL(`../../bin/${name}`, import.meta.url));

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gt-dest-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/**
 * Runs phpo with no configuration (no server to reach). A command that hangs is killed after a
 * minute: a hang is what this test looks for, so it must end as a failure, not block the run.
 */
function run(name: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin(name), ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", HOME: dir, NATS_URL: "tls://127.0.0.1:1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(kill);
      resolve({ code, stderr });
    });
  });
}

void describe("phpo download --dest", () => {
  void it("under /proc: exit code 2 at once, naming --dest and the fix (it used to spin forever)", async () => {
    const r = await run("phpo", ["download", "1", "--dest", "/proc/gridtune-test/x"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /--dest \/proc\/gridtune-test\/x: cannot create \/proc\/gridtune-test: this file system does not take new directories.*; choose a directory you can write, e.g. --dest \.\/downloads/,
    );
  });

  void it("a file in the way: exit code 2 naming it, before any connection is tried", async () => {
    await writeFile(join(dir, "plain"), "x");
    const r = await run("phpo", ["download", "1", "--dest", "plain/sub"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--dest plain\/sub: .*plain exists and is not a directory/);
  });
});

void describe("gridtune-evaluator --work-dir", () => {
  void it("under /proc: exit code 2 at start, naming --work-dir", async () => {
    const r = await run("gridtune-evaluator", [
      ...["--site", "s", "--name", "a", "--runtime", "process", "--trusted-users", "demo"],
      ...["--seed-file", join(dir, "none.nk"), "--work-dir", "/proc/gridtune-test/w"],
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--work-dir \/proc\/gridtune-test\/w: cannot create \/proc\/gridtune-test: /);
  });
});

void describe("makeDirs", () => {
  void it("makes missing parents and accepts an existing directory", () => {
    const p = join(dir, "a", "b", "c");
    makeDirs(p);
    assert.ok(statSync(p).isDirectory());
    makeDirs(p);
    makeDirs(`${p}/`);
  });

  void it("refuses /proc and /sys paths with DirectoryError instead of looping", () => {
    for (const p of ["/proc/gridtune-x", "/proc/gridtune-x/y", "/sys/gridtune-x"]) {
      assert.throws(
        () => makeDirs(p),
        (e: unknown) => e instanceof DirectoryError && e.message.includes(p.split("/").slice(0, 3).join("/")),
      );
      assert.equal(existsSync(p), false);
    }
  });
});
