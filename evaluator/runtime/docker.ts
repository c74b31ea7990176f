// The docker runtime: one hardened container per evaluation, through dockerode. The container
// config is fixed by the agent (containerConfig.ts); images are checked against the site's
// allow-list by image ID and the container is created from that ID. The working dir is mounted
// at /srv/workDir (CONTAINER_WORKDIR), the payload's cwd.
// This file holds a container's lifecycle; beside it: dockerDaemon.ts (deadlines, errors),
// dockerImages.ts (the allow-list), dockerOwnership.ts (names, leftovers), dockerWatch.ts (the
// exit and its watchdog), dockerFiles.ts (the working dir's owner), pauseHold.ts (the pause).
import Docker from "dockerode";
import { Writable } from "node:stream";
import { GridtuneError, RuntimeError } from "../../protocol/errors.ts";
import type { RunHooks, RunOutcome, RunSpec, Runtime } from "./types.ts";
import {
  buildContainerConfig,
  checkWorkDir,
  containerName,
  DEFAULT_REMAP_USER,
  LABEL_AGENT_INSTANCE,
  type ContainerConfigOptions,
} from "./containerConfig.ts";
import { DockerDaemon, statusCode } from "./dockerDaemon.ts";
import { chownTree, workDirOwnerOf, type RemapFiles } from "./dockerFiles.ts";
import { ImageAllowList } from "./dockerImages.ts";
import { ContainerOwnership } from "./dockerOwnership.ts";
import { waitExit } from "./dockerWatch.ts";
import { PauseHold } from "./pauseHold.ts";
import { sleep } from "../../protocol/async.ts";
import { describeStop, LineSplitter, LogCapture, type StopCause } from "./logCapture.ts";

export { buildContainerConfig, CONTAINER_WORKDIR, type ContainerConfigOptions } from "./containerConfig.ts";

export interface DockerRuntimeOptions {
  /** A ready client; otherwise one is made for socketPath. */
  docker?: Docker;
  /** Default: the unix socket in DOCKER_HOST, else /var/run/docker.sock. */
  socketPath?: string;
  /** The site's allow-list (names or IDs), resolved to image IDs once, by init() or the first run. */
  allowedImages?: string[];
  /** Numeric "uid:gid" for the payload (default "1000:1000"); the working dir is chowned to it. */
  user?: string;
  /** Size of the /tmp tmpfs (default "256m"). */
  tmpfsSize?: string;
  /** RLIMIT_NOFILE (default 4096). */
  nofile?: number;
  /** PidsLimit when the spec sets none (default 1024). */
  defaultPidsLimit?: number;
  /** Memory limit when the spec sets none (default: none). */
  defaultMemoryBytes?: number;
  /** Extra labels on every container (e.g. {"org.gridtune.agent": id}). */
  labels?: Record<string, string>;
  /**
   * The owning agent's instance (agentInstance()): labelled on every container. Only a container
   * with this label is ever removed by name (a leftover on a name conflict) or by removeLeftovers;
   * without it neither removes anything.
   */
  instance?: string;
  /** Deadline for each short daemon call (inspect, create, start, kill, remove); default 30 s. */
  apiTimeoutMs?: number;
  /** How long to wait for the output stream to end after the container exits (default 2 s). */
  drainMs?: number;
  /** How often a running container is inspected to notice a lost daemon (default 5 s). */
  watchdogMs?: number;
  /**
   * The remap user of a daemon started with --userns-remap (default "dockremap", what
   * `--userns-remap=default` creates): the working dir is chowned to its subordinate ids.
   */
  usernsRemapUser?: string;
  /** Where the subordinate ranges are read (default /etc/subuid and /etc/subgid). */
  subuidFile?: string;
  subgidFile?: string;
  /** Longest a payload stays paused at a judged level when nobody resumes it (default MAX_HOLD_MS). */
  maxHoldMs?: number;
}

interface ActiveRun {
  stop(cause: StopCause): void;
  done: Promise<unknown>;
}

