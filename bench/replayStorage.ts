// The S3 server the replay bench stores checkpoints on, as its measuring processes reach it: the
// endpoint and key pair travel in the environment (never on a command line).
import type { StorageConfig } from "../steering/shell/storage.ts";

export function benchStorageConfig(): StorageConfig {
  const endpoint = process.env.GT_BENCH_S3_ENDPOINT;
  const accessKeyId = process.env.GT_BENCH_S3_ACCESS_KEY_ID;
  const secretAccessKey = process.env.GT_BENCH_S3_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey)
    throw new Error(
      "GT_BENCH_S3_ENDPOINT, GT_BENCH_S3_ACCESS_KEY_ID and GT_BENCH_S3_SECRET_ACCESS_KEY must be set",
    );
  return {
    endpoint,
    region: "us-east-1",
    bucket: "gridtune",
    accessKeyId,
    secretAccessKey,
    presignTtlSeconds: 900,
  };
}
