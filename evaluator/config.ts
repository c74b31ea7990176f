// The agent's configuration, compiled once before any I/O: flags > environment > defaults.
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { describeZodError, ValidationError } from "../protocol/errors.ts";
import { IdentityName, validateIdentityName } from "../protocol/identity.ts";
import { parseNatsServers } from "../protocol/natsConnect.ts";

/**
 * The agent's name on its host: the same across restarts of one agent of one deployment (its NATS
 * server, site and agent name), different for two deployments or agents sharing a Docker host or
 * work root. It is in every container name, label and working-directory name the agent makes, so
 * the agent only ever removes what is its own (12 hex digits, like the steering instance).
 */
export function agentInstance(c: { natsUrl: string; site: string; agent: string }): string {
  return createHash("sha256").update(`${c.natsUrl} ${c.site} ${c.agent}`).digest("hex").slice(0, 12);
}

const PROCESS_TRUST =
  "the process runtime runs payloads unconfined, as this agent's own user on the host: name the users it trusts with --trusted-users u1,u2 (env GRIDTUNE_TRUSTED_USERS); others' jobs are refused";

export const AgentConfig = z.object({
  site: z.string(),
  agent: z.string(),
  natsUrl: z.string().min(1),
  seedFile: z.string().min(1, "an nkey seed file is required (--seed-file or GRIDTUNE_SEED_FILE)"),
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  runtime: z.enum(["auto", "docker", "process"]),
  /** GPU ids per slot; CPU slots have []. */
  slots: z.array(z.array(z.string())).min(1),
  workRoot: z.string().min(1),
  allowedImages: z.array(z.string().min(1)).optional(),
  allowAnyImage: z.boolean(),
  /** Users whose jobs the process runtime runs (it refuses everyone else's); docker ignores it. */
  trustedUsers: z.array(IdentityName),
  policy: z.object({
    allowNetwork: z.boolean(),
    maxMemoryBytes: z.number().int().positive(),
    maxNanoCpus: z.number().int().positive(),
    pidsLimit: z.number().int().positive(),
    maxLogBytes: z.number().int().positive(),
    maxWallClockMs: z.number().int().positive(),
    stopGraceMs: z.number().int().nonnegative(),
    maxInputBytes: z.number().int().positive(),
  }),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

export interface AgentFlags {
  site?: string;
  name?: string;
  natsUrl?: string;
  seedFile?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  runtime?: string;
  slots?: string;
  gpus?: string;
  gpusPerJob?: string;
  workDir?: string;
  allowedImages?: string;
  allowAnyImage?: boolean;
  trustedUsers?: string;
  allowNetwork?: boolean;
  maxMemoryMb?: string;
  maxCpus?: string;
  pidsLimit?: string;
  maxLogMb?: string;
  maxWallClockMinutes?: string;
}

/** Slots from `--gpus 0,1,2,3 --gpus-per-job 2` ([["0","1"],["2","3"]]) or `--slots N`. */
export function planSlots(
  slots: string | undefined,
  gpus: string | undefined,
  perJob: string | undefined,
): string[][] {
  if (gpus !== undefined && gpus.trim() !== "") {
    const ids = gpus
      .split(",")
      .map((g) => g.trim())
      .filter(Boolean);
    const k = Number(perJob ?? "1");
    if (!Number.isInteger(k) || k < 1)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `--gpus-per-job must be a positive integer, got ${perJob}`,
      );
    if (ids.length % k !== 0)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `--gpus lists ${ids.length} GPUs, not a multiple of --gpus-per-job ${k}`,
      );
    if (new Set(ids).size !== ids.length)
      throw new ValidationError("INVALID_ARGUMENT", `--gpus lists a GPU twice: ${gpus}`);
    const out: string[][] = [];
    for (let i = 0; i < ids.length; i += k) out.push(ids.slice(i, i + k));
    return out;
  }
  const n = Number(slots ?? "1");
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new ValidationError("INVALID_ARGUMENT", `--slots must be an integer from 1 to 1024, got ${slots}`);
  return Array.from({ length: n }, () => []);
}

