// gridtune-stack: the embedded single-machine stack. Starts nats-server (JetStream, TLS, nkeys),
// a local S3 server, the steering service and N agents; prints the endpoints and how to point
// phpo at them; stops everything cleanly on Ctrl-C.
import { Command } from "commander";
import { reportCliError, waitForShutdown } from "../protocol/cli.ts";
import { ValidationError } from "../protocol/errors.ts";
import { createLogger } from "../protocol/log.ts";
import { GRIDTUNE_VERSION } from "../protocol/version.ts";
import { join } from "node:path";
import { DEFAULT_STACK_DIR, startEmbeddedStack, startService } from "./embedded.ts";
import { dockerAnswers, LOCAL_IMAGES } from "./images.ts";

export async function main(argv: string[]): Promise<number> {
  const program = new Command("gridtune-stack")
    .description("run the embedded single-machine gridtune stack (NATS, S3, steering, agents)")
    .version(GRIDTUNE_VERSION)
    .exitOverride()
    .option("--dir <dir>", "state directory (env GRIDTUNE_HOME)", DEFAULT_STACK_DIR)
    .option("--agents <n>", "evaluator agents to start", "1")
    .option("--slots <n>", "slots per agent", "2")
    .option("--runtime <kind>", "auto | docker | process", "auto")
    .option("--user <name>", "the phpo user identity to create", "demo")
    .option("--nats-port <port>", "NATS client port (0: the previous start's port when free, else any)", "0")
    .option(
      "--nats-cluster <n>",
      "run a local NATS cluster of n nodes (3: streams in 3 replicas) instead of one server",
    )
    .option("--json", "print the endpoints as JSON")
    .option(
      "--steering-standby",
      "start a second steering process that stands by and takes over when the leader stops (docs/architecture.md)",
    )
    .action(
      async (o: {
        dir: string;
        agents: string;
        slots: string;
        runtime: string;
        user: string;
        natsPort: string;
        natsCluster?: string;
        json?: boolean;
        steeringStandby?: boolean;
      }) => {
        const logger = createLogger("stack");
        const clusterNodes = o.natsCluster === undefined ? undefined : Number(o.natsCluster);
        if (
          clusterNodes !== undefined &&
          !(Number.isInteger(clusterNodes) && clusterNodes >= 3 && clusterNodes <= 9)
        )
          throw new ValidationError(
            "INVALID_ARGUMENT",
            `--nats-cluster ${o.natsCluster}: give the number of nodes, 3 to 9 (3 keeps every stream in 3 replicas and survives one node's loss)`,
          );
        const runtime =
          o.runtime === "auto"
            ? (await dockerAnswers())
              ? "docker"
              : "process"
            : (o.runtime as "docker" | "process");
        const stack = await startEmbeddedStack({
          dir: o.dir,
          agents: Number(o.agents),
          slotsPerAgent: Number(o.slots),
          runtime,
          user: o.user,
          natsPort: Number(o.natsPort),
          ...(clusterNodes ? { natsCluster: clusterNodes } : {}),
          stablePorts: true,
          allowedImages: runtime === "docker" ? LOCAL_IMAGES : undefined,
          logger,
        });
        // the leader holds the lease already, so this one logs "standing by" and waits
        const standby = o.steeringStandby
          ? await startService(
              "steering standby",
              "gridtune-steering",
              ["serve"],
              stack.steeringEnv,
              join(stack.dir, "logs", "steering-standby.log"),
              /standing by|steering running/,
            ).catch(async (e: unknown) => {
              await stack.stop();
              throw e;
            })
          : null;
        const info = {
          nats: stack.nats.url,
          s3: stack.s3.endpoint,
          runtime,
          stateDir: stack.dir,
          clientConfig: stack.clientFile,
          logs: `${stack.dir}/logs`,
        };
        if (o.json) process.stdout.write(JSON.stringify(info) + "\n");
        else {
          process.stdout.write(
            `gridtune stack running (TLS + nkey identities; Ctrl-C stops it)\n` +
              `  NATS     ${info.nats}${stack.cluster ? ` (a cluster of ${stack.cluster.nodes.length} nodes, streams in ${stack.steeringEnv.GRIDTUNE_NATS_REPLICAS} replicas)` : ""}\n  S3       ${info.s3}\n  runtime  ${runtime}, ${o.agents} agent(s) × ${o.slots} slot(s) on site ${stack.site}\n` +
              `  logs     ${info.logs}${standby ? " (a standby steering: steering-standby.log)" : ""}\n` +
              `phpo finds this stack by itself (${info.clientConfig}); from another shell:\n` +
              `  cd examples/quickstart && ../../bin/phpo --loadJson ../quickstart.json --wait\n`,
          );
        }
        await waitForShutdown();
        process.stdout.write("stopping…\n");
        await standby?.stop();
        await stack.stop();
      },
    );
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    return reportCliError(e, "gridtune-stack");
  }
}
