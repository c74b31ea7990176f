// Runs one steering-program iteration (steeringExec) in a scratch directory: as a local process
// with that directory as its cwd, or, with steeringContainer, in a hardened Docker container with
// the directory bind-mounted as its working directory (the same hardening as the evaluator's job
// containers: read-only root, all capabilities dropped, no-new-privileges, no network, non-root,
// memory/CPU/pids limits). argv only: no shell is involved unless the exec string names one.
// A steering killed with SIGKILL cannot remove the container it was waiting for, nor the
// iteration's scratch directory: each container is labelled with its steering instance and each
// scratch directory named after it, and a restarted steering removes what its predecessor left
// (sweep()).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { GridtuneError, RuntimeError } from "../../protocol/errors.ts";
import { LABEL_MANAGED } from "../../protocol/names.ts";

/** A steering container's label naming the steering instance that started it. */
export const LABEL_STEERING_INSTANCE = "org.gridtune.steering-instance";

/**
 * A steering instance's name on the Docker host: the same across restarts of one deployment (its
 * NATS server, S3 endpoint and bucket), different for two stacks sharing a host.
 */
export function steeringInstance(c: { natsUrl: string; s3: { endpoint: string; bucket: string } }): string {
  return createHash("sha256")
    .update(`${c.natsUrl} ${c.s3.endpoint} ${c.s3.bucket}`)
    .digest("hex")
    .slice(0, 16);
}

/** Where the scratch directory appears inside a steering container (PanDA's working-dir path). */
export const STEERING_WORKDIR = "/srv/workDir";

export interface SteeringRunLimits {
  timeoutMs: number;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
}

export const DEFAULT_STEERING_LIMITS: SteeringRunLimits = {
  timeoutMs: 10 * 60_000,
  memoryBytes: 2048 * 2 ** 20,
  nanoCpus: 1e9,
  pidsLimit: 256,
};

export interface SteeringRunResult {
  exitCode: number | null;
  timedOut: boolean;
  /** The last few KB of stdout and stderr together, for the reason of a failure. */
  outputTail: string;
  /** stdout and stderr together, as stored for phpo logs --steering (at most STEERING_LOG_CAP bytes). */
  output: Buffer;
}

export interface SteeringRunner {
  /** A new, empty scratch directory for one iteration (the caller removes it). */
  scratchDir(): Promise<string>;
  /** `readOnly`: top-level entries of `dir` a container gets read-only (the task's sandbox). */
  run(
    argv: string[],
    dir: string,
    image: string | null,
    signal: AbortSignal,
    readOnly?: readonly string[],
  ): Promise<SteeringRunResult>;
}

const TAIL_BYTES = 4096;

/** The most of an iteration's output kept: its first and last halves, with the gap named. */
export const STEERING_LOG_CAP = 1 << 20;

/**
 * An iteration's output within STEERING_LOG_CAP: the first half as it came and a rolling last
 * half, so a chatty optimiser cannot fill steering's memory and both the start and the end stay.
 */
export class CappedOutput {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tailChunks: Buffer[] = [];
  private tailBytes = 0;
  private dropped = 0;

  constructor(private readonly cap = STEERING_LOG_CAP) {}

  push(c: Buffer): void {
    const half = Math.floor(this.cap / 2);
    if (this.headBytes < half) {
      const take = c.subarray(0, half - this.headBytes);
      this.head.push(take);
      this.headBytes += take.length;
      c = c.subarray(take.length);
    }
    if (c.length === 0) return;
    this.tailChunks.push(c);
    this.tailBytes += c.length;
    while (this.tailBytes > half) {
      const first = this.tailChunks[0]!;
      const over = this.tailBytes - half;
      if (first.length <= over) {
        this.tailChunks.shift();
        this.tailBytes -= first.length;
        this.dropped += first.length;
      } else {
        this.tailChunks[0] = first.subarray(over);
        this.tailBytes -= over;
        this.dropped += over;
      }
    }
  }