export function compileAgentConfig(f: AgentFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const site = validateIdentityName(f.site ?? env.GRIDTUNE_SITE, "--site");
  const agent = validateIdentityName(
    f.name ??
      env.GRIDTUNE_AGENT ??
      hostname()
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, "-")
        .slice(0, 32),
    "--name",
  );
  const num = (s: string | undefined, fallback: number, field: string) => {
    if (s === undefined) return fallback;
    const v = Number(s);
    if (!Number.isFinite(v) || v <= 0)
      throw new ValidationError("INVALID_ARGUMENT", `${field} must be a positive number, got ${s}`);
    return v;
  };
  const images = f.allowedImages ?? env.GRIDTUNE_ALLOWED_IMAGES;
  const trusted = f.trustedUsers ?? env.GRIDTUNE_TRUSTED_USERS ?? "";
  const raw = {
    site,
    agent,
    natsUrl: f.natsUrl ?? env.NATS_URL ?? "tls://127.0.0.1:4222",
    seedFile: f.seedFile ?? env.GRIDTUNE_SEED_FILE ?? "",
    caFile: f.caFile ?? env.GRIDTUNE_CA_FILE,
    certFile: f.certFile ?? env.GRIDTUNE_CERT_FILE,
    keyFile: f.keyFile ?? env.GRIDTUNE_KEY_FILE,
    runtime: f.runtime ?? env.GRIDTUNE_RUNTIME ?? "auto",
    slots: planSlots(f.slots ?? env.GRIDTUNE_SLOTS, f.gpus ?? env.GRIDTUNE_GPUS, f.gpusPerJob),
    workRoot: f.workDir ?? env.GRIDTUNE_WORK_DIR ?? join("/var/tmp", "gridtune", site, agent),
    allowedImages: images
      ? images
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    allowAnyImage: f.allowAnyImage ?? env.GRIDTUNE_ALLOW_ANY_IMAGE === "1",
    trustedUsers: [
      ...new Set(
        trusted
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ],
    policy: {
      allowNetwork: f.allowNetwork ?? env.GRIDTUNE_ALLOW_NETWORK === "1",
      maxMemoryBytes: Math.round(num(f.maxMemoryMb, 16384, "--max-memory-mb") * 1024 * 1024),
      maxNanoCpus: Math.round(num(f.maxCpus, 64, "--max-cpus") * 1e9),
      pidsLimit: Math.round(num(f.pidsLimit, 1024, "--pids-limit")),
      maxLogBytes: Math.round(num(f.maxLogMb, 20, "--max-log-mb") * 1024 * 1024),
      maxWallClockMs: Math.round(
        num(f.maxWallClockMinutes, 7 * 24 * 60, "--max-wall-clock-minutes") * 60_000,
      ),
      stopGraceMs: 10_000,
      maxInputBytes: 50 * 1024 ** 3,
    },
  };
  const r = AgentConfig.safeParse(raw);
  if (!r.success)
    throw new ValidationError("INVALID_CONFIG", `evaluator configuration:\n${describeZodError(r.error)}`);
  parseNatsServers(r.data.natsUrl, "--nats-url or NATS_URL");
  if (r.data.runtime === "docker" && !r.data.allowedImages && !r.data.allowAnyImage) {
    throw new ValidationError(
      "INVALID_CONFIG",
      "the docker runtime runs only allow-listed images: pass --allowed-images img1,img2 (or GRIDTUNE_ALLOWED_IMAGES), or --allow-any-image to opt out",
    );
  }
  if (r.data.runtime === "process" && r.data.trustedUsers.length === 0)
    throw new ValidationError("INVALID_CONFIG", PROCESS_TRUST);
  return r.data;
}

/** The error when `--runtime auto` falls back to the process runtime with no trusted users. */
export const processTrustError = (): ValidationError => new ValidationError("INVALID_CONFIG", PROCESS_TRUST);
