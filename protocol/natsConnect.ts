// The one way every gridtune process connects to NATS: an nkey user over TLS, with the identity's
// own inbox prefix (without it every request fails on a permission violation) and a connection
// name the server log shows on each violation. Failures become UnavailableError with a hint,
// because the raw ones mislead (a refused client certificate looks like a plain timeout).
import { readFileSync, statSync } from "node:fs";
import {
  AuthorizationError,
  type NatsConnection,
  type NodeConnectionOptions,
  PermissionViolationError,
  TimeoutError,
  connect,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import { UnavailableError, ValidationError } from "./errors.ts";
import { type Identity, connectionName, inboxPrefix, parseIdentity } from "./identity.ts";
import { patchNatsRequests } from "./natsRequestPatch.ts";

export type NatsLogLevel = "info" | "warn" | "error";
export type NatsLogger = (level: NatsLogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface ConnectNatsOptions {
  /** One URL, a comma-separated list, or a list: any server of a cluster (parseNatsServers). */
  servers: string | string[];
  /** nkey seed file (`SU…`), mode 0600. */
  seedFile: string;
  /** Project CA that signed the server certificate. */
  caFile?: string;
  /** Client certificate and key, for servers with mutual TLS. */
  certFile?: string;
  keyFile?: string;
  identity: Identity;
  /** Connect timeout; default 5000 ms (nats.js defaults to 20 s, which hides mTLS refusals). */
  timeoutMs?: number;
  /** Appended to the connection name, e.g. a process role ("steering:api"). */
  nameSuffix?: string;
  /** Default -1: retry forever (an agent outlives NATS restarts). */
  maxReconnectAttempts?: number;
  reconnectTimeWaitMs?: number;
  /** Receives permission violations, disconnects and reconnects; default: warnings/errors to stderr. */
  logger?: NatsLogger;
  /** Called on each disconnect (e.g. steering stops judging leases: no heartbeat can arrive). */
  onDisconnect?: () => void;
  /** Called after each reconnect (e.g. steering restarts its lease clocks: no heartbeat came meanwhile). */
  onReconnect?: () => void;
}

const stderrLogger: NatsLogger = (level, message) => {
  if (level !== "info") process.stderr.write(`[nats ${level}] ${message}\n`);
};

/**
 * Reads the seed, refusing a file others can read. Never includes the content in a message.
 * Exported for tests and for processes that check their configuration before connecting.
 */
export function readSeedFile(seedFile: string): Uint8Array {
  let mode: number;
  try {
    mode = statSync(seedFile).mode;
  } catch (err) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `NATS seed file ${seedFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}): ` +
        "check the path; the gridtune admin creates it with `gridtune-steering admin add-agent|add-user`",
      { cause: err },
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `NATS seed file ${seedFile} has mode ${(mode & 0o777).toString(8).padStart(4, "0")}: it is a secret and must ` +
        `be readable by its owner only; run \`chmod 600 ${seedFile}\``,
    );
  }
  const text = readFileSync(seedFile, "utf8").trim();
  if (!/^SU[A-Z2-7]{56}$/.test(text)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `NATS seed file ${seedFile} does not hold an nkey user seed (SU…)`,
    );
  }
  return new TextEncoder().encode(text);
}

/**
 * The servers to connect to, from a URL, a comma-separated list of URLs (NATS_URL, --nats-url,
 * the client profile's natsUrl) or a list: any one of them answering is enough, and nats.js moves
 * to another on a disconnect. Each entry must be `[nats|tls]://host:port` or `host:port`; `field`
 * names the setting in the error.
 */
export function parseNatsServers(value: string | readonly string[], field = "NATS_URL"): string[] {
  const entries = (typeof value === "string" ? value.split(",") : value).map((s) => s.trim());
  const fix = `give one or more NATS URLs separated by commas, e.g. tls://10.0.0.1:4222,tls://10.0.0.2:4222`;
  if (entries.length === 0 || entries.every((e) => e === ""))
    throw new ValidationError("INVALID_CONFIG", `${field} is empty: ${fix}`);
  const out: string[] = [];
  for (const [i, e] of entries.entries()) {
    if (e === "") throw new ValidationError("INVALID_CONFIG", `${field}: entry ${i + 1} is empty: ${fix}`);
    let url: URL;
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `nats://${e}`);
    } catch (err) {
      throw new ValidationError("INVALID_CONFIG", `${field}: ${JSON.stringify(e)} is not a URL: ${fix}`, {
        cause: err,
      });
    }
    if (!["nats:", "tls:"].includes(url.protocol) || url.hostname === "" || url.pathname.length > 1)
      throw new ValidationError(
        "INVALID_CONFIG",
        `${field}: ${JSON.stringify(e)} is not a NATS server URL (nats:// or tls://, a host, an optional port, no path): ${fix}`,
      );
    if (!out.includes(e)) out.push(e);
  }
  return out;
}

