// gridtune-steering: the steering service (serve), plus the scheduler commands (preview, replay)
// and the admin verbs (sites, agents, users).
import { Command, Option } from "commander";
import { reportCliError, waitForShutdown } from "../protocol/cli.ts";
import { createLogger } from "../protocol/log.ts";
import { GRIDTUNE_VERSION } from "../protocol/version.ts";
import { registerAdminCommands } from "./cli/adminCommands.ts";
import { registerSchedulerCommands } from "./cli/schedulerCommands.ts";
import { compileSteeringConfig } from "./shell/config.ts";
import { StandbySteering } from "./shell/standby.ts";

export async function main(argv: string[]): Promise<number> {
  const program = new Command("gridtune-steering")
    .description("gridtune steering service: tasks, sampling, ASHA pruning, durable results")
    .version(GRIDTUNE_VERSION)
    .exitOverride();
  program
    .command("serve", { isDefault: true })
    .description("run the steering service against NATS and S3 (flags override the environment)")
    .option("--nats-url <urls>", "NATS server, or a cluster's servers separated by commas (env NATS_URL)")
    .option(
      "--replicas <n>",
      "replicas of the streams and KV buckets: 1 on one server, 3 on a cluster (env GRIDTUNE_NATS_REPLICAS)",
    )
    .option(
      "--nats-retry-ms <ms>",
      "how long a JetStream publish is retried through a leader election (env GRIDTUNE_NATS_RETRY_MS, default 15000)",
    )
    .option("--seed-file <file>", "nkey seed of the steering identity, mode 0600 (env GRIDTUNE_SEED_FILE)")
    .option(
      "--api-seed-file <file>",
      "nkey seed of the steering-api identity that serves requests, mode 0600 (env GRIDTUNE_API_SEED_FILE)",
    )
    .option("--ca-file <file>", "CA that signed the NATS server certificate (env GRIDTUNE_CA_FILE)")
    .option("--cert-file <file>", "client certificate for mutual TLS (env GRIDTUNE_CERT_FILE)")
    .option("--key-file <file>", "client key for mutual TLS (env GRIDTUNE_KEY_FILE)")
    .option(
      "--s3-endpoint <url>",
      "S3 endpoint (env S3_ENDPOINT); keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    )
    .option(
      "--sites-file <file>",
      "site policy written by admin (env GRIDTUNE_SITES_FILE; default: sites.json beside the seeds directory)",
    )
    .option("--s3-bucket <name>", "bucket (env GRIDTUNE_BUCKET, default gridtune)")
    .option("--lease-ms <ms>", "lease of a running attempt (default 30000)")
    .option("--heartbeat-ms <ms>", "agent heartbeat interval (default 5000)")
    .addOption(
      new Option("--dispatch-timeout-ms <ms>", "claim deadline of a dispatched attempt (default 300000)"),
    )
    .option(
      "--leader-ttl-ms <ms>",
      "TTL of the leader's lease: a standby takes over this long after the leader stops (default 10000; env GRIDTUNE_LEADER_TTL_MS)",
    )
    .option(
      "--snapshot-every <events>",
      "write a checkpoint (snapshots of the changed active tasks) after this many logged events, so a restart replays at most about this many; 0: never (default 50000; env GRIDTUNE_SNAPSHOT_EVERY)",
    )
    .option(
      "--limits-file <file>",
      "per-user limit overrides written by `admin set-limits` (env GRIDTUNE_LIMITS_FILE)",
    )
    .action(async (o: Record<string, string | undefined>) => {
      const config = compileSteeringConfig({
        natsUrl: o.natsUrl,
        replicas: o.replicas,
        natsRetryMs: o.natsRetryMs,
        seedFile: o.seedFile,
        apiSeedFile: o.apiSeedFile,
        caFile: o.caFile,
        certFile: o.certFile,
        keyFile: o.keyFile,
        sitesFile: o.sitesFile,
        s3Endpoint: o.s3Endpoint,
        s3Bucket: o.s3Bucket,
        leaseMs: o.leaseMs,
        heartbeatMs: o.heartbeatMs,
        dispatchTimeoutMs: o.dispatchTimeoutMs,
        limitsFile: o.limitsFile,
        leaderTtlMs: o.leaderTtlMs,
        snapshotEvery: o.snapshotEvery,
      });
      const logger = createLogger("steering");
      // leads while it holds the lease; stands by (and takes over) while another process leads
      const service = new StandbySteering(config, logger);
      const stopped = waitForShutdown();
      await service.start();
      const sig = await stopped;
      logger.info("shutting down", { signal: sig });
      await service.close();
    });
  registerSchedulerCommands(program);
  registerAdminCommands(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    return reportCliError(e, "gridtune-steering", argv.includes("-v") || argv.includes("--verbose"));
  }
}
