// What the two runtimes promise alike, run against each: the process runtime on this host and the
// docker runtime on the real dockerd (skipped where none answers). Exit codes, stdout lines and the
// capped log, the wall-clock limit, a stop and its grace, the pause at a judged level (and a stop
// or a time-out while paused), close(), and the working directory with its files in and out. What
// only one runtime does stays in runtime-process.test.ts and runtime-docker.test.ts.
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";
import { ProcessRuntime } from "../../evaluator/runtime/process.ts";
import type { PauseControl, RunHooks, RunSpec, Runtime } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";
import { runSpecIn } from "../harness/runSpec.ts";
import { BUSYBOX_IMAGE, dockerAvailable, ensureTestImages, testDocker } from "../harness/images.ts";

const docker = await dockerAvailable();

interface Subject {
  name: "process" | "docker";
  skip: string | false;
  make: () => Runtime;
  /** What the log says of a command that is not there (the runtime's note, or docker-init's). */
  missingCommand: RegExp;
  /** After the run: nothing of it is left on the host (its container, for docker). */
  leftNothing: (key: string) => Promise<void>;
}

const subjects: Subject[] = [
  {
    name: "process",
    skip: false,
    make: () => new ProcessRuntime(),
    missingCommand: /cannot start "\/no\/such\/binary"/,
    leftNothing: () => Promise.resolve(),
  },
  {
    name: "docker",
    skip: docker ? false : "no Docker daemon answers (start dockerd or set DOCKER_HOST)",
    make: () => new DockerRuntime(),
    missingCommand: /exec \/no\/such\/binary failed|cannot start "\/no\/such\/binary"/,
    leftNothing: async (key) => {
      const list = await testDocker().listContainers({
        all: true,
        filters: { label: [`org.gridtune.key=${key}`] },
      });
      assert.equal(list.length, 0, `container of ${key} was not removed`);
    },
  },
];

function hooks(lines?: string[], signal = new AbortController().signal): RunHooks {
  return { signal, onStdoutLine: (l) => lines?.push(l) };
}

/** Waits until `cond` holds, checking every 10 ms; fails after `ms` (a generous bound, not a timing). */
async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`${what} did not happen within ${ms} ms`);
    await sleep(10);
  }
}

