// Renders the nats-server 2.9 configuration from the identity store. nats-server reads JSON as
// its config format, so the file is plain JSON.stringify output: no quoting or escaping bugs.
// Only public keys go in; the file is still 0600 because it shows who may connect.
import { z } from "zod";
import { ValidationError, describeZodError } from "../../protocol/errors.ts";
import { Identity, connectionName, identityId, permissionsFor } from "../../protocol/identity.ts";
import { writeFileAtomic } from "./fsutil.ts";

export const ACCOUNT = "GRIDTUNE";
export const SYSTEM_ACCOUNT = "SYS";

export const NatsTlsSettings = z.object({
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  caFile: z.string().min(1),
  /** Mutual TLS: clients must also present a certificate signed by the project CA. */
  verify: z.boolean().optional(),
});
export type NatsTlsSettings = z.infer<typeof NatsTlsSettings>;

const TOKEN = /^[A-Za-z0-9_-]+$/;

export const NatsClusterSettings = z.object({
  name: z.string().regex(TOKEN),
  /** Route listen address: loopback unless the nodes are on several hosts. */
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  routes: z.array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })).min(1),
  /**
   * Routes authenticate with this user and password: without it any process that reaches a
   * route port could join as a server and receive every message of every account.
   */
  user: z.string().regex(TOKEN),
  password: z.string().regex(/^[A-Za-z0-9]{16,}$/, "a route password of 16+ letters and digits"),
});
export type NatsClusterSettings = z.infer<typeof NatsClusterSettings>;

export const NatsConfigInput = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  monitorPort: z.number().int().min(1).max(65535).optional(),
  storeDir: z.string().min(1),
  tls: NatsTlsSettings,
  identities: z.array(z.object({ identity: Identity, publicKey: z.string().regex(/^U[A-Z2-7]{55}$/) })),
  /** Shown in the server log and monitoring; distinct per node of a cluster. */
  serverName: z.string().optional(),
  /** JetStream's limits; without them each server may claim 75 % of the host's memory and disk. */
  jetstreamLimits: z
    .object({ maxMemBytes: z.number().int().positive(), maxFileBytes: z.number().int().positive() })
    .optional(),
  /** A node of a cluster: routes to every node (itself included), with a shared route secret. */
  cluster: NatsClusterSettings.optional(),
  /** Written by the server itself, so a server restarted by hand can be found for a reload. */
  pidFile: z.string().min(1).optional(),
  /** The server's own log file (reload confirmations are read from it). */
  logFile: z.string().min(1).optional(),
});
export type NatsConfigInput = z.infer<typeof NatsConfigInput>;

/** The configuration as JSON text. Throws ValidationError on a bad input or a duplicate key/identity. */
export function renderNatsConfig(input: NatsConfigInput): string {
  const r = NatsConfigInput.safeParse(input);
  if (!r.success) {
    throw new ValidationError("INVALID_CONFIG", `invalid NATS configuration:\n${describeZodError(r.error)}`);
  }
  const cfg = r.data;
  const seenKeys = new Set<string>();
  const seenIds = new Set<string>();
  const users = cfg.identities.map(({ identity, publicKey }) => {
    // A key shared by two identities would give one of them both permission sets.
    if (seenKeys.has(publicKey) || seenIds.has(identityId(identity))) {
      throw new ValidationError(
        "CONFLICT",
        `duplicate NATS identity or public key for ${connectionName(identity)}: fix identities.json`,
      );
    }
    seenKeys.add(publicKey);
    seenIds.add(identityId(identity));
    const perms = permissionsFor(identity);
    return {
      nkey: publicKey,
      permissions: { publish: { allow: perms.publish.allow }, subscribe: { allow: perms.subscribe.allow } },
    };
  });
  const out: Record<string, unknown> = {
    ...(cfg.serverName ? { server_name: cfg.serverName } : {}),
    host: cfg.host,
    port: cfg.port,
    // Monitoring stays on loopback whatever the client host: it shows connection names and subjects.
    ...(cfg.monitorPort ? { http: `127.0.0.1:${cfg.monitorPort}` } : {}),
    jetstream: {
      store_dir: cfg.storeDir,
      ...(cfg.jetstreamLimits
        ? { max_mem: cfg.jetstreamLimits.maxMemBytes, max_file: cfg.jetstreamLimits.maxFileBytes }
        : {}),
    },
    ...(cfg.cluster
      ? {
          cluster: {
            name: cfg.cluster.name,
            listen: `${cfg.cluster.host}:${cfg.cluster.port}`,
            authorization: { user: cfg.cluster.user, password: cfg.cluster.password, timeout: 5 },
            routes: cfg.cluster.routes.map(
              (r) => `nats-route://${cfg.cluster!.user}:${cfg.cluster!.password}@${r.host}:${r.port}`,
            ),
          },
        }
      : {}),
    ...(cfg.pidFile ? { pid_file: cfg.pidFile } : {}),
    ...(cfg.logFile ? { log_file: cfg.logFile } : {}),
    tls: {
      cert_file: cfg.tls.certFile,
      key_file: cfg.tls.keyFile,
      ca_file: cfg.tls.caFile,
      verify: cfg.tls.verify ?? false,
      timeout: 5,
    },
    // No `no_auth_user` and no top-level users: an anonymous connection is refused.
    accounts: {
      [ACCOUNT]: { jetstream: "enabled", users },
      [SYSTEM_ACCOUNT]: { users: [] },
    },
    system_account: SYSTEM_ACCOUNT,
  };
  return JSON.stringify(out, null, 2) + "\n";
}

/** Renders and writes the configuration atomically with mode 0600 (nats-server may be reloading). */
export async function writeNatsConfig(path: string, input: NatsConfigInput): Promise<void> {
  await writeFileAtomic(path, renderNatsConfig(input), 0o600);
}
