// ProcessRuntime: what only the process runtime does, with real processes on this host (what both
// runtimes promise alike is in runtime-contract.test.ts).
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ProcessRuntime } from "../../evaluator/runtime/process.ts";
import type { RunHooks, RunSpec } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";
import { runSpecIn } from "../harness/runSpec.ts";

let root = "";
let seq = 0;

function newSpec(argv: string[], over: Partial<RunSpec> = {}): Promise<RunSpec> {
  return runSpecIn(root, `rtproc-${++seq}`, argv, over);
}

function hooks(lines?: string[], signal = new AbortController().signal): RunHooks {
  return { signal, onStdoutLine: (l) => lines?.push(l) };
}

/** Alive and not a zombie (an orphan's zombie may linger until init reaps it). */
function alive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("ProcessRuntime", () => {
  const runtime = new ProcessRuntime();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "gt-rtproc-"));
  });
  after(async () => {
    await runtime.close();
    await rm(root, { recursive: true, force: true });
  });

  it("runs argv without a shell in the work dir, with only the spec's env plus PATH/HOME and the slot's GPUs", async () => {
    process.env.GRIDTUNE_TEST_AGENT_SECRET = "must-not-leak";
    const lines: string[] = [];
    const spec = await newSpec(
      [
        "sh",
        "-c",
        'pwd; env | cut -d= -f1 | sort; echo "$TRIAL $CUDA_VISIBLE_DEVICES"; echo x > out.txt',
        "ignored-$0",
      ],
      {
        env: { TRIAL: "42" },
        gpus: ["1", "3"],
      },
    );
    const out = await runtime.run(spec, hooks(lines));
    delete process.env.GRIDTUNE_TEST_AGENT_SECRET;
    assert.equal(out.exitCode, 0);
    assert.equal(lines[0], spec.workDir);
    const names = lines.slice(1, -1);
    // sh itself adds PWD, SHLVL and _.
    assert.deepEqual(
      names.filter((n) => !["PWD", "SHLVL", "_", "OLDPWD"].includes(n)),
      ["CUDA_VISIBLE_DEVICES", "GRIDTUNE_GPUS", "HOME", "PATH", "TRIAL"],
    );
    assert.equal(lines.at(-1), "42 1,3");
    assert.equal(await readFile(join(spec.workDir, "out.txt"), "utf8"), "x\n");
    const literal: string[] = [];
    await runtime.run(await newSpec(["echo", "$HOME; rm -rf /", "`id`"]), hooks(literal));
    assert.deepEqual(literal, ["$HOME; rm -rf / `id`"], "arguments are not interpreted by a shell");
  });

  it("abort kills the whole process tree", async () => {
    const ac = new AbortController();
    const spec = await newSpec(["sh", "-c", "sleep 60 & echo $! > child.pid; echo ready; wait"], {
      stopGraceMs: 5000,
    });
    const out = await runtime.run(spec, {
      signal: ac.signal,
      onStdoutLine: (l) => l === "ready" && ac.abort(),
    });
    assert.equal(out.stopped, true);
    assert.ok(out.durationMs < 3000, `${out.durationMs} ms`);
    const child = Number(await readFile(join(spec.workDir, "child.pid"), "utf8"));
    assert.ok(child > 0);
    assert.equal(alive(child), false, `background child ${child} survived the stop`);
  });

  it("the memory limit is enforced on the group's RSS (oomKilled)", async () => {
    const spec = await newSpec(["python3", "-c", "import time; x = 'a' * (300 << 20); time.sleep(10)"], {
      limits: { wallClockMs: 20_000, memoryBytes: 64 << 20 },
    });
    const out = await runtime.run(spec, hooks());
    assert.equal(out.oomKilled, true);
    assert.equal(out.exitCode, 137);
    assert.ok(out.durationMs < 8000, `${out.durationMs} ms`);
    assert.match(await readFile(spec.logFile, "utf8"), /memory limit exceeded/);
  });

  it("rejects an empty argv and a relative work dir", async () => {
    await assert.rejects(
      runtime.run(await newSpec([]), hooks()),
      (e: unknown) => e instanceof RuntimeError && e.code === "INVALID_ARGUMENT",
    );
    await assert.rejects(
      runtime.run({ ...(await newSpec(["true"])), workDir: "rel" }, hooks()),
      (e: unknown) => e instanceof RuntimeError,
    );
  });

  it("payloads are forked by the spawn helper (not by the agent); spawn: direct forks them itself", async () => {
    const lines: string[] = [];
    const out = await runtime.run(await newSpec(["sh", "-c", "echo $PPID"]), hooks(lines));
    assert.equal(out.exitCode, 0);
    const helper = Number(lines[0]);
    assert.ok(helper > 0 && helper !== process.pid, `parent ${lines[0]} is the helper, not this process`);
    assert.match(readFileSync(`/proc/${helper}/cmdline`, "utf8"), /spawnHelper\.cjs/);
    const direct = new ProcessRuntime({ spawn: "direct" });
    const own: string[] = [];
    assert.equal((await direct.run(await newSpec(["sh", "-c", "echo $PPID"]), hooks(own))).exitCode, 0);
    assert.equal(Number(own[0]), process.pid);
    await direct.close();
  });

  it("an agent that goes away (SIGKILL): its helper kills the payloads still running and exits", async () => {
    // The agent's side of the IPC channel, as HelperSpawner opens it; disconnect() is what the
    // helper sees when the agent process dies.
    const helper = fork(
      fileURLToPath(new URL("../../evaluator/runtime/spawnHelper.cjs", import.meta.url)),
      [],
      {
        execArgv: [],
        serialization: "advanced",
        stdio: ["ignore", "ignore", "inherit", "ipc"],
      },
    );
    const exited = new Promise((r) => helper.once("exit", r));
    const pid = await new Promise<number>((resolve, reject) => {
      helper.on("message", (m: { t: string; pid?: number; message?: string }) => {
        if (m.t === "spawned" && m.pid) resolve(m.pid);
        if (m.t === "failed") reject(new Error(m.message));
      });
      helper.send({
        t: "spawn",
        id: 1,
        file: "sh",
        args: ["-c", "sleep 60"],
        cwd: root,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });
    });
    assert.equal(alive(pid), true);
    helper.disconnect();
    await exited;
    const deadline = Date.now() + 2000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, `payload ${pid} outlived its agent`);
  });

  it("a spawn helper that dies mid-run: the payload's group is killed, the run ends, the next run gets a new helper", async () => {
    const own = new ProcessRuntime();
    let helper = 0;
    const spec = await newSpec(["sh", "-c", "sleep 60 & echo $! > child.pid; echo $PPID; wait"]);
    const out = await own.run(spec, {
      signal: new AbortController().signal,
      onStdoutLine: (l) => {
        helper = Number(l);
        process.kill(helper, "SIGKILL");
      },
    });
    assert.ok(helper > 0);
    assert.equal(out.exitCode, 137, "killed with its helper");
    assert.ok(out.durationMs < 5000, `${out.durationMs} ms`);
    const child = Number(await readFile(join(spec.workDir, "child.pid"), "utf8"));
    // SIGKILL is delivered asynchronously: on a busy machine the process may take a moment to die
    const deadline = Date.now() + 2000;
    while (alive(child) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(child), false, `background child ${child} survived its helper by 2 s`);
    const lines: string[] = [];
    assert.equal((await own.run(await newSpec(["sh", "-c", "echo $PPID"]), hooks(lines))).exitCode, 0);
    assert.notEqual(Number(lines[0]), helper, "a new helper");
    await own.close();
  });
});
