// Where steering is and who we are. Each setting comes from, in order: a flag (--nats-url --user
// --seed-file --ca-file), the environment (NATS_URL GRIDTUNE_USER GRIDTUNE_SEED_FILE
// GRIDTUNE_CA_FILE), then the first config file that exists: --config, $GRIDTUNE_CONFIG,
// ~/.config/gridtune/config.json, and the embedded stack's
// ${GRIDTUNE_HOME:-~/.local/state/gridtune/stack}/client.json (written by gridtune-stack).
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { describeZodError, UnavailableError, ValidationError } from "../protocol/errors.ts";
import { IdentityName, userIdentity } from "../protocol/identity.ts";
import { connectNats, parseNatsServers } from "../protocol/natsConnect.ts";
import type { GlobalOptions, Io } from "./io.ts";
import { parseJsonText } from "./jsonText.ts";

/** The config file format; every field may also come from a flag or the environment. */
export const ClientConfig = z
  .object({
    /** One server, a comma-separated list, or a list of the servers of a cluster (any of them). */
    natsUrl: z.union([
      z.string().min(1),
      z
        .array(z.string().min(1))
        .min(1)
        .transform((a) => a.join(",")),
    ]),
    user: IdentityName,
    /** nkey seed file (SU…, mode 0600); relative paths are relative to the config file. */
    seedFile: z.string().min(1),
    /** CA that signed the NATS server certificate. */
    caFile: z.string().min(1).optional(),
  })
  .strict();
export type ClientConfig = z.infer<typeof ClientConfig>;

export type Env = Readonly<Record<string, string | undefined>>;

/** Config files in the order they are tried; `explicit` ones must exist. */
export function configCandidates(flags: GlobalOptions, env: Env): { path: string; explicit: boolean }[] {
  const home = env.HOME ?? homedir();
  const stackHome = env.GRIDTUNE_HOME ?? join(home, ".local", "state", "gridtune", "stack");
  const out: { path: string; explicit: boolean }[] = [];
  if (flags.config) out.push({ path: resolve(flags.config), explicit: true });
  if (env.GRIDTUNE_CONFIG) out.push({ path: resolve(env.GRIDTUNE_CONFIG), explicit: true });
  out.push({ path: join(home, ".config", "gridtune", "config.json"), explicit: false });
  out.push({ path: join(stackHome, "client.json"), explicit: false });
  return out;
}

const PartialConfig = ClientConfig.partial();

function readConfigFile(path: string): Partial<ClientConfig> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `config file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}): check --config / GRIDTUNE_CONFIG`,
      {
        cause: err,
      },
    );
  }
  const r = PartialConfig.safeParse(parseJsonText(text, path));
  if (!r.success) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `config file ${path} is invalid:\n${describeZodError(r.error)}\nexpected {"natsUrl": "tls://127.0.0.1:4222", "user": "demo", "seedFile": "/abs/path/user-demo.nk", "caFile": "/abs/path/ca.pem"}`,
    );
  }
  const dir = dirname(path);
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : join(dir, p));
  const c = r.data;
  return {
    ...c,
    ...(c.seedFile ? { seedFile: abs(c.seedFile) } : {}),
    ...(c.caFile ? { caFile: abs(c.caFile) } : {}),
  };
}

export interface ResolvedConfig extends ClientConfig {
  /** Where the file settings came from, for messages. */
  source: string | null;
}

/** Merges flags, environment and the first existing config file; validates the result. */
export function resolveClientConfig(flags: GlobalOptions, env: Env = process.env): ResolvedConfig {
  let file: Partial<ClientConfig> = {};
  let source: string | null = null;
  const candidates = configCandidates(flags, env);
  for (const c of candidates) {
    if (existsSync(c.path)) {
      file = readConfigFile(c.path);
      source = c.path;
      break;
    }
    if (c.explicit)
      throw new ValidationError(
        "INVALID_CONFIG",
        `config file ${c.path} does not exist: check --config / GRIDTUNE_CONFIG`,
      );
  }
  const merged = {
    natsUrl: flags.natsUrl ?? env.NATS_URL ?? file.natsUrl,
    user: flags.user ?? env.GRIDTUNE_USER ?? file.user,
    seedFile: flags.seedFile ?? env.GRIDTUNE_SEED_FILE ?? file.seedFile,
    caFile: flags.caFile ?? env.GRIDTUNE_CA_FILE ?? file.caFile,
  };
  if (merged.natsUrl === undefined && merged.user === undefined && merged.seedFile === undefined) {
    // Nothing configured at all: most likely no stack has been started on this machine.
    throw new UnavailableError(
      "no gridtune server is configured: start the embedded stack (gridtune-stack, or npm run demo), " +
        `or pass --nats-url, --user and --seed-file, or write ${candidates.find((c) => !c.explicit)?.path ?? "~/.config/gridtune/config.json"}`,
    );
  }
  const r = ClientConfig.safeParse(
    Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)),
  );
  if (!r.success) {
    const fix: Record<string, string> = {
      natsUrl: "--nats-url or NATS_URL",
      user: "--user or GRIDTUNE_USER",
      seedFile: "--seed-file or GRIDTUNE_SEED_FILE",
      caFile: "--ca-file or GRIDTUNE_CA_FILE",
    };
    const lines = r.error.issues.map((i) => {
      const k = String(i.path[0] ?? "");
      return `${k}: ${i.message} (set it with ${fix[k] ?? k}${source ? ` or in ${source}` : ""})`;
    });
    throw new ValidationError("INVALID_CONFIG", `incomplete connection settings:\n${lines.join("\n")}`);
  }
  const fromFile = flags.natsUrl === undefined && env.NATS_URL === undefined;
  parseNatsServers(r.data.natsUrl, fromFile && source ? `natsUrl in ${source}` : "--nats-url or NATS_URL");
  return { ...r.data, source };
}

export interface Connection {
  nc: NatsConnection;
  config: ResolvedConfig;
  close(): Promise<void>;
}

export async function openConnection(
  flags: GlobalOptions,
  io: Io,
  env: Env = process.env,
  o: { persistent?: boolean } = {},
): Promise<Connection> {
  const config = resolveClientConfig(flags, env);
  const nc = await connectNats({
    servers: config.natsUrl,
    seedFile: config.seedFile,
    ...(config.caFile ? { caFile: config.caFile } : {}),
    identity: userIdentity(config.user),
    timeoutMs: 5000,
    nameSuffix: "phpo",
    // A CLI command must fail, not wait forever, when NATS goes away mid-request; a long-lived
    // one (phpo monitor) keeps reconnecting, and its requests fail meanwhile.
    maxReconnectAttempts: o.persistent ? -1 : 1,
    logger: (level, message) => {
      if (level !== "info" || flags.verbose) io.stderr.write(`phpo: nats ${level}: ${message}\n`);
    },
  });
  return {
    nc,
    config,
    async close() {
      await nc.close().catch(() => undefined);
    },
  };
}
