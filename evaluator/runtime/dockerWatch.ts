// Waiting for a container's exit when the daemon may die under it: the wait stream can hang
// instead of failing, so a watchdog inspects the container while it runs.
import type Docker from "dockerode";
import { RuntimeError } from "../../protocol/errors.ts";
import { statusCode, type DockerDaemon } from "./dockerDaemon.ts";
import type { RunSpec } from "./types.ts";

/** Slack after wall clock + grace before the container wait is declared stuck. */
const WAIT_SLACK_MS = 30_000;

/**
 * The container's exit code. wait() is called after start(): its default condition
 * "not-running" is then right even if the container already exited (registered before start it
 * would return 0 at once). When dockerd dies, the wait response can hang instead of failing, so
 * a watchdog inspects the container every watchdogMs: an unreachable daemon, a vanished
 * container, or an exit the wait never reported all fail the run with a clear reason. The
 * deadline covers the wall clock, the grace and a stuck daemon.
 */
export function waitExit(
  daemon: DockerDaemon,
  container: Docker.Container,
  spec: RunSpec,
  name: string,
  watchdogMs: number,
): Promise<number> {
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
      (err: unknown) => lost(daemon.mapError(err, "wait").message, err),
    );
    const deadlineMs = spec.limits.wallClockMs + spec.stopGraceMs + WAIT_SLACK_MS;
    const deadline = setTimeout(() => lost(`no exit reported within ${deadlineMs} ms`), deadlineMs);
    const watchdog = setInterval(() => {
      if (busy || settled) return;
      busy = true;
      daemon
        .call("inspect container", (s) => container.inspect({ abortSignal: s }))
        .then((info) => {
          exitedSeen = info.State.Running ? 0 : exitedSeen + 1;
          // Two looks a watchdog period apart: the wait had ample time to report the exit.
          if (exitedSeen >= 2)
            lost(`the container exited (code ${info.State.ExitCode}) but the wait stream never reported it`);
        })
        .catch((err: unknown) =>
          lost(
            statusCode(err) === 404
              ? "the container disappeared"
              : daemon.mapError(err, "inspect container").message,
            err,
          ),
        )
        .finally(() => (busy = false));
    }, watchdogMs);
  });
}
