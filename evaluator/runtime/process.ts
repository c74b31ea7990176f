// The process runtime: the evaluation's argv runs directly on the node, for sites without Docker.
// Same protocol as the docker runtime (working dir as cwd, capped log, stdout lines, wall clock,
// abort, OOM), but without isolation: the payload runs as the agent's user with the agent's
// filesystem view. Limits: memoryBytes is enforced by polling the RSS of the process group (a
// breach kills the group and reports oomKilled); nanoCpus and pidsLimit need cgroups and are NOT
// enforced here (use the docker runtime where they matter).
import { constants as osConstants } from "node:os";
import { isAbsolute } from "node:path";
import { RuntimeError } from "../../protocol/errors.ts";
import { GroupMemoryWatch } from "./groupMemory.ts";
import { PauseHold } from "./pauseHold.ts";
import { DirectSpawner, HelperSpawner, type SpawnedChild, type Spawner } from "./spawner.ts";
import type { RunHooks, RunOutcome, RunSpec, Runtime } from "./types.ts";
import { sleep } from "../../protocol/async.ts";
import { describeStop, LineSplitter, LogCapture, type StopCause } from "./logCapture.ts";

export interface ProcessRuntimeOptions {
  /** How often the memory watch samples the process group's RSS (default 200 ms). */
  memoryPollMs?: number;
  /** How long to wait for the output pipes to drain after the process exits (default 2000 ms). */
  drainMs?: number;
  /** "helper" (default): payloads are forked by a lean helper process; "direct": by the agent. */
  spawn?: "helper" | "direct";
  /** Longest a payload stays paused at a judged level when nobody resumes it (default MAX_HOLD_MS). */
  maxHoldMs?: number;
}

/** After SIGKILL, how long to wait for the exit event before giving up on the process. */
const KILL_DEADLINE_MS = 10_000;

interface ActiveRun {
  stop(cause: StopCause): void;
  done: Promise<unknown>;
}