export class DockerRuntime implements Runtime {
  readonly kind = "docker" as const;
  readonly socketPath: string;
  private readonly daemon: DockerDaemon;
  private readonly config: Omit<ContainerConfigOptions, "imageId">;
  private readonly uid: number;
  private readonly gid: number;
  private readonly drainMs: number;
  private readonly watchdogMs: number;
  private readonly images: ImageAllowList;
  private readonly ownership: ContainerOwnership;
  private readonly remap: RemapFiles;
  private readonly maxHoldMs: number | undefined;
  private owner: Promise<{ uid: number; gid: number }> | undefined;
  private readonly active = new Set<ActiveRun>();
  private closing: Promise<void> | undefined;
  private readonly instance: string | undefined;

  constructor(options: DockerRuntimeOptions = {}) {
    const fromEnv = process.env.DOCKER_HOST?.startsWith("unix://")
      ? process.env.DOCKER_HOST.slice(7)
      : undefined;
    this.socketPath = options.socketPath ?? fromEnv ?? "/var/run/docker.sock";
    const docker = options.docker ?? new Docker({ socketPath: this.socketPath });
    this.daemon = new DockerDaemon(docker, this.socketPath, options.apiTimeoutMs ?? 30_000);
    const user = options.user ?? "1000:1000";
    const m = /^(\d+):(\d+)$/.exec(user);
    if (!m) {
      throw new RuntimeError(
        "INVALID_CONFIG",
        `docker runtime user must be numeric "uid:gid" (the work dir is chowned to it), got "${user}"`,
      );
    }
    this.uid = Number(m[1]);
    this.gid = Number(m[2]);
    this.config = {
      user,
      tmpfsSize: options.tmpfsSize ?? "256m",
      nofile: options.nofile ?? 4096,
      defaultPidsLimit: options.defaultPidsLimit ?? 1024,
      ...(options.defaultMemoryBytes !== undefined ? { defaultMemoryBytes: options.defaultMemoryBytes } : {}),
      ...(options.labels || options.instance
        ? {
            labels: {
              ...options.labels,
              ...(options.instance ? { [LABEL_AGENT_INSTANCE]: options.instance } : {}),
            },
          }
        : {}),
    };
    this.instance = options.instance;
    this.drainMs = options.drainMs ?? 2000;
    this.watchdogMs = options.watchdogMs ?? 5000;
    this.images = new ImageAllowList(this.daemon, options.allowedImages);
    this.ownership = new ContainerOwnership(this.daemon, options.instance);
    this.remap = {
      user: options.usernsRemapUser ?? DEFAULT_REMAP_USER,
      subuidFile: options.subuidFile ?? "/etc/subuid",
      subgidFile: options.subgidFile ?? "/etc/subgid",
    };
    this.maxHoldMs = options.maxHoldMs;
  }

  private get docker(): Docker {
    return this.daemon.docker;
  }

  /**
   * Host owner of the job's working dir (once per runtime): uid:gid itself, or, when the daemon
   * runs with userns-remap, uid:gid shifted into the remap user's subordinate ranges.
   */
  workDirOwner(): Promise<{ uid: number; gid: number }> {
    this.owner ??= workDirOwnerOf(this.daemon, { uid: this.uid, gid: this.gid }, this.remap);
    this.owner.catch(() => (this.owner = undefined)); // a daemon that was down is asked again
    return this.owner;
  }

  /** Resolves the allow-list to image IDs (once); throws IMAGE_MISSING / RUNTIME_UNAVAILABLE. */
  async init(): Promise<void> {
    await this.images.init();
  }

