// Runs Debian's nats-server from a configuration rendered out of the identity store, with TLS and
// nkey users from the first start: nothing ever listens without authentication. State lives in
// one directory: nats.conf (0600), nats-settings.json, nats.pid, nats.log, jetstream/, pki/.
// The admin verbs (admin.ts) rewrite the config and reload the running server through the pid file.
import { type ChildProcess, spawn } from "node:child_process";
import { constants, accessSync } from "node:fs";
import { open, readFile, readdir, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { z } from "zod";
import { GridtuneError, UnavailableError, ValidationError, describeZodError } from "../../protocol/errors.ts";
import { steeringApiIdentity, steeringIdentity } from "../../protocol/identity.ts";
import { ensurePrivateDir, writeFileAtomic } from "./fsutil.ts";
import type { IdentityStore } from "./identities.ts";
import { NatsClusterSettings, NatsConfigInput, NatsTlsSettings, writeNatsConfig } from "./natsConfig.ts";
import { findServerPid, listening } from "./natsProcess.ts";
import { ensurePki } from "./pki.ts";

export const NatsServerSettings = z.object({
  host: z.string(),
  port: z.number().int(),
  monitorPort: z.number().int().optional(),
  storeDir: z.string(),
  tls: NatsTlsSettings,
  serverName: z.string().optional(),
  jetstreamLimits: NatsConfigInput.shape.jetstreamLimits,
  cluster: NatsClusterSettings.optional(),
});
export type NatsServerSettings = z.infer<typeof NatsServerSettings>;

export interface NatsServerOptions {
  /** State directory (config, log, pid file, JetStream store, PKI). */
  dir: string;
  store: IdentityStore;
  /** Client listen address; default 127.0.0.1. */
  host?: string;
  /** Client port; 0 or absent = a free port chosen now and kept in nats-settings.json. */
  port?: number;
  /** Monitoring port on 127.0.0.1 (healthz is used for readiness); 0 or absent = a free port. */
  monitorPort?: number;
  tls?: {
    /** Mutual TLS: clients need a certificate from the project CA (issueClientCert). */
    verify?: boolean;
    /** Extra names/IPs for the server certificate (remote sites connect by these). */
    hosts?: string[];
    /** PKI directory; default `<dir>/pki`. */
    pkiDir?: string;
  };
  readyTimeoutMs?: number;
  /** nats-server binary; default GRIDTUNE_NATS_SERVER, /usr/sbin/nats-server, then PATH. */
  binary?: string;
  /** For a node of a cluster (stack/natsCluster.ts): its name, JetStream limits and routes. */
  serverName?: string;
  jetstreamLimits?: NatsConfigInput["jetstreamLimits"];
  cluster?: NatsClusterSettings;
}

export interface NatsServerHandle {
  /** Client URL (tls://host:port: the server requires TLS, clients pass the CA file). */
  url: string;
  port: number;
  monitorUrl: string | undefined;
  pid: number;
  configFile: string;
  logFile: string;
  pidFile: string;
  caFile: string;
  /** Rewrites the configuration from the identity store and reloads it (SIGHUP), no restart. */
  reload(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; idempotent. */
  stop(): Promise<void>;
}

export const natsFiles = (dir: string) => ({
  configFile: join(dir, "nats.conf"),
  settingsFile: join(dir, "nats-settings.json"),
  pidFile: join(dir, "nats.pid"),
  logFile: join(dir, "nats.log"),
  storeDir: join(dir, "jetstream"),
});

const STOP_GRACE_MS = 5000;

/** Where a stack directory keeps the nodes of its local NATS cluster (stack/natsCluster.ts). */
export const NATS_CLUSTER_DIR = "nats-cluster";

/** The state directories of the stack's cluster nodes (`<dir>/nats-cluster/n1`, …), if any. */
export async function clusterNodeDirs(dir: string): Promise<string[]> {
  const root = join(dir, NATS_CLUSTER_DIR);
  const names = await readdir(root).catch(() => [] as string[]);
  return names.filter((n) => /^n[0-9]+$/.test(n)).map((n) => join(root, n));
}

export function findNatsServer(binary?: string): string {
  const candidates = [binary, process.env.GRIDTUNE_NATS_SERVER, "/usr/sbin/nats-server"];
  for (const d of (process.env.PATH ?? "").split(delimiter)) if (d) candidates.push(join(d, "nats-server"));
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  throw new GridtuneError(
    "UNAVAILABLE",
    "nats-server is not installed (looked in /usr/sbin and PATH): run `apt-get install -y nats-server` or `npm run setup`, or set GRIDTUNE_NATS_SERVER",
    { retryable: false },
  );
}

export async function readServerSettings(dir: string): Promise<NatsServerSettings> {
  const file = natsFiles(dir).settingsFile;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new GridtuneError(
      "NOT_FOUND",
      `no NATS server settings in ${dir} (${file}): start the stack once first`,
      {
        cause: err,
      },
    );
  }
  const r = NatsServerSettings.safeParse(JSON.parse(text));
  if (!r.success) throw new ValidationError("INVALID_CONFIG", `${file}:\n${describeZodError(r.error)}`);
  return r.data;
}

/**
 * Renders `<dir>/nats.conf` from the saved settings and the store's identities. The server writes
 * its own pid file and log there (`pid_file`, `log_file`), so a nats-server restarted by hand with
 * `nats-server -c <dir>/nats.conf` can still be found and its reload confirmed by the admin verbs.
 */
export async function writeConfigFromStore(dir: string, store: IdentityStore): Promise<string> {
  const settings = await readServerSettings(dir);
  const identities = (await store.list()).map((r) => ({ identity: r.identity, publicKey: r.publicKey }));
  const { configFile, pidFile, logFile } = natsFiles(dir);
  await writeNatsConfig(configFile, { ...settings, identities, pidFile, logFile });
  return configFile;
}

/** Pid of the nats-server running with `<dir>/nats.conf` (natsProcess.ts), else undefined. */
export function runningServerPid(dir: string): Promise<number | undefined> {
  const { pidFile, configFile } = natsFiles(dir);
  return findServerPid(pidFile, configFile);
}

/**
 * Sends SIGHUP (what `nats-server --signal reload=<pid>` does) and waits until the log confirms
 * the reload. Returns false when no server runs (the new config applies at its next start). Throws
 * when a server answers on the configured port but is not one this directory's config started, or
 * cannot be signalled: then nothing was reloaded, and the message names the fix.
 */
export async function reloadRunningServer(dir: string, timeoutMs = 10_000): Promise<boolean> {
  const { logFile, configFile, pidFile } = natsFiles(dir);
  const pid = await runningServerPid(dir);
  if (pid === undefined) {
    const settings = await readServerSettings(dir);
    if (!(await listening(settings.host, settings.port))) return false;
    throw new GridtuneError(
      "UNAVAILABLE",
      `the configuration was rewritten (${configFile}) but NOT reloaded: something listens on ` +
        `${settings.host}:${settings.port}, and no nats-server process started with that file was ` +
        `found (${pidFile} is stale or missing). Reload it yourself with ` +
        `\`nats-server --signal reload=<pid>\` (or \`kill -HUP <pid>\`), or restart it with ` +
        `\`nats-server -c ${configFile}\`.`,
      { retryable: false },
    );
  }
  const from = await fileSize(logFile);
  try {
    process.kill(pid, "SIGHUP");
  } catch (err) {
    throw new GridtuneError(
      "UNAVAILABLE",
      `the configuration was rewritten (${configFile}) but nats-server (pid ${pid}) could not be ` +
        `signalled to reload it: ${String(err)}. Run the admin command as the user that runs ` +
        `nats-server, or run \`nats-server --signal reload=${pid}\` as that user.`,
      { cause: err, retryable: false },
    );
  }
  await waitForLog(
    logFile,
    from,
    /Reloaded server configuration/,
    /Failed to reload|\[FTL\]/,
    timeoutMs,
    "reload",
  );
  return true;
}

export async function startNatsServer(opts: NatsServerOptions): Promise<NatsServerHandle> {
  const bin = findNatsServer(opts.binary);
  const dir = opts.dir;
  const files = natsFiles(dir);
  await ensurePrivateDir(dir);
  await ensurePrivateDir(files.storeDir);
  const running = await runningServerPid(dir);
  if (running !== undefined) {
    throw new GridtuneError(
      "CONFLICT",
      `a nats-server (pid ${running}) already runs for ${dir}; stop it first or use another directory`,
    );
  }
  const pki = await ensurePki(opts.tls?.pkiDir ?? join(dir, "pki"), { hosts: opts.tls?.hosts ?? [] });
  // Steering always needs its two identities (JetStream work, and the request server); creating
  // them here keeps the stack's start a single call and migrates a stack made before the split.
  await opts.store.ensure(steeringIdentity());
  await opts.store.ensure(steeringApiIdentity());
  const host = opts.host ?? "127.0.0.1";
  const tls = {
    certFile: pki.certFile,
    keyFile: pki.keyFile,
    caFile: pki.caFile,
    verify: opts.tls?.verify ?? false,
  };

  // A port picked here can be taken by someone else before nats-server binds it: retry once.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ? opts.port : await freePort(host);
    const monitorPort = opts.monitorPort ? opts.monitorPort : await freePort("127.0.0.1");
    const settings: NatsServerSettings = {
      host,
      port,
      monitorPort,
      storeDir: files.storeDir,
      tls,
      ...(opts.serverName ? { serverName: opts.serverName } : {}),
      ...(opts.jetstreamLimits ? { jetstreamLimits: opts.jetstreamLimits } : {}),
      ...(opts.cluster ? { cluster: opts.cluster } : {}),
    };
    await writeFileAtomic(files.settingsFile, JSON.stringify(settings, null, 2) + "\n", 0o600);
    await writeConfigFromStore(dir, opts.store);
    try {
      return await launch(bin, dir, settings, opts);
    } catch (err) {
      const portClash = err instanceof Error && /address already in use/i.test(err.message);
      if (!portClash || attempt >= 2 || (opts.port && opts.monitorPort)) throw err;
    }
  }
}

