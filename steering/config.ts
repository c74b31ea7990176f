// Steering's configuration, compiled once before any I/O: flags > environment > defaults,
// validated with zod, durations in ms.
import { dirname, join } from "node:path";
import { z } from "zod";
import { describeZodError, ValidationError } from "../protocol/errors.ts";

export const SteeringConfig = z.object({
  natsUrl: z.string().min(1),
  seedFile: z.string().min(1),
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /**
   * The site policy (sites.json, written by `gridtune-steering admin`): who may send work to which
   * site. Default: in the admin directory that holds the seed file (`<dir>/seeds/steering.nk`).
   */
  sitesFile: z.string().min(1),
  s3: z.object({
    endpoint: z.url(),
    region: z.string().default("us-east-1"),
    bucket: z.string().min(3, "bucket names need 3+ characters"),
    accessKeyId: z.string().min(1),
    secretAccessKey: z.string().min(1),
    presignTtlSeconds: z.number().int().min(60).max(604800).default(900),
  }),
  /** A running attempt whose agent has not renewed it for this long is lost. */
  leaseMs: z.number().int().positive().default(30_000),
  heartbeatMs: z.number().int().positive().default(5_000),
  /** A dispatched attempt nobody claims in this time is lost (its site may be gone). */
  dispatchTimeoutMs: z.number().int().positive().default(300_000),
  /** Replicas of the JetStream streams (1 on a single server). */
  replicas: z.number().int().min(1).max(5).default(1),
});
export type SteeringConfig = z.infer<typeof SteeringConfig>;

export function compileSteeringConfig(
  flags: Partial<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): SteeringConfig {
  const pick = (flag: string, ...vars: string[]) =>
    flags[flag] ?? vars.map((v) => env[v]).find((x) => x !== undefined);
  const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
  const seedFile = pick("seedFile", "GRIDTUNE_SEED_FILE");
  const raw = {
    natsUrl: pick("natsUrl", "NATS_URL") ?? "tls://127.0.0.1:4222",
    seedFile,
    sitesFile:
      pick("sitesFile", "GRIDTUNE_SITES_FILE") ??
      (seedFile ? join(dirname(dirname(seedFile)), "sites.json") : undefined),
    caFile: pick("caFile", "GRIDTUNE_CA_FILE"),
    certFile: pick("certFile", "GRIDTUNE_CERT_FILE"),
    keyFile: pick("keyFile", "GRIDTUNE_KEY_FILE"),
    s3: {
      endpoint: pick("s3Endpoint", "S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
      region: pick("s3Region", "AWS_REGION", "AWS_DEFAULT_REGION"),
      bucket: pick("s3Bucket", "GRIDTUNE_BUCKET") ?? "gridtune",
      accessKeyId: pick("s3AccessKeyId", "AWS_ACCESS_KEY_ID"),
      secretAccessKey: pick("s3SecretAccessKey", "AWS_SECRET_ACCESS_KEY"),
      presignTtlSeconds: num(pick("presignTtl", "GRIDTUNE_PRESIGN_TTL_S")),
    },
    leaseMs: num(pick("leaseMs", "GRIDTUNE_LEASE_MS")),
    heartbeatMs: num(pick("heartbeatMs", "GRIDTUNE_HEARTBEAT_MS")),
    dispatchTimeoutMs: num(pick("dispatchTimeoutMs", "GRIDTUNE_DISPATCH_TIMEOUT_MS")),
  };
  const r = SteeringConfig.safeParse(raw);
  if (!r.success) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `steering configuration:\n${describeZodError(r.error)}\n` +
        `(set flags, or NATS_URL, GRIDTUNE_SEED_FILE, GRIDTUNE_CA_FILE, S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`,
    );
  }
  if (r.data.heartbeatMs * 2 > r.data.leaseMs) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `heartbeatMs (${r.data.heartbeatMs}) must be at most half of leaseMs (${r.data.leaseMs})`,
    );
  }
  return r.data;
}