  private api<T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.daemon.call(what, call);
  }

  async run(spec: RunSpec, hooks: RunHooks): Promise<RunOutcome> {
    if (this.closing)
      throw new RuntimeError("RUNTIME_UNAVAILABLE", `docker runtime is closed; cannot start ${spec.key}`);
    if (!spec.image)
      throw new RuntimeError("INVALID_ARGUMENT", `run ${spec.key}: the docker runtime needs spec.image`);
    checkWorkDir(spec.workDir);
    containerName(spec.key);
    const imageId = await this.images.check(spec.image);
    const createOptions = buildContainerConfig(spec, { ...this.config, imageId });

    const started = Date.now();
    const log = new LogCapture(spec.logFile, spec.maxLogBytes);
    let flags: { exitCode: number; cause?: StopCause | undefined; oomKilled?: boolean } = { exitCode: -1 };
    let failure: Error | undefined;
    let resolveDone!: () => void;
    const entry: ActiveRun = { stop: () => {}, done: new Promise<void>((r) => (resolveDone = r)) };
    this.active.add(entry);
    try {
      if (hooks.signal.aborted) {
        log.note(`stop requested before ${spec.key} started: not started`); // exitCode -1: never ran
        flags = { exitCode: -1, cause: "abort" };
      } else {
        if (process.getuid?.() === 0) {
          const owner = await this.workDirOwner();
          await chownTree(spec.workDir, owner.uid, owner.gid);
        }
        flags = await this.runContainer(createOptions, spec, hooks, log, entry);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      log.note(`run failed: ${failure.message}`);
    } finally {
      this.active.delete(entry);
      await log.close().catch((err: Error) => (failure ??= err));
      resolveDone();
    }
    if (failure) throw failure;
    return {
      exitCode: flags.exitCode,
      timedOut: flags.cause === "timeout",
      stopped: flags.cause === "abort" || flags.cause === "close",
      oomKilled: flags.oomKilled ?? false,
      durationMs: Date.now() - started,
      logBytes: log.bytes,
      logTruncated: log.truncated,
    };
  }

  private async runContainer(
    createOptions: Docker.ContainerCreateOptions,
    spec: RunSpec,
    hooks: RunHooks,
    log: LogCapture,
    entry: ActiveRun,
  ): Promise<{ exitCode: number; cause?: StopCause | undefined; oomKilled?: boolean }> {
    const container = await this.ownership.create(createOptions);
    const hold = this.pauseHold(container, log);
    let cause: StopCause | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let wallTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => stop("abort");
    /**
     * Sends the signal, then unpauses a paused container: the signal waits in the frozen
     * processes and is handled the moment they run again, so a payload held at a judged level
     * trains no further once stopped (unpaused first, it would run on until the signal came).
     */
    const kill = (signal: "SIGTERM" | "SIGKILL"): Promise<void> =>
      this.api(`kill ${signal}`, (s) => container.kill({ signal, abortSignal: s }))
        .then(
          () => undefined,
          (err: unknown) => {
            const code = statusCode(err);
            if (code !== 404 && code !== 409) log.note(`could not send ${signal}: ${(err as Error).message}`);
          },
        )
        .then(() => hold.release());
    const stop = (why: StopCause): void => {
      if (cause) return;
      cause = why;
      log.note(describeStop(why, spec.limits));
      hold.refuse(); // no pause goes out from now on: the payload must run to handle its SIGTERM
      void kill("SIGTERM");
      graceTimer = setTimeout(() => void kill("SIGKILL"), spec.stopGraceMs);
    };
    try {
      // Attach before start so no output is lost; Docker multiplexes stdout/stderr (Tty false).
      const stream = (await this.api("attach", () =>
        container.attach({ stream: true, stdout: true, stderr: true }),
      )) as NodeJS.ReadableStream & { destroy?: () => void };
      const ended = new Promise<void>((r) => {
        stream.once("end", r);
        stream.once("close", r);
        stream.once("error", () => r());
      });
      const splitter = new LineSplitter((line) => hooks.onStdoutLine?.(line));
      const sink = (isStdout: boolean): Writable =>
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            log.write(chunk);
            if (isStdout) splitter.push(chunk);
            cb();
          },
        });
      this.docker.modem.demuxStream(stream, sink(true), sink(false));

      try {
        await this.api("start", (s) => container.start({ abortSignal: s }));
      } catch (err) {
        return this.startFailed(err, spec, log);
      }
      entry.stop = stop;
      // The wall clock runs on while the payload is paused (docs/evaluator.md, "Progress lines").
      hooks.onStarted?.(hold.control);
      hooks.signal.addEventListener("abort", onAbort, { once: true });
      wallTimer = setTimeout(() => stop("timeout"), spec.limits.wallClockMs);
      if (hooks.signal.aborted) stop("abort");
      if (this.closing) stop("close");

      const status = await waitExit(
        this.daemon,
        container,
        spec,
        createOptions.name ?? spec.key,
        this.watchdogMs,
      );
      const info = await this.api("inspect container", (s) => container.inspect({ abortSignal: s }));
      const drained = new AbortController();
      await Promise.race([ended, sleep(this.drainMs, drained.signal)]);
      drained.abort();
      stream.destroy?.();
      splitter.end();
      const oomKilled = info.State.OOMKilled === true;
      const exitCode = typeof info.State.ExitCode === "number" ? info.State.ExitCode : status;
      if (oomKilled)
        log.note(
          `container was killed for exceeding its memory limit (${spec.limits.memoryBytes ?? this.config.defaultMemoryBytes} bytes)`,
        );
      else if (!cause && (exitCode === 137 || exitCode === 143)) {
        log.note(
          `container ended by signal (exit ${exitCode}) that the agent did not send: dockerd shutdown/restart or a manual docker stop?`,
        );
      }
      return { exitCode, cause, oomKilled };
    } finally {
      clearTimeout(wallTimer);
      clearTimeout(graceTimer);
      hooks.signal.removeEventListener("abort", onAbort);
      await hold.release(); // on every path: a container is never left paused
      await this.api("remove container", (s) =>
        container.remove({ force: true, abortSignal: s } as Docker.ContainerRemoveOptions),
      ).catch((err: unknown) => {
        if (statusCode(err) !== 404)
          log.note(
            `could not remove container ${createOptions.name}: ${(err as Error).message} (removeLeftovers() cleans it up)`,
          );
      });
    }
  }

  /**
   * Pause and unpause through the daemon (the cgroup freezer: every process of the container).
   * A container that is not running or not paused (409) or gone (404) needs neither.
   */
  private pauseHold(container: Docker.Container, log: LogCapture): PauseHold {
    const call = (what: "pause" | "unpause") =>
      this.api(what, (s) =>
        // dockerode passes abortSignal to the modem for every call (a deadline on each)
        what === "pause" ? container.pause({ abortSignal: s }) : container.unpause({ abortSignal: s }),
      ).then(
        () => undefined,
        (err: unknown) => {
          const code = statusCode(err);
          if (code !== 404 && code !== 409) throw err;
        },
      );
    return new PauseHold(
      { pause: () => call("pause"), resume: () => call("unpause") },
      (text) => log.note(text),
      this.maxHoldMs,
    );
  }

  /** start() failures: a missing executable is the job's (exit 127, like a shell); the rest are the site's. */
  private startFailed(err: unknown, spec: RunSpec, log: LogCapture): { exitCode: number } {
    const message = err instanceof Error ? err.message : String(err);
    if (
      /executable file not found|no such file or directory|permission denied/i.test(message) &&
      statusCode(err) === 400
    ) {
      log.note(`cannot start ${JSON.stringify(spec.argv[0])} in image ${spec.image}: ${message}`);
      return { exitCode: /permission denied/i.test(message) ? 126 : 127 };
    }
    if (/could not select device driver/.test(message)) {
      throw new RuntimeError(
        "RUNTIME_UNAVAILABLE",
        `GPUs [${spec.gpus.join(",")}] were requested but dockerd has no nvidia runtime: install nvidia-container-toolkit on this node (${message})`,
        { cause: err },
      );
    }
    const mapped = this.daemon.mapError(err, "start");
    if (mapped instanceof GridtuneError) throw mapped;
    throw new RuntimeError(
      "EVALUATION_FAILED",
      `Docker could not start the container for ${spec.key}: ${message}`,
      { cause: err },
    );
  }

  /**
   * Removes this agent instance's containers that no run owns (after an agent crash), only while
   * no run of this runtime owns one.
   */
  removeLeftovers(): Promise<number> {
    return this.active.size > 0 ? Promise.resolve(0) : this.ownership.removeLeftovers();
  }

  /** Stops every running container (SIGTERM, grace, SIGKILL), waits for their removal; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const run of this.active) run.stop("close");
      await Promise.all([...this.active].map((r) => r.done));
    })();
    return this.closing;
  }
}
