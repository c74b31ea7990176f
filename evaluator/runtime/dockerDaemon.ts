// Every short call to the Docker daemon runs under a deadline, and its failures become
// RuntimeErrors that say what to do: an unreachable or silent daemon is RUNTIME_UNAVAILABLE
// (retryable), naming the socket.
import type Docker from "dockerode";
import { GridtuneError, RuntimeError } from "../../protocol/errors.ts";

const LOST_CONNECTION = new Set(["ECONNREFUSED", "ENOENT", "EACCES", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** The HTTP status of a daemon's error answer (404 gone, 409 conflict / not running). */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

export class DockerDaemon {
  constructor(
    readonly docker: Docker,
    readonly socketPath: string,
    /** Deadline for each short daemon call (inspect, create, start, kill, pause, remove). */
    readonly timeoutMs: number,
  ) {}

  /** Runs one deadline-bound daemon call and maps connection failures to RUNTIME_UNAVAILABLE. */
  async call<T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await call(signal);
    } catch (err) {
      throw this.mapError(err, what, signal.aborted);
    }
  }

  mapError(err: unknown, what: string, timedOut = false): Error {
    if (err instanceof GridtuneError) return err;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    if (timedOut) {
      return new RuntimeError(
        "RUNTIME_UNAVAILABLE",
        `Docker daemon at ${this.socketPath} did not answer "${what}" within ${this.timeoutMs} ms`,
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
}
