// The embedded stack's watch over its agents: an agent process that exits without being asked to
// (a crash, an OOM kill, kill -9) is reported and started again, at most MAX_RESTARTS times per
// agent within RESTART_WINDOW_MS, so an agent that dies at once on every start does not spin.
import type { Logger } from "../protocol/log.ts";
import type { ServiceProcess } from "./embedded.ts";

export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;

export interface SuperviseOptions {
  logger: Logger;
  /** This agent's restart times (the caller keeps one array per agent name, across processes). */
  history: number[];
  /** Starts the agent again (resolves once it runs). */
  restart: () => Promise<ServiceProcess>;
  /** Puts the new process in the old one's place in the stack's list. */
  replace: (next: ServiceProcess) => void;
  /** True once the whole stack is stopping: exits are expected then. */
  stopping: () => boolean;
  now?: () => number;
}

export function superviseAgent(p: ServiceProcess, o: SuperviseOptions): void {
  const now = o.now ?? Date.now;
  p.child.once("exit", (code, signal) => {
    if (p.stopping || o.stopping()) return;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    const times = o.history;
    times.splice(0, times.length, ...times.filter((t) => now() - t < RESTART_WINDOW_MS));
    if (times.length >= MAX_RESTARTS) {
      o.logger.error(
        `${p.name} ${how}; not restarted: it died ${times.length} times within ${RESTART_WINDOW_MS / 1000} s (see its log)`,
      );
      return;
    }
    times.push(now());
    o.logger.warn(
      `${p.name} ${how}; restarting it (${times.length} of ${MAX_RESTARTS} within ${RESTART_WINDOW_MS / 1000} s)`,
    );
    o.restart().then(
      (next) => {
        // the stack began to stop while this one started: it must not outlive the stack
        if (o.stopping()) return void next.stop();
        o.replace(next);
        o.logger.warn(`${p.name} restarted (pid ${next.child.pid ?? "?"})`);
      },
      (e: unknown) =>
        o.logger.error(`${p.name} could not be restarted: ${e instanceof Error ? e.message : String(e)}`),
    );
  });
}
