// ProcessRuntime: the same run protocol as the docker runtime, with real processes on this host.
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ProcessRuntime } from "../../evaluator/runtime/process.ts";
import type { PauseControl, RunHooks, RunSpec } from "../../evaluator/runtime/types.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { RuntimeError } from "../../protocol/errors.ts";

let root = "";
let seq = 0;

async function newSpec(argv: string[], over: Partial<RunSpec> = {}): Promise<RunSpec> {
  const workDir = await mkdtemp(join(root, "wd-"));
  const key = `rtproc-${++seq}`;
  return {
    key,
    argv,
    workDir,
    env: {},
    limits: { wallClockMs: 20_000 },
    network: "none",
    gpus: [],
    logFile: join(root, `${key}.log`),
    maxLogBytes: 64 * 1024,
    stopGraceMs: 2000,
    ...over,
  };
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

  it("exit codes, stdout lines one by one, stderr only in the log", async () => {
    const lines: string[] = [];
    const spec = await newSpec(["sh", "-c", "echo out1; echo err1 >&2; printf 'out2\\r\\npartial'; exit 7"]);
    const out = await runtime.run(spec, hooks(lines));
    assert.equal(out.exitCode, 7);
    assert.deepEqual(lines, ["out1", "out2", "partial"]);
    const log = await readFile(spec.logFile, "utf8");
    assert.match(log, /err1/);
    assert.equal(out.logBytes, Buffer.byteLength(log));
    assert.deepEqual(
      [out.timedOut, out.stopped, out.oomKilled, out.logTruncated],
      [false, false, false, false],
    );
  });

  it("a missing command exits 127 with the reason in the log", async () => {
    const spec = await newSpec(["/no/such/binary", "x"]);
    const out = await runtime.run(spec, hooks());
    assert.equal(out.exitCode, 127);
    assert.match(await readFile(spec.logFile, "utf8"), /cannot start "\/no\/such\/binary"/);
  });

  it("the wall-clock limit stops the run (timedOut)", async () => {
    const spec = await newSpec(["sh", "-c", "echo started; sleep 60"], { limits: { wallClockMs: 800 } });
    const out = await runtime.run(spec, hooks());
    assert.equal(out.timedOut, true);
    assert.equal(out.stopped, false);
    assert.equal(out.exitCode, 128 + 15);
    assert.ok(out.durationMs < 3000, `${out.durationMs} ms`);
    assert.match(await readFile(spec.logFile, "utf8"), /wall-clock limit of 800 ms/);
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

  it("a payload that ignores SIGTERM is killed after the grace", async () => {
    const ac = new AbortController();
    const spec = await newSpec(["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"], {
      stopGraceMs: 700,
    });
    const out = await runtime.run(spec, {
      signal: ac.signal,
      onStdoutLine: (l) => l === "ready" && ac.abort(),
    });
    assert.equal(out.stopped, true);
    assert.equal(out.exitCode, 137);
    assert.ok(out.durationMs >= 700 && out.durationMs < 4000, `${out.durationMs} ms`);
  });

  it("pause stops the whole group until resume; a stop while paused is handled as SIGTERM", async () => {
    const ac = new AbortController();
    // the trap's exit code tells a SIGTERM handled (7) from the SIGKILL after the grace (137)
    const spec = await newSpec(
      ["sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do echo tick; sleep 0.02; done"],
      { stopGraceMs: 15_000 },
    );
    let control: PauseControl | null = null;
    let ticks = 0;
    const run = runtime.run(spec, {
      signal: ac.signal,
      onStarted: (c) => (control = c),
      onStdoutLine: (l) => {
        if (l === "tick") ticks++;
      },
    });
    while (ticks < 3) await sleep(10);
    assert.ok(control !== null, "the process runtime can pause");
    const c: PauseControl = control;
    await c.pause();
    await sleep(200); // lines already in the pipe arrive
    const before = ticks;
    await sleep(300);
    assert.equal(ticks, before, "no tick while paused");
    await c.resume();
    while (ticks < before + 3) await sleep(10);
    await c.pause();
    ac.abort();
    const out = await run;
    assert.equal(out.stopped, true);
    assert.equal(out.exitCode, 7, "the paused payload handled its SIGTERM, not the SIGKILL after the grace");
  });

  it("an already aborted signal starts nothing", async () => {
    const ac = new AbortController();
    ac.abort();
    const spec = await newSpec(["sh", "-c", "echo ran > ran.txt"]);
    const out = await runtime.run(spec, hooks(undefined, ac.signal));
    assert.equal(out.stopped, true);
    assert.equal(out.exitCode, -1);
    await assert.rejects(stat(join(spec.workDir, "ran.txt")));
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

  it("caps the log with a marker line; stdout lines keep flowing", async () => {
    const lines: string[] = [];
    const spec = await newSpec(
      [
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
      ],
      {
        maxLogBytes: 1000,
      },
    );
    const out = await runtime.run(spec, hooks(lines));
    assert.equal(out.logTruncated, true);
    const log = await readFile(spec.logFile, "utf8");
    assert.ok(Buffer.byteLength(log) < 1300, `${Buffer.byteLength(log)} bytes`);
    assert.match(log, /log truncated/);
    assert.equal(lines.length, 2000);
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

  it("close() stops running payloads, is idempotent, and refuses later runs", async () => {
    const own = new ProcessRuntime();
    let closing: Promise<void> | undefined;
    const out = await own.run(await newSpec(["sh", "-c", "echo up; sleep 60"]), {
      signal: new AbortController().signal,
      onStdoutLine: () => {
        closing ??= own.close();
      },
    });
    await closing;
    await own.close();
    assert.equal(out.stopped, true);
    await assert.rejects(
      own.run(await newSpec(["true"]), hooks()),
      (e: unknown) => e instanceof RuntimeError && e.code === "RUNTIME_UNAVAILABLE",
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
