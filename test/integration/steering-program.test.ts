// A local steering program (steeringExec without steeringContainer) run by the real
// LocalSteeringRunner, through its watchdog: exit status and output tail come back; a missing
// executable is an INVALID_ARGUMENT naming it and the fix; a timeout or an abort kills the
// program's whole process group, not only its first process.
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { describe, it } from "node:test";
import { RuntimeError } from "../../protocol/errors.ts";
import { DEFAULT_STEERING_LIMITS, LocalSteeringRunner } from "../../steering/program/runner.ts";

/** True while a process with this PID runs (a zombie, killed and not yet reaped, does not). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat !== null && stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

async function withDir<T>(runner: LocalSteeringRunner, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await runner.scratchDir();
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const never = new AbortController().signal;
const instance = `program-test-${process.pid}`;

describe("local steering program", { timeout: 60_000 }, () => {
  it("runs in its scratch directory and returns its exit code and output", async () => {
    const runner = new LocalSteeringRunner(undefined, instance);
    await withDir(runner, async (dir) => {
      const r = await runner.run(
        ["sh", "-c", 'pwd > where; echo to-out; echo to-err >&2; test "$HOME" = "$PWD"; exit 3'],
        dir,
        null,
        never,
      );
      assert.equal(r.exitCode, 3);
      assert.equal(r.timedOut, false);
      assert.match(r.outputTail, /to-out/);
      assert.match(r.outputTail, /to-err/);
      assert.equal((await readFile(`${dir}/where`, "utf8")).trim(), dir);
    });
  });

  it("refuses a missing executable with INVALID_ARGUMENT naming it", async () => {
    const runner = new LocalSteeringRunner(undefined, instance);
    await withDir(runner, async (dir) => {
      await assert.rejects(runner.run(["/no/such/optimiser", "%IN"], dir, null, never), (err) => {
        assert.ok(err instanceof RuntimeError);
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.match(err.message, /cannot start "\/no\/such\/optimiser" \(ENOENT/);
        assert.match(err.message, /steeringContainer/);
        return true;
      });
    });
  });

  it("a timeout kills the whole process group", async () => {
    const runner = new LocalSteeringRunner({ ...DEFAULT_STEERING_LIMITS, timeoutMs: 1_000 }, instance);
    await withDir(runner, async (dir) => {
      const r = await runner.run(["sh", "-c", "sleep 300 & echo $! > child; wait"], dir, null, never);
      assert.equal(r.timedOut, true);
      assert.equal(r.exitCode, null, "killed by a signal");
      const child = Number(await readFile(`${dir}/child`, "utf8"));
      assert.ok(child > 0);
      assert.equal(await alive(child), false, "the program's own child is gone too");
    });
  });

  it("an abort (task killed, steering stopping) kills it as well", async () => {
    const runner = new LocalSteeringRunner(undefined, instance);
    await withDir(runner, async (dir) => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 500);
      const t0 = Date.now();
      const r = await runner.run(["sh", "-c", "sleep 300 & echo $! > child; wait"], dir, null, abort.signal);
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(r.timedOut, false);
      assert.equal(r.exitCode, null);
      assert.equal(await alive(Number(await readFile(`${dir}/child`, "utf8"))), false);
    });
  });
});