for (const s of subjects) {
  void describe(`runtime contract: ${s.name}`, { skip: s.skip }, () => {
    let root = "";
    let seq = 0;
    let runtime: Runtime;
    const newSpec = (argv: string[], over: Partial<RunSpec> = {}): Promise<RunSpec> =>
      runSpecIn(root, `rtcontract-${s.name}-${process.pid}-${++seq}`, argv, {
        image: BUSYBOX_IMAGE,
        limits: { wallClockMs: 20_000, memoryBytes: 128 << 20, pidsLimit: 64 },
        ...over,
      });

    before(async () => {
      if (s.name === "docker") await ensureTestImages();
      root = await mkdtemp(join(tmpdir(), `gt-rtcontract-${s.name}-`));
      runtime = s.make();
    });
    after(async () => {
      await runtime?.close();
      if (root) await rm(root, { recursive: true, force: true });
    });

    void it("returns the payload's exit code; stdout lines come one by one, stderr only goes to the log", async () => {
      const lines: string[] = [];
      const spec = await newSpec([
        "sh",
        "-c",
        "echo out1; echo err1 >&2; printf 'out2\\r\\npartial'; exit 7",
      ]);
      const out = await runtime.run(spec, hooks(lines));
      assert.equal(out.exitCode, 7);
      assert.deepEqual(lines, ["out1", "out2", "partial"]);
      const log = await readFile(spec.logFile, "utf8");
      assert.match(log, /out1/);
      assert.match(log, /err1/);
      assert.equal(out.logBytes, Buffer.byteLength(log));
      assert.deepEqual(
        [out.timedOut, out.stopped, out.oomKilled, out.logTruncated],
        [false, false, false, false],
      );
      const ok = await runtime.run(await newSpec(["sh", "-c", "exit 0"]), hooks());
      assert.equal(ok.exitCode, 0);
      await s.leftNothing(spec.key);
    });

    void it("a missing command exits 127 with the reason in the log", async () => {
      const spec = await newSpec(["/no/such/binary", "x"]);
      const out = await runtime.run(spec, hooks());
      assert.equal(out.exitCode, 127);
      assert.match(await readFile(spec.logFile, "utf8"), s.missingCommand);
      await s.leftNothing(spec.key);
    });

    void it("the payload runs in its working directory: it reads the files put there, the host sees what it writes", async () => {
      const lines: string[] = [];
      const spec = await newSpec([
        "sh",
        "-c",
        "cat input.json; echo written > result.txt && echo cwd=writable",
      ]);
      await writeFile(join(spec.workDir, "input.json"), '{"x": 1}\n');
      const out = await runtime.run(spec, hooks(lines));
      assert.equal(out.exitCode, 0, lines.join("\n"));
      assert.deepEqual(lines, ['{"x": 1}', "cwd=writable"]);
      assert.equal(await readFile(join(spec.workDir, "result.txt"), "utf8"), "written\n");
    });

    void it("the runtime follows no link out of the working directory: a linked host file keeps its owner and content", async () => {
      const host = join(root, `host-file-${seq}`);
      await writeFile(host, "host secret\n", { mode: 0o600 });
      const before = await stat(host);
      const spec = await newSpec(["sh", "-c", "echo ran"]);
      await symlink(host, join(spec.workDir, "escape"));
      const out = await runtime.run(spec, hooks());
      assert.equal(out.exitCode, 0);
      const now = await stat(host);
      assert.deepEqual([now.uid, now.gid, now.mode], [before.uid, before.gid, before.mode]);
      assert.equal(await readFile(host, "utf8"), "host secret\n");
      assert.ok(
        (await lstat(join(spec.workDir, "escape"))).isSymbolicLink(),
        "the link itself is left as it was",
      );
    });

    void it("the wall-clock limit stops the run (timedOut) without waiting for the grace", async () => {
      const spec = await newSpec(["sh", "-c", "echo started; sleep 60"], {
        limits: { wallClockMs: 1000 },
        stopGraceMs: 15_000,
      });
      const out = await runtime.run(spec, hooks());
      assert.equal(out.timedOut, true);
      assert.equal(out.stopped, false);
      assert.equal(out.exitCode, 143, "ended by its SIGTERM");
      assert.ok(out.durationMs < 15_000, `took ${out.durationMs} ms: the SIGTERM ended it, not the grace`);
      const log = await readFile(spec.logFile, "utf8");
      assert.match(log, /started/);
      assert.match(log, /wall-clock limit of 1000 ms/);
      await s.leftNothing(spec.key);
    });

    void it("a stop (abort) ends the payload by SIGTERM, without waiting for the grace", async () => {
      const ac = new AbortController();
      const spec = await newSpec(["sh", "-c", "echo ready; sleep 60"], { stopGraceMs: 15_000 });
      const out = await runtime.run(spec, {
        signal: ac.signal,
        onStdoutLine: (l) => l === "ready" && ac.abort(),
      });
      assert.equal(out.stopped, true);
      assert.equal(out.timedOut, false);
      assert.equal(out.exitCode, 143);
      assert.ok(out.durationMs < 15_000, `abort took ${out.durationMs} ms with a 15 s grace`);
      await s.leftNothing(spec.key);
    });

    void it("a payload that ignores SIGTERM is killed after the grace", async () => {
      const ac = new AbortController();
      const spec = await newSpec(["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"], {
        stopGraceMs: 800,
      });
      const out = await runtime.run(spec, {
        signal: ac.signal,
        onStdoutLine: (l) => l === "ready" && ac.abort(),
      });
      assert.equal(out.stopped, true);
      assert.equal(out.exitCode, 137);
      assert.ok(out.durationMs >= 800, `${out.durationMs} ms: killed before its grace`);
      await s.leftNothing(spec.key);
    });

    void it("an already aborted signal starts nothing", async () => {
      const ac = new AbortController();
      ac.abort();
      const spec = await newSpec(["sh", "-c", "echo ran > ran.txt"]);
      const out = await runtime.run(spec, hooks(undefined, ac.signal));
      assert.equal(out.stopped, true);
      assert.equal(out.exitCode, -1);
      await assert.rejects(stat(join(spec.workDir, "ran.txt")));
    });

    void it("caps the log with a marker line; stdout lines keep flowing past the cap (progress markers)", async () => {
      const lines: string[] = [];
      const spec = await newSpec(
        [
          "sh",
          "-c",
          "i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        ],
        { maxLogBytes: 1000 },
      );
      const out = await runtime.run(spec, hooks(lines));
      assert.equal(out.exitCode, 0);
      assert.equal(out.logTruncated, true);
      const log = await readFile(spec.logFile, "utf8");
      assert.ok(Buffer.byteLength(log) < 1300, `log is ${Buffer.byteLength(log)} bytes`);
      assert.match(log, /log truncated/);
      assert.match(log, /bytes of output dropped/);
      assert.equal(lines.length, 2000);
    });

    /** A payload that ticks every 20 ms and exits 7 on SIGTERM (137 would be the SIGKILL after the grace). */
    const ticking = () => [
      "sh",
      "-c",
      "trap 'exit 7' TERM; echo ready; while true; do echo tick; sleep 0.02; done",
    ];

    /** Starts `ticking` and returns its pause control once it ticked `n` times. */
    async function startTicking(spec: RunSpec, signal: AbortSignal) {
      let control: PauseControl | null = null;
      const state = { ticks: 0 };
      const run = runtime.run(spec, {
        signal,
        onStarted: (c) => (control = c),
        onStdoutLine: (l) => {
          if (l === "tick") state.ticks++;
        },
      });
      await until(() => state.ticks >= 3, "three ticks");
      assert.ok(control !== null, `the ${s.name} runtime can pause`);
      return { run, control: control as PauseControl, state };
    }

    void it("pause holds the whole payload until resume; a stop while paused is handled as SIGTERM", async () => {
      const ac = new AbortController();
      const spec = await newSpec(ticking(), { stopGraceMs: 15_000 });
      const { run, control, state } = await startTicking(spec, ac.signal);
      await control.pause();
      await sleep(300); // lines already on their way arrive
      const held = state.ticks;
      await sleep(500);
      assert.equal(state.ticks, held, "no tick while paused");
      await control.resume();
      await until(() => state.ticks >= held + 3, "ticks after the resume");
      await control.pause();
      ac.abort();
      const out = await run;
      assert.equal(out.stopped, true);
      assert.equal(
        out.exitCode,
        7,
        "the paused payload handled its SIGTERM, not the SIGKILL after the grace",
      );
      assert.ok(out.durationMs < 15_000, `${out.durationMs} ms`);
      await s.leftNothing(spec.key);
    });

    void it("the wall clock runs on while paused: a time-out while paused ends the payload by SIGTERM", async () => {
      const spec = await newSpec(ticking(), { limits: { wallClockMs: 2500 }, stopGraceMs: 15_000 });
      const { run, control } = await startTicking(spec, new AbortController().signal);
      await control.pause();
      const out = await run;
      assert.equal(out.timedOut, true);
      assert.equal(out.exitCode, 7, "unpaused before its SIGTERM");
      assert.ok(out.durationMs < 15_000, `${out.durationMs} ms`);
      await s.leftNothing(spec.key);
    });

    void it("no pause goes out once the payload is being stopped: it finishes handling its SIGTERM", async () => {
      // the agent's hold can come after the runtime's own stop (a time-out, the agent's shutdown)
      const ac = new AbortController();
      const spec = await newSpec(
        ["sh", "-c", "trap 'echo term; sleep 1; exit 7' TERM; echo ready; while true; do sleep 0.02; done"],
        { stopGraceMs: 15_000 },
      );
      let control: PauseControl | null = null;
      const lines: string[] = [];
      const out = await runtime.run(spec, {
        signal: ac.signal,
        onStarted: (c) => (control = c),
        onStdoutLine: (l) => {
          lines.push(l);
          if (l === "ready") ac.abort();
          if (l === "term") void control?.pause();
        },
      });
      assert.deepEqual(lines, ["ready", "term"]);
      assert.equal(out.exitCode, 7, "the payload was not frozen while it handled its SIGTERM");
      assert.doesNotMatch(
        await readFile(spec.logFile, "utf8"),
        /held \d+ ms/,
        "never paused, so never resumed by the bound",
      );
      assert.ok(out.durationMs < 15_000, `${out.durationMs} ms`);
      await s.leftNothing(spec.key);
    });

    void it("a hold nobody ends is bounded: the payload goes on by itself", async () => {
      const own =
        s.name === "docker" ? new DockerRuntime({ maxHoldMs: 500 }) : new ProcessRuntime({ maxHoldMs: 500 });
      const ac = new AbortController();
      const spec = await newSpec(ticking());
      let control: PauseControl | null = null;
      const state = { ticks: 0 };
      const run = own.run(spec, {
        signal: ac.signal,
        onStarted: (c) => (control = c),
        onStdoutLine: (l) => {
          if (l === "tick") state.ticks++;
          if (state.ticks === 3) void control?.pause();
          if (state.ticks === 6) ac.abort();
        },
      });
      const out = await run;
      await own.close();
      assert.equal(state.ticks >= 6, true, "it ticked on after the bound");
      assert.equal(out.exitCode, 7);
      assert.match(await readFile(spec.logFile, "utf8"), /held 500 ms with no resume/);
    });

    void it("close() stops running payloads (a paused one too), is idempotent, and refuses later runs", async () => {
      const own = s.make();
      const spec = await newSpec(ticking(), { stopGraceMs: 15_000 });
      let control: PauseControl | null = null;
      let closing: Promise<void> | undefined;
      const out = await own.run(spec, {
        signal: new AbortController().signal,
        onStarted: (c) => (control = c),
        onStdoutLine: (l) => {
          if (l !== "tick" || closing) return;
          const c = control;
          closing = (c ? c.pause() : Promise.resolve()).then(() => own.close());
        },
      });
      await closing;
      await own.close();
      assert.equal(out.stopped, true);
      assert.equal(out.exitCode, 7, "paused when the agent shut down, it still handled its SIGTERM");
      await s.leftNothing(spec.key);
      await assert.rejects(
        own.run(await newSpec(["true"]), hooks()),
        (e: unknown) => e instanceof RuntimeError && e.code === "RUNTIME_UNAVAILABLE",
      );
    });
  });
}
