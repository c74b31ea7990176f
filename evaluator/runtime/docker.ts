// The docker runtime: one hardened container per evaluation, through dockerode. The container
// config is fixed by the agent (containerConfig.ts); images are checked against the site's
// allow-list by image ID and the container is created from that ID. The working dir is mounted
// at /srv/workDir (CONTAINER_WORKDIR), the payload's cwd.
import Docker from "dockerode";
import { lchown, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { GridtuneError, RuntimeError } from "../../protocol/errors.ts";
import { missingImageAdvice } from "./imageAdvice.ts";
import type { RunHooks, RunOutcome, RunSpec, Runtime } from "./types.ts";
import {
  buildContainerConfig,
  checkWorkDir,
  containerName,
  DEFAULT_REMAP_USER,
  isUsernsRemapped,
  LABEL_AGENT_INSTANCE,
  LABEL_MANAGED,
  remappedOwner,
  type ContainerConfigOptions,
} from "./containerConfig.ts";
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
}

interface ActiveRun {
  stop(cause: StopCause): void;
  done: Promise<unknown>;
}

const LOST_CONNECTION = new Set(["ECONNREFUSED", "ENOENT", "EACCES", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);
/** Slack after wall clock + grace before the container wait is declared stuck. */
const WAIT_SLACK_MS = 30_000;

export class DockerRuntime implements Runtime {
  readonly kind = "docker" as const;
  readonly socketPath: string;
  private readonly docker: Docker;
  private readonly config: Omit<ContainerConfigOptions, "imageId">;
  private readonly uid: number;
  private readonly gid: number;
  private readonly apiTimeoutMs: number;
  private readonly drainMs: number;
  private readonly watchdogMs: number;
  private readonly allowedRefs: string[] | undefined;
  private allowed: Promise<Map<string, string>> | undefined;
  private readonly remap: { user: string; subuidFile: string; subgidFile: string };
  private owner: Promise<{ uid: number; gid: number }> | undefined;
  private readonly active = new Set<ActiveRun>();
  private closing: Promise<void> | undefined;
  private readonly instance: string | undefined;

  constructor(options: DockerRuntimeOptions = {}) {
    const fromEnv = process.env.DOCKER_HOST?.startsWith("unix://")
      ? process.env.DOCKER_HOST.slice(7)
      : undefined;
    this.socketPath = options.socketPath ?? fromEnv ?? "/var/run/docker.sock";
    this.docker = options.docker ?? new Docker({ socketPath: this.socketPath });
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
    this.apiTimeoutMs = options.apiTimeoutMs ?? 30_000;
    this.drainMs = options.drainMs ?? 2000;
    this.watchdogMs = options.watchdogMs ?? 5000;
    this.allowedRefs = options.allowedImages;
    this.remap = {
      user: options.usernsRemapUser ?? DEFAULT_REMAP_USER,
      subuidFile: options.subuidFile ?? "/etc/subuid",
      subgidFile: options.subgidFile ?? "/etc/subgid",
    };
  }

  /**
   * Host owner of the job's working dir (once per runtime): uid:gid itself, or, when the daemon
   * runs with userns-remap, uid:gid shifted into the remap user's subordinate ranges.
   */
  workDirOwner(): Promise<{ uid: number; gid: number }> {
    this.owner ??= (async () => {
      const own = { uid: this.uid, gid: this.gid };
      const info = (await this.api("info", () => this.docker.info())) as { SecurityOptions?: string[] };
      if (!isUsernsRemapped(info.SecurityOptions)) return own;
      const read = (file: string) =>
        readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
          if (err.code === "ENOENT") return "";
          throw err;
        });
      const [subuid, subgid] = await Promise.all([read(this.remap.subuidFile), read(this.remap.subgidFile)]);
      return remappedOwner(own, subuid, subgid, this.remap.user);
    })();
    this.owner.catch(() => (this.owner = undefined)); // a daemon that was down is asked again
    return this.owner;
  }

  /** Resolves the allow-list to image IDs (once); throws IMAGE_MISSING / RUNTIME_UNAVAILABLE. */
  async init(): Promise<void> {
    await this.allowList();
  }

  private allowList(): Promise<Map<string, string>> | undefined {
    if (!this.allowedRefs) return undefined;
    this.allowed ??= (async () => {
      const ids = new Map<string, string>();
      for (const ref of this.allowedRefs!) ids.set(await this.imageId(ref), ref);
      return ids;
    })();
    // A failed resolution (image not built yet, daemon down) is retried by the next call.
    this.allowed.catch(() => (this.allowed = undefined));
    return this.allowed;
  }

  private async imageId(ref: string): Promise<string> {
    try {
      const info = await this.api(`inspect image ${ref}`, (s) =>
        // dockerode passes abortSignal to the modem for every call; the image typings lack it.
        this.docker.getImage(ref).inspect({ abortSignal: s } as Docker.ImageInspectOptions),
      );
      return info.Id;
    } catch (err) {
      if (statusCode(err) === 404) {
        throw new RuntimeError(
          "IMAGE_MISSING",
          `image "${ref}" is not on this Docker host (no registry is used): ${missingImageAdvice(ref)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Runs one deadline-bound daemon call and maps connection failures to RUNTIME_UNAVAILABLE. */
  private async api<T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.apiTimeoutMs);
    try {
      return await call(signal);
    } catch (err) {
      throw this.mapError(err, what, signal.aborted);
    }
  }

  private mapError(err: unknown, what: string, timedOut = false): Error {
    if (err instanceof GridtuneError) return err;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    if (timedOut) {
      return new RuntimeError(
        "RUNTIME_UNAVAILABLE",
        `Docker daemon at ${this.socketPath} did not answer "${what}" within ${this.apiTimeoutMs} ms`,
        { cause: err, retryable: true },
      );
    }
    if ((code && LOST_CONNECTION.has(code)) || /socket hang up|ECONNRESET|connect E/.test(message)) {
      return new RuntimeError(
        "RUNTIME_UNAVAILABLE",
        `cannot reach the Docker daemon at ${this.socketPath} (${code ?? message}) during "${what}": start dockerd or set DOCKER_HOST`,
        { cause: err, retryable: true },
      );
    }
    return err instanceof Error ? err : new Error(message);
  }

  async run(spec: RunSpec, hooks: RunHooks): Promise<RunOutcome> {
    if (this.closing)
      throw new RuntimeError("RUNTIME_UNAVAILABLE", `docker runtime is closed; cannot start ${spec.key}`);
    if (!spec.image)
      throw new RuntimeError("INVALID_ARGUMENT", `run ${spec.key}: the docker runtime needs spec.image`);
    checkWorkDir(spec.workDir);
    containerName(spec.key);
    const allowed = await this.allowList();
    const imageId = await this.imageId(spec.image);
    if (allowed && !allowed.has(imageId)) {
      throw new RuntimeError(
        "IMAGE_NOT_ALLOWED",
        `image "${spec.image}" (ID ${imageId.slice(0, 19)}) is not on this site's allow-list [${this.allowedRefs!.join(", ")}]; ` +
          `the list is checked by the image IDs those names had when the agent started (restart the agent after rebuilding an image)`,
      );
    }
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

  /** Whether a container's labels say this runtime (its agent instance) made it. */
  private isOwn(labels: Record<string, string> | undefined): boolean {
    return (
      this.instance !== undefined &&
      labels?.[LABEL_MANAGED] === "true" &&
      labels[LABEL_AGENT_INSTANCE] === this.instance
    );
  }

  /**
   * Creates the container. A name conflict is a leftover of this same run key only if the
   * existing container carries this agent instance's labels: then it is removed and the create
   * tried once more. Anything else of that name (another deployment's or agent's job, a user's
   * container) is left alone and the run fails with CONFLICT naming it.
   */
  private async create(options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.api("create container", (s) =>
        this.docker.createContainer({ ...options, abortSignal: s }),
      );
    } catch (err) {
      if (statusCode(err) !== 409 || !options.name) throw err;
      const name = options.name;
      const existing = await this.api("inspect conflicting container", (s) =>
        this.docker.getContainer(name).inspect({ abortSignal: s }),
      ).catch((e: unknown) => {
        if (statusCode(e) === 404) return null; // gone meanwhile: just try again
        throw e;
      });
      if (existing && !this.isOwn(existing.Config.Labels)) {
        throw new RuntimeError(
          "CONFLICT",
          `a container named ${name} already exists and is not this agent's (its labels do not say ` +
            `${LABEL_AGENT_INSTANCE}=${this.instance ?? "?"}); it was left alone. Another deployment or ` +
            `agent on this Docker host uses the same names: give each agent its own name and NATS server, or remove that container if it is stale`,
          { cause: err },
        );
      }
      if (existing)
        await this.api("remove leftover", (s) =>
          this.docker
            .getContainer(existing.Id)
            .remove({ force: true, abortSignal: s } as Docker.ContainerRemoveOptions),
        );
      return await this.api("create container", (s) =>
        this.docker.createContainer({ ...options, abortSignal: s }),
      );
    }
  }

  private async runContainer(
    createOptions: Docker.ContainerCreateOptions,
    spec: RunSpec,
    hooks: RunHooks,
    log: LogCapture,
    entry: ActiveRun,
  ): Promise<{ exitCode: number; cause?: StopCause | undefined; oomKilled?: boolean }> {
    const container = await this.create(createOptions);
    let cause: StopCause | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let wallTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => stop("abort");
    const kill = (signal: "SIGTERM" | "SIGKILL"): void => {
      this.api(`kill ${signal}`, (s) => container.kill({ signal, abortSignal: s })).catch((err: unknown) => {
        const code = statusCode(err);
        if (code !== 404 && code !== 409) log.note(`could not send ${signal}: ${(err as Error).message}`);
      });
    };
    const stop = (why: StopCause): void => {
      if (cause) return;
      cause = why;
      log.note(describeStop(why, spec.limits));
      kill("SIGTERM");
      graceTimer = setTimeout(() => kill("SIGKILL"), spec.stopGraceMs);
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
      hooks.signal.addEventListener("abort", onAbort, { once: true });
      wallTimer = setTimeout(() => stop("timeout"), spec.limits.wallClockMs);
      if (hooks.signal.aborted) stop("abort");
      if (this.closing) stop("close");

      const status = await this.waitExit(container, spec, createOptions.name ?? spec.key);
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
   * The container's exit code. wait() is called after start(): its default condition
   * "not-running" is then right even if the container already exited (registered before start it
   * would return 0 at once). When dockerd dies, the wait response can hang instead of failing, so
   * a watchdog inspects the container every watchdogMs: an unreachable daemon, a vanished
   * container, or an exit the wait never reported all fail the run with a clear reason. The
   * deadline covers the wall clock, the grace and a stuck daemon.
   */
  private waitExit(container: Docker.Container, spec: RunSpec, name: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const ac = new AbortController();
      let settled = false;
      let busy = false;
      let exitedSeen = 0;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        clearTimeout(deadline);
        ac.abort();
        fn();
      };
      const lost = (why: string, cause?: unknown): void =>
        finish(() =>
          reject(
            new RuntimeError(
              "RUNTIME_UNAVAILABLE",
              `lost track of container ${name} for ${spec.key}: ${why} (was dockerd restarted? the run counts as failed; the agent keeps serving)`,
              { cause, retryable: true },
            ),
          ),
        );
      container.wait({ abortSignal: ac.signal }).then(
        (r: { StatusCode: number }) => finish(() => resolve(r.StatusCode)),
        (err: unknown) => lost(this.mapError(err, "wait").message, err),
      );
      const deadlineMs = spec.limits.wallClockMs + spec.stopGraceMs + WAIT_SLACK_MS;
      const deadline = setTimeout(() => lost(`no exit reported within ${deadlineMs} ms`), deadlineMs);
      const watchdog = setInterval(() => {
        if (busy || settled) return;
        busy = true;
        this.api("inspect container", (s) => container.inspect({ abortSignal: s }))
          .then((info) => {
            exitedSeen = info.State.Running ? 0 : exitedSeen + 1;
            // Two looks a watchdog period apart: the wait had ample time to report the exit.
            if (exitedSeen >= 2)
              lost(
                `the container exited (code ${info.State.ExitCode}) but the wait stream never reported it`,
              );
          })
          .catch((err: unknown) =>
            lost(
              statusCode(err) === 404
                ? "the container disappeared"
                : this.mapError(err, "inspect container").message,
              err,
            ),
          )
          .finally(() => (busy = false));
      }, this.watchdogMs);
    });
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
    const mapped = this.mapError(err, "start");
    if (mapped instanceof GridtuneError) throw mapped;
    throw new RuntimeError(
      "EVALUATION_FAILED",
      `Docker could not start the container for ${spec.key}: ${message}`,
      { cause: err },
    );
  }

  /**
   * Removes this agent instance's containers that no run owns (after an agent crash): only those
   * labelled with its instance, each checked again by its labels before removal. Without an
   * instance nothing is removed (ownership could not be told).
   */
  async removeLeftovers(): Promise<number> {
    if (this.instance === undefined || this.active.size > 0) return 0; // only while no run owns one
    const labels = [`${LABEL_MANAGED}=true`, `${LABEL_AGENT_INSTANCE}=${this.instance}`];
    const list = await this.api("list containers", (s) =>
      this.docker.listContainers({ all: true, filters: { label: labels }, abortSignal: s }),
    );
    let removed = 0;
    for (const c of list) {
      if (!this.isOwn(c.Labels)) continue;
      await this.api("remove leftover", (s) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true, abortSignal: s } as Docker.ContainerRemoveOptions),
      ).catch((err: unknown) => {
        if (statusCode(err) !== 404) throw err;
      });
      removed++;
    }
    return removed;
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

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

/** chown -R without following symlinks, so the payload (uid 1000) can write its working dir. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}