  /** Everything kept, the gap marked with how many bytes it dropped. */
  bytes(): Buffer {
    const gap =
      this.dropped > 0 ? [Buffer.from(`\n[... ${this.dropped} bytes of output not kept ...]\n`)] : [];
    return Buffer.concat([...this.head, ...gap, ...this.tailChunks]);
  }
}

/** Runs a local steering program and kills it when steering goes away (see the file). */
const WATCHDOG = new URL("./watchdog.cjs", import.meta.url).pathname;

type WatchdogMessage =
  { t: "failed"; code: string; message: string } | { t: "exit"; code: number | null; signal: string | null };

function tail(chunks: Buffer[]): string {
  const all = Buffer.concat(chunks).toString("utf8");
  return all.length > TAIL_BYTES ? all.slice(-TAIL_BYTES) : all;
}

/** Docker's multiplexed log stream (8-byte frame headers) to text. */
function demux(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return i === 0 && buf.length > 0 ? buf : Buffer.concat(out);
}

function dockerSocket(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith("unix://") ? host.slice(7) : "/var/run/docker.sock";
}

export class LocalSteeringRunner implements SteeringRunner {
  private docker: Docker | null = null;

  constructor(
    private readonly limits: SteeringRunLimits = DEFAULT_STEERING_LIMITS,
    private readonly instance = "default",
  ) {}

  private get scratchPrefix(): string {
    return `gridtune-steering-${this.instance}-`;
  }

  scratchDir(): Promise<string> {
    return mkdtemp(join(tmpdir(), this.scratchPrefix));
  }

