// phpo monitor [--port N] [--host H] [TASK…]: a local web view of the user's tasks. Connects to
// NATS as phpo does (same identity, so the page sees what the user may see), serves the page on
// 127.0.0.1 and prints its URL, with the access token, on a line of its own. Opens nothing by
// itself; runs until interrupted.
import { ValidationError } from "../../protocol/errors.ts";
import type { VerbContext } from "../context.ts";
import { NatsBackend } from "../monitor/backend.ts";
import { isLoopback, startMonitor } from "../monitor/server.ts";
import { parseIntArg, parseTaskArg } from "./common.ts";

export interface MonitorFlags {
  port?: string;
  host?: string;
}

/** Resolves on SIGINT or SIGTERM (the way a user stops the monitor). */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

export async function monitorVerb(
  ctx: VerbContext,
  tasks: string[],
  flags: MonitorFlags,
  until: Promise<void> = untilSignal(),
): Promise<number> {
  const taskIds = tasks.map(parseTaskArg);
  const port = flags.port === undefined ? 0 : parseIntArg(flags.port, "--port");
  if (port > 65535)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--port ${port}: give a port up to 65535, or 0 for a free one`,
    );
  const host = flags.host ?? "127.0.0.1";
  if (!isLoopback(host))
    ctx.warn(
      `serving on ${host}, not only this machine: anyone who can reach it and learns the URL's token sees your tasks and can kill them`,
    );
  // the connection first, persistent: ctx.api() reuses it (a steering or NATS restart is waited out)
  const conn = await ctx.connection({ persistent: true });
  const api = await ctx.api();
  const backend = new NatsBackend(conn.nc, api);
  const server = await startMonitor({ backend, host, port, tasks: taskIds });
  ctx.io.stdout.write(`${server.url}\n`);
  ctx.io.stderr.write(`phpo: monitor of ${api.user}'s tasks; stop it with Ctrl-C\n`);
  try {
    await until;
  } finally {
    await server.close();
  }
  return 0;
}