export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const identity = parseIdentity(opts.identity);
  const logger = opts.logger ?? stderrLogger;
  const servers = parseNatsServers(opts.servers);
  const where = servers.join(", ");
  let seed = readSeedFile(opts.seedFile);
  const name = connectionName(identity) + (opts.nameSuffix ? `:${opts.nameSuffix}` : "");
  const tlsFiles = opts.caFile || opts.certFile || opts.keyFile;
  const timeout = opts.timeoutMs ?? 5000;
  const options: NodeConnectionOptions = {
    servers,
    name,
    inboxPrefix: inboxPrefix(identity),
    // Re-read at each (re)connect, so a rotated seed file is picked up without a restart.
    authenticator: nkeyAuthenticator(() => {
      try {
        seed = readSeedFile(opts.seedFile);
      } catch (err) {
        logger("warn", `keeping the previous NATS seed: ${(err as Error).message}`);
      }
      return seed;
    }),
    maxReconnectAttempts: opts.maxReconnectAttempts ?? -1,
    timeout,
    // nats.js otherwise builds two Errors (stack traces) for every request up front, in case it
    // later times out: about 9 % of steering's CPU in a profile at 250 evaluations/s. Our callers
    // wrap a timeout in their own error naming the operation anyway.
    noAsyncTraces: true,
    ...(opts.reconnectTimeWaitMs !== undefined ? { reconnectTimeWait: opts.reconnectTimeWaitMs } : {}),
    ...(tlsFiles
      ? {
          tls: {
            ...(opts.caFile ? { caFile: opts.caFile } : {}),
            ...(opts.certFile ? { certFile: opts.certFile } : {}),
            ...(opts.keyFile ? { keyFile: opts.keyFile } : {}),
          },
        }
      : {}),
  };
  patchNatsRequests();
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (err) {
    throw describeConnectError(err, { where, name, opts, timeout });
  }
  void watchStatus(nc, name, logger, opts);
  void nc.closed().then((err) => {
    if (err) {
      const hint = err instanceof AuthorizationError ? " (the identity was removed or its key rotated)" : "";
      logger("error", `NATS connection ${name} closed: ${err.message}${hint}`, { error: err });
    }
  });
  return nc;
}

async function watchStatus(
  nc: NatsConnection,
  name: string,
  logger: NatsLogger,
  on: Pick<ConnectNatsOptions, "onDisconnect" | "onReconnect">,
): Promise<void> {
  for await (const s of nc.status()) {
    switch (s.type) {
      case "error":
        if (s.error instanceof PermissionViolationError) {
          logger(
            "warn",
            `NATS permission violation for ${name}: ${s.error.operation} ${s.error.subject} is not allowed for this identity (docs/security.md)`,
            { operation: s.error.operation, subject: s.error.subject },
          );
        } else logger("error", `NATS error for ${name}: ${s.error.message}`, { error: s.error });
        break;
      case "disconnect":
        logger("warn", `NATS ${name} disconnected from ${s.server}; reconnecting`);
        on.onDisconnect?.();
        break;
      case "reconnect":
        logger("info", `NATS ${name} reconnected to ${s.server}`);
        on.onReconnect?.();
        break;
      case "slowConsumer":
        logger("warn", `NATS ${name}: slow consumer on ${s.sub.getSubject()} (${s.pending} pending)`);
        break;
      case "reconnecting":
      case "update":
      case "ldm":
      case "ping":
      case "staleConnection":
      case "forceReconnect":
      case "close":
        // routine, or told by the ones above (a stale connection ends in disconnect/reconnect)
        break;
      default: {
        // A compile-time guard only: a newer nats.js may send a status this build does not know,
        // and throwing here would end the watch loop for good, so it is ignored.
        const unknown: never = s;
        void unknown;
        break;
      }
    }
  }
}

const CERT_ERRORS =
  /UNABLE_TO_VERIFY|SELF_SIGNED|CERT_|ERR_TLS_CERT|unable to verify|self[- ]signed|certificate/i;

function describeConnectError(
  err: unknown,
  ctx: { where: string; name: string; opts: ConnectNatsOptions; timeout: number },
): UnavailableError {
  const e = err instanceof Error ? err : new Error(String(err));
  const codes = [
    (e as NodeJS.ErrnoException).code,
    (e.cause as NodeJS.ErrnoException | undefined)?.code,
  ].join(" ");
  const text = `${e.message} ${codes} ${e.cause instanceof Error ? e.cause.message : ""}`;
  const { where, name, opts } = ctx;
  let msg: string;
  if (e instanceof AuthorizationError || /Authorization Violation/i.test(text)) {
    msg =
      `NATS at ${where} refused ${name} (Authorization Violation): the identity is unknown or was removed, ` +
      `or ${opts.seedFile} is not its current seed; ask the gridtune admin (gridtune-steering admin list / add-agent / add-user)`;
  } else if (/ECONNREFUSED|connection refused/i.test(text)) {
    msg = `cannot connect to NATS at ${where}: connection refused. Start the stack (gridtune-stack, npm run demo) or check NATS_URL`;
  } else if (e instanceof TimeoutError || /timeout/i.test(e.name + e.message)) {
    msg =
      `no answer from NATS at ${where} within ${ctx.timeout} ms` +
      (opts.caFile || opts.certFile
        ? ": this often means mutual TLS refused the client certificate (missing, expired or from another CA); check the server log" +
          (opts.certFile ? ` and ${opts.certFile}` : "; pass a client certificate (certFile/keyFile)")
        : ": check NATS_URL and that the server is reachable");
  } else if (CERT_ERRORS.test(text)) {
    msg =
      `TLS verification of NATS at ${where} failed (${e.message}): ` +
      (opts.caFile
        ? `the server certificate is not signed by the CA in ${opts.caFile}, or does not name this host; use the project CA file (<stack dir>/pki/ca.pem)`
        : "no CA file given: pass the project CA (caFile / NATS_CA, <stack dir>/pki/ca.pem)");
  } else if (/ENOTFOUND|EAI_AGAIN/.test(text)) {
    msg = `cannot resolve the NATS host in ${where}: check NATS_URL`;
  } else {
    msg = `cannot connect to NATS at ${where} as ${name}: ${e.message}`;
  }
  return new UnavailableError(msg, { cause: err });
}