  /**
   * Removes the steering containers and scratch directories this instance left behind (a previous
   * process killed while an iteration ran); returns how many containers. Without a Docker daemon
   * there are no containers to remove.
   */
  async sweep(): Promise<number> {
    const names = await readdir(tmpdir()).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(this.scratchPrefix))
        .map((n) => rm(join(tmpdir(), n), { recursive: true, force: true })),
    );
    this.docker ??= new Docker({ socketPath: dockerSocket() });
    const docker = this.docker;
    let left: Docker.ContainerInfo[];
    try {
      left = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_MANAGED}=steering`, `${LABEL_STEERING_INSTANCE}=${this.instance}`] },
      });
    } catch {
      return 0; // no daemon here: no steering containers either
    }
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    return left.length;
  }

  run(
    argv: string[],
    dir: string,
    image: string | null,
    signal: AbortSignal,
    readOnly: readonly string[] = [],
  ): Promise<SteeringRunResult> {
    return image === null
      ? this.runProcess(argv, dir, signal)
      : this.runContainer(argv, dir, image, signal, readOnly);
  }

  private runProcess(argv: string[], dir: string, signal: AbortSignal): Promise<SteeringRunResult> {
    return new Promise((resolve, reject) => {
      const [cmd, ...args] = argv as [string, ...string[]];
      const chunks: Buffer[] = [];
      const output = new CappedOutput();
      let timedOut = false;
      let status: WatchdogMessage | undefined;
      // through the watchdog, so the program (detached: its own process group, which a timeout
      // kills whole) does not outlive a steering killed with SIGKILL
      const watchdog = spawn(process.execPath, [WATCHDOG, cmd, ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, LANG: "C.UTF-8", PWD: dir },
        stdio: ["ignore", "pipe", "pipe", "ipc"],
      });
      const keep = (c: Buffer) => {
        output.push(c);
        chunks.push(c);
        if (chunks.length > 64) chunks.splice(0, chunks.length - 32);
      };
      watchdog.stdout?.on("data", keep); // pipes as asked (the typings cannot tell with "ipc")
      watchdog.stderr?.on("data", keep);
      watchdog.on("message", (m: WatchdogMessage) => (status = m));
      const kill = () => {
        if (watchdog.connected) watchdog.send({ t: "kill" }, () => undefined);
        else watchdog.kill("SIGKILL");
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, this.limits.timeoutMs);
      const onAbort = () => kill();
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const cannotStart = (why: string) =>
        new RuntimeError(
          "INVALID_ARGUMENT",
          `steeringExec: cannot start ${JSON.stringify(cmd)} (${why}); name an executable on the steering host's PATH, or set steeringContainer to run it in an image`,
        );
      watchdog.once("error", (err) => {
        done();
        reject(cannotStart(`the watchdog: ${err.message}`));
      });
      watchdog.once("close", (code) => {
        done();
        if (status?.t === "failed") reject(cannotStart(`${status.code}: ${status.message}`));
        // without the watchdog's word (it was killed) its own status stands in
        else
          resolve({
            exitCode: status?.t === "exit" ? status.code : code,
            timedOut,
            outputTail: tail(chunks),
            output: output.bytes(),
          });
      });
    });
  }

  private async runContainer(
    argv: string[],
    dir: string,
    image: string,
    signal: AbortSignal,
    readOnly: readonly string[],
  ): Promise<SteeringRunResult> {
    this.docker ??= new Docker({ socketPath: dockerSocket() });
    const docker = this.docker;
    let imageId: string;
    try {
      imageId = (await docker.getImage(image).inspect()).Id;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      throw new RuntimeError(
        status === 404 ? "IMAGE_MISSING" : "RUNTIME_UNAVAILABLE",
        status === 404
          ? image === "gridtune/steering:1"
            ? `steeringContainer ${image} is not on the steering host; its admin builds it there with sudo containers/build-images.sh --only steering`
            : `steeringContainer ${image} is not on the steering host (steering pulls from no registry); ask its admin to load the image there (docker load or docker pull on that host), or use gridtune/steering:1 with your own program in the sandbox`
          : `steeringContainer ${image}: Docker did not answer (${String(err)})`,
      );
    }
    const container = await docker.createContainer({
      Image: imageId,
      Cmd: argv,
      WorkingDir: STEERING_WORKDIR,
      User: "1000:1000",
      Env: ["HOME=/tmp", "LANG=C.UTF-8"],
      Labels: { [LABEL_MANAGED]: "steering", [LABEL_STEERING_INSTANCE]: this.instance },
      NetworkDisabled: true,
      HostConfig: {
        Binds: [`${dir}:${STEERING_WORKDIR}:rw`],
        // the sandbox's entries over it, read-only (Mounts, not Binds: a name may hold ':' or ',')
        Mounts: readOnly.map((name) => ({
          Type: "bind" as const,
          Source: join(dir, name),
          Target: `${STEERING_WORKDIR}/${name}`,
          ReadOnly: true,
        })),
        ReadonlyRootfs: true,
        Tmpfs: { "/tmp": "rw,nosuid,nodev,size=256m" },
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        Privileged: false,
        NetworkMode: "none",
        PidsLimit: this.limits.pidsLimit,
        Memory: this.limits.memoryBytes,
        MemorySwap: this.limits.memoryBytes,
        NanoCpus: this.limits.nanoCpus,
        Init: true,
        IpcMode: "private",
        Ulimits: [{ Name: "nofile", Soft: 1024, Hard: 1024 }],
        AutoRemove: false,
      },
    });
    let timedOut = false;
    const stop = () => void container.kill().catch(() => undefined);
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, this.limits.timeoutMs);
    signal.addEventListener("abort", stop, { once: true });
    try {
      await container.start();
      const waited = (await container.wait()) as { StatusCode?: number };
      const logs = demux(Buffer.from(await container.logs({ stdout: true, stderr: true, follow: false })));
      const output = new CappedOutput();
      output.push(logs);
      return {
        exitCode: timedOut ? null : (waited.StatusCode ?? null),
        timedOut,
        outputTail: tail([logs]),
        output: output.bytes(),
      };
    } catch (err) {
      if (err instanceof GridtuneError) throw err;
      throw new RuntimeError("RUNTIME_UNAVAILABLE", `steeringContainer ${image}: ${String(err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
      await container.remove({ force: true }).catch(() => undefined);
    }
  }
}