async function launch(
  bin: string,
  dir: string,
  settings: NatsServerSettings,
  opts: NatsServerOptions,
): Promise<NatsServerHandle> {
  const files = natsFiles(dir);
  const from = await fileSize(files.logFile);
  const log = await open(files.logFile, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(bin, ["-c", files.configFile], { stdio: ["ignore", log.fd, log.fd] });
  } finally {
    await log.close(); // the child has its own copy of the descriptor
  }
  const exited = new Promise<string>((resolve) =>
    child.once("exit", (code, signal) => resolve(`exited (${signal ?? `code ${code}`})`)),
  );
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  // A nats-server must not outlive a crashed test or stack process.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const pid = child.pid;
  const monitorUrl = settings.monitorPort ? `http://127.0.0.1:${settings.monitorPort}` : undefined;
  try {
    if (pid === undefined) await spawnError;
    await Promise.race([
      waitForLog(
        files.logFile,
        from,
        /Server is ready/,
        /\[FTL\]|\[ERR\].*(listen|address)/i,
        opts.readyTimeoutMs ?? 15_000,
        "start",
      ),
      spawnError,
      exited.then(async (how) => {
        throw new UnavailableError(
          `nats-server ${how} during start-up; see ${files.logFile}:\n${await logTail(files.logFile, from)}`,
        );
      }),
    ]);
    if (monitorUrl)
      await waitHealthy(`${monitorUrl}/healthz?js-enabled-only=true`, opts.readyTimeoutMs ?? 15_000);
  } catch (err) {
    process.removeListener("exit", killOnExit);
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  await writeFileAtomic(files.pidFile, `${pid}\n`, 0o644);

  let stopping: Promise<void> | undefined;
  const connectHost = settings.host === "0.0.0.0" || settings.host === "::" ? "127.0.0.1" : settings.host;
  return {
    url: `tls://${connectHost}:${settings.port}`,
    port: settings.port,
    monitorUrl,
    pid: pid!,
    configFile: files.configFile,
    logFile: files.logFile,
    pidFile: files.pidFile,
    caFile: settings.tls.caFile,
    async reload() {
      if (stopping) throw new GridtuneError("CONFLICT", "nats-server is stopped; cannot reload");
      await writeConfigFromStore(dir, opts.store);
      if (!(await reloadRunningServer(dir)))
        throw new UnavailableError(`nats-server (pid ${pid}) is not running`);
    },
    stop() {
      stopping ??= (async () => {
        process.removeListener("exit", killOnExit);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
          await exited;
          clearTimeout(timer);
        }
        // Only remove the pid file if it is still ours.
        if ((await readFile(files.pidFile, "utf8").catch(() => "")).trim() === String(pid)) {
          await rm(files.pidFile, { force: true });
        }
      })();
      return stopping;
    },
  };
}

export async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function logTail(path: string, from: number): Promise<string> {
  const text = (await readFile(path, "utf8").catch(() => "")).slice(from);
  return text.split("\n").slice(-15).join("\n");
}

/** Polls the log from byte `from` until `ok` matches a line (or `fail` does, which throws). */
async function waitForLog(
  path: string,
  from: number,
  ok: RegExp,
  fail: RegExp,
  timeoutMs: number,
  what: string,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await readFile(path).catch(() => Buffer.alloc(0))).subarray(from).toString("utf8");
    for (const line of text.split("\n")) {
      if (fail.test(line))
        throw new UnavailableError(`nats-server ${what} failed: ${line.trim()} (log: ${path})`);
      if (ok.test(line)) return;
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(
        `nats-server ${what} not confirmed within ${timeoutMs} ms; see ${path}:\n${text.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new UnavailableError(`nats-server is not healthy at ${url} after ${timeoutMs} ms: ${last}`);
}