export class ProcessRuntime implements Runtime {
  readonly kind = "process" as const;
  private readonly memory: GroupMemoryWatch;
  private readonly spawner: Spawner;
  private readonly drainMs: number;
  private readonly maxHoldMs: number | undefined;
  private readonly active = new Set<ActiveRun>();
  private closing: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions = {}) {
    this.memory = new GroupMemoryWatch(options.memoryPollMs ?? 200);
    this.spawner = options.spawn === "direct" ? new DirectSpawner() : new HelperSpawner();
    this.drainMs = options.drainMs ?? 2000;
    this.maxHoldMs = options.maxHoldMs;
  }

  async run(spec: RunSpec, hooks: RunHooks): Promise<RunOutcome> {
    if (this.closing) {
      throw new RuntimeError("RUNTIME_UNAVAILABLE", `process runtime is closed; cannot start ${spec.key}`);
    }
    const [command, ...args] = spec.argv;
    if (command === undefined || command === "") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `run ${spec.key}: argv is empty; the evaluation needs a command`,
      );
    }
    if (!isAbsolute(spec.workDir)) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `run ${spec.key}: workDir must be an absolute path, got "${spec.workDir}"`,
      );
    }
    const log = new LogCapture(spec.logFile, spec.maxLogBytes);
    const started = Date.now();
    const finish = async (exitCode: number, flags: Partial<RunOutcome>): Promise<RunOutcome> => {
      await log.close();
      return {
        exitCode,
        timedOut: false,
        oomKilled: false,
        stopped: false,
        ...flags,
        durationMs: Date.now() - started,
        logBytes: log.bytes,
        logTruncated: log.truncated,
      };
    };
    if (hooks.signal.aborted) {
      // exitCode -1: the payload never ran.
      log.note(`stop requested before ${spec.key} started: not started`);
      return finish(-1, { stopped: true });
    }

    const child = this.spawner.spawn(command, args, {
      cwd: spec.workDir,
      // Only what the payload needs: the spec's env plus PATH/HOME; the slot's GPUs always win.
      env: {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: process.env.HOME ?? spec.workDir,
        ...spec.env,
        CUDA_VISIBLE_DEVICES: spec.gpus.join(","),
        GRIDTUNE_GPUS: spec.gpus.join(","),
      },
    });
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once("spawn", () => resolve(undefined));
      child.once("error", (err) => resolve(err));
    });
    if (spawned) {
      // Shell conventions: 127 command not found, 126 not executable; the reason goes in the log.
      const code = (spawned as NodeJS.ErrnoException).code;
      log.note(`cannot start ${JSON.stringify(command)} in ${spec.workDir}: ${spawned.message}`);
      return finish(code === "ENOENT" ? 127 : 126, {});
    }

    let resolveDone!: () => void;
    const entry: ActiveRun = { stop: () => {}, done: new Promise<void>((r) => (resolveDone = r)) };
    this.active.add(entry);
    try {
      const result = await this.supervise(child, spec, hooks, log, entry);
      return await finish(result.exitCode, {
        timedOut: result.cause === "timeout",
        stopped: result.cause === "abort" || result.cause === "close",
        oomKilled: result.cause === "oom",
      });
    } finally {
      this.active.delete(entry);
      resolveDone();
    }
  }

  private async supervise(
    child: SpawnedChild,
    spec: RunSpec,
    hooks: RunHooks,
    log: LogCapture,
    entry: ActiveRun,
  ): Promise<{ exitCode: number; cause: StopCause | undefined }> {
    const pid = child.pid!;
    const splitter = new LineSplitter((line) => hooks.onStdoutLine?.(line));
    const stdoutClosed = new Promise<void>((r) => child.stdout!.once("close", r));
    const stderrClosed = new Promise<void>((r) => child.stderr!.once("close", r));
    child.stdout!.on("data", (c: Buffer) => {
      log.write(c);
      splitter.push(c);
    });
    child.stderr!.on("data", (c: Buffer) => log.write(c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );

    let cause: StopCause | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    // the signals go out at once (no daemon in between), so pause and resume never fail
    const hold = new PauseHold(
      {
        pause: () => Promise.resolve(killGroup("SIGSTOP")),
        resume: () => Promise.resolve(killGroup("SIGCONT")),
      },
      (text) => log.note(text),
      this.maxHoldMs,
    );
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-pid, signal);
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const stop = (why: StopCause): void => {
      if (cause) return;
      cause = why;
      log.note(describeStop(why, spec.limits));
      hold.refuse(); // no pause goes out from now on: the payload must run to handle its SIGTERM
      if (why === "oom") return killGroup("SIGKILL");
      killGroup("SIGTERM");
      // a payload paused at a judged level (SIGSTOP) handles the SIGTERM the moment it continues
      killGroup("SIGCONT");
      void hold.release();
      graceTimer = setTimeout(() => killGroup("SIGKILL"), spec.stopGraceMs);
    };
    entry.stop = stop;
    // The wall clock runs on while the payload is paused (docs/evaluator.md, "Progress lines").
    hooks.onStarted?.(hold.control);
    const onAbort = (): void => stop("abort");
    hooks.signal.addEventListener("abort", onAbort, { once: true });
    const wallTimer = setTimeout(() => stop("timeout"), spec.limits.wallClockMs);
    const memoryWatch = spec.limits.memoryBytes
      ? this.memory.watch(pid, spec.limits.memoryBytes, () => stop("oom"))
      : undefined;
    if (this.closing) stop("close");

    try {
      // Deadline: the wall clock stops the run, SIGKILL follows the grace; past that the process
      // is stuck in the kernel and we stop waiting for it.
      const deadlineMs = spec.limits.wallClockMs + spec.stopGraceMs + KILL_DEADLINE_MS;
      const deadline = new AbortController();
      const result = await Promise.race([exited, sleep(deadlineMs, deadline.signal).then(() => undefined)]);
      deadline.abort();
      // Leftover children of the payload (same group) die with the run.
      killGroup("SIGKILL");
      if (!result) {
        log.note(`process ${pid} did not exit ${KILL_DEADLINE_MS} ms after SIGKILL; giving up on it`);
        return { exitCode: 137, cause: cause ?? "timeout" };
      }
      // Grandchildren outside the group could hold the pipes open: drain with a deadline.
      const drained = new AbortController();
      await Promise.race([Promise.all([stdoutClosed, stderrClosed]), sleep(this.drainMs, drained.signal)]);
      drained.abort();
      child.stdout!.destroy();
      child.stderr!.destroy();
      splitter.end();
      const exitCode = result.code ?? 128 + (result.signal ? (osConstants.signals[result.signal] ?? 0) : 0);
      return { exitCode, cause };
    } finally {
      clearTimeout(wallTimer);
      clearTimeout(graceTimer);
      memoryWatch?.stop();
      hooks.signal.removeEventListener("abort", onAbort);
      await hold.release(); // its bound's timer ends with the run
    }
  }

  /** Stops every running evaluation (SIGTERM, grace, SIGKILL) and waits for them; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const run of this.active) run.stop("close");
      await Promise.all([...this.active].map((r) => r.done));
      this.spawner.close();
    })();
    return this.closing;
  }
}
