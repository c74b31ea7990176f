// Finding the nats-server that runs a stack's nats.conf, for the admin verbs' reload: the pid file
// can be stale or gone (a server restarted by hand), and a stale pid can name any process, even
// another stack's nats-server on a shared machine. So a process counts only when its command
// line says nats-server with this very config file.
import { existsSync } from "node:fs";
import { readFile, readdir, readlink, realpath } from "node:fs/promises";
import { connect as connectTcp } from "node:net";
import { basename, resolve } from "node:path";

/**
 * Pid of the nats-server running with `configFile`, else undefined. The pid in `pidFile` is tried
 * first; when it is stale or missing (the server was restarted by hand), the process table is
 * searched for a nats-server whose command line names that config file.
 */
export async function findServerPid(pidFile: string, configFile: string): Promise<number | undefined> {
  const config = await realpath(configFile).catch(() => resolve(configFile));
  const recorded = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
  if (Number.isInteger(recorded) && recorded > 0) {
    const verdict = await servesConfig(recorded, config);
    if (verdict === "yes" || verdict === "unknown") return recorded;
  }
  const pids = await readdir("/proc").catch(() => [] as string[]);
  for (const entry of pids) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid !== recorded && (await servesConfig(pid, config)) === "yes") return pid;
  }
  return undefined;
}

/**
 * Whether process `pid` is a nats-server started with config file `config` (a real path):
 * "unknown" where /proc cannot tell (another OS), if the process is alive.
 */
async function servesConfig(pid: number, config: string): Promise<"yes" | "no" | "unknown"> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but someone else's; the command line still tells whether it is ours
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return "no";
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  if (cmdline === undefined) return existsSync("/proc/self") ? "no" : "unknown";
  const argv = cmdline.split("\0").filter((a) => a !== "");
  if (!argv[0] || !basename(argv[0]).startsWith("nats-server")) return "no";
  const arg = configArgument(argv.slice(1));
  if (arg === undefined) return "no";
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "/");
  const file = resolve(cwd, arg);
  return (await realpath(file).catch(() => file)) === config ? "yes" : "no";
}

/** The value of nats-server's `-c`/`--config` option (Go flags: one or two dashes, `=` or a space). */
function configArgument(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const m = /^--?(?:c|config)(?:=(.*))?$/.exec(args[i]!);
    if (m) return m[1] ?? args[i + 1];
  }
  return undefined;
}

/** Whether something accepts TCP connections on host:port (a nats-server admin cannot find). */
export function listening(host: string, port: number): Promise<boolean> {
  const target = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return new Promise((done) => {
    const socket = connectTcp({ host: target, port });
    socket.setTimeout(1000);
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
    socket.once("timeout", () => finish(false));
  });
}
