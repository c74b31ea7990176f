// Steering's configuration, compiled once before any I/O: flags > environment > defaults,
// validated with zod, durations in ms.
import { dirname, join } from "node:path";
import { z } from "zod";
import { Backoff } from "../../protocol/backoff.ts";
import { describeZodError, ValidationError } from "../../protocol/errors.ts";
import { parseNatsServers } from "../../protocol/natsConnect.ts";
import { DEFAULT_ELECTION_RETRY, type ElectionRetry } from "../../protocol/natsRetry.ts";
import { DEFAULT_TENANT_LIMITS, TenantLimits } from "../core/limits.ts";

export const SteeringConfig = z.object({
  /** One NATS server or a comma-separated list of a cluster's servers (any of them). */
  natsUrl: z.string().min(1),
  /** Seed of the `steering` identity: JetStream (streams, event log, jobs, results), stop requests, events. */
  seedFile: z.string().min(1),
  /** Seed of the `steering-api` identity: serves gt.api and gt.hb, may publish only into inboxes. */
  apiSeedFile: z.string().min(1),
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
  /**
   * TTL of the leader's lease (KV bucket gtleader; docs/architecture.md, "Standby steering"): a
   * standby takes over at most about this long after the leader stops renewing. The bucket keeps
   * the TTL it was created with; every process uses the bucket's.
   */
  leaderTtlMs: z.number().int().min(1000).default(10_000),
  /** A dataset file's multipart upload with no part for this long is aborted (its parts freed). */
  datasetUploadMaxAgeMs: z
    .number()
    .int()
    .min(60_000, "at least 60000 (a minute): an upload between two of its parts is not abandoned")
    .default(86_400_000),
  /**
   * A checkpoint (each changed active task's snapshot, checkpoint.ts) is written after this many
   * logged events, so start-up replays at most about this many (0: never; every restart then reads
   * each active task's whole log).
   */
  snapshotEvery: z.number().int().min(0).default(50_000),
  /** Replicas of the JetStream streams and KV buckets: 1 on a single server, 3 on a cluster. */
  replicas: z.number().int().min(1).max(5).default(1),
  /** How long a publish to JetStream is retried through a leader election before it fails. */
  natsRetryMs: z.number().int().min(0).max(600_000).default(15_000),
  /** Every user's limits unless the limits file overrides them (docs/steering.md). */
  limits: z
    .object({
      activeTasks: TenantLimits.shape.activeTasks.default(DEFAULT_TENANT_LIMITS.activeTasks),
      maxPoints: TenantLimits.shape.maxPoints.default(DEFAULT_TENANT_LIMITS.maxPoints),
      specBytes: TenantLimits.shape.specBytes.default(DEFAULT_TENANT_LIMITS.specBytes),
      submitsPerMinute: TenantLimits.shape.submitsPerMinute.default(DEFAULT_TENANT_LIMITS.submitsPerMinute),
      datasetBytes: TenantLimits.shape.datasetBytes.default(DEFAULT_TENANT_LIMITS.datasetBytes),
      datasetFiles: TenantLimits.shape.datasetFiles.default(DEFAULT_TENANT_LIMITS.datasetFiles),
    })
    .default(DEFAULT_TENANT_LIMITS),
  /** The admin's per-user overrides (`gridtune-steering admin set-limits`), read when it changes. */
  limitsFile: z.string().min(1).optional(),
  /**
   * The wait before a failed or lost attempt is dispatched again: baseMs·2^(failures−1), capped at
   * maxMs, less up to `jitter` of it (docs/steering.md, "Retries").
   */
  retry: z
    .object({
      baseMs: Backoff.shape.baseMs.default(20_000),
      maxMs: Backoff.shape.maxMs.default(600_000),
      jitter: Backoff.shape.jitter.default(0.5),
    })
    .prefault({})
    .refine((b) => b.maxMs >= b.baseMs, "retry.maxMs must be at least retry.baseMs"),
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
    apiSeedFile: pick("apiSeedFile", "GRIDTUNE_API_SEED_FILE"),
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
    leaderTtlMs: num(pick("leaderTtlMs", "GRIDTUNE_LEADER_TTL_MS")),
    snapshotEvery: num(pick("snapshotEvery", "GRIDTUNE_SNAPSHOT_EVERY")),
    datasetUploadMaxAgeMs: num(pick("datasetUploadMaxAgeMs", "GRIDTUNE_DATASET_UPLOAD_MAX_AGE_MS")),
    replicas: num(pick("replicas", "GRIDTUNE_NATS_REPLICAS")),
    natsRetryMs: num(pick("natsRetryMs", "GRIDTUNE_NATS_RETRY_MS")),
    limits: {
      activeTasks: num(pick("limitActiveTasks", "GRIDTUNE_LIMIT_ACTIVE_TASKS")),
      maxPoints: num(pick("limitMaxPoints", "GRIDTUNE_LIMIT_MAX_POINTS")),
      specBytes: num(pick("limitSpecBytes", "GRIDTUNE_LIMIT_SPEC_BYTES")),
      submitsPerMinute: num(pick("limitSubmitsPerMinute", "GRIDTUNE_LIMIT_SUBMITS_PER_MINUTE")),
      datasetBytes: num(pick("limitDatasetBytes", "GRIDTUNE_LIMIT_DATASET_BYTES")),
      datasetFiles: num(pick("limitDatasetFiles", "GRIDTUNE_LIMIT_DATASET_FILES")),
    },
    limitsFile: pick("limitsFile", "GRIDTUNE_LIMITS_FILE"),
    retry: {
      baseMs: num(pick("retryBaseMs", "GRIDTUNE_RETRY_BASE_MS")),
      maxMs: num(pick("retryMaxMs", "GRIDTUNE_RETRY_MAX_MS")),
      jitter: num(pick("retryJitter", "GRIDTUNE_RETRY_JITTER")),
    },
  };
  if (raw.seedFile !== undefined && raw.apiSeedFile === undefined) {
    // A deployment from before the split: name the fix rather than a bare missing field.
    throw new ValidationError(
      "INVALID_CONFIG",
      "steering now connects with two NATS identities: `steering` (--seed-file, JetStream) and " +
        "`steering-api` (--api-seed-file or GRIDTUNE_API_SEED_FILE, serves requests and may " +
        "answer only into the requesters' inboxes). Create it with `gridtune-steering admin " +
        "add-steering --dir <stack dir>` (this reloads nats-server) and pass " +
        "<stack dir>/seeds/steering-api.nk; the embedded stack does both at its next start.",
    );
  }
  const r = SteeringConfig.safeParse(raw);
  if (!r.success) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `steering configuration:\n${describeZodError(r.error)}\n` +
        `(set flags, or NATS_URL, GRIDTUNE_NATS_REPLICAS, GRIDTUNE_SEED_FILE, GRIDTUNE_API_SEED_FILE, GRIDTUNE_CA_FILE, S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`,
    );
  }
  parseNatsServers(r.data.natsUrl, "--nats-url or NATS_URL");
  if (r.data.heartbeatMs * 2 > r.data.leaseMs) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `heartbeatMs (${r.data.heartbeatMs}) must be at most half of leaseMs (${r.data.leaseMs})`,
    );
  }
  return r.data;
}

/** How JetStream publishes ride through an election: the default back-off, the configured bound. */
export function natsRetryBound(c: Pick<SteeringConfig, "natsRetryMs">): ElectionRetry {
  return { ...DEFAULT_ELECTION_RETRY, totalMs: c.natsRetryMs };
}
