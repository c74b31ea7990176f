// gridtune-evaluator: an agent on a site node.
import { Command } from "commander";
import { reportCliError, waitForShutdown } from "../protocol/cli.ts";
import { DirectoryError, makeDirs } from "../protocol/dirs.ts";
import { RuntimeError } from "../protocol/errors.ts";
import { createLogger, type Logger } from "../protocol/log.ts";
import { GRIDTUNE_VERSION } from "../protocol/version.ts";
import { Agent } from "./agent.ts";
import {
  agentInstance,
  compileAgentConfig,
  processTrustError,
  type AgentConfig,
  type AgentFlags,
} from "./config.ts";
import { DockerRuntime } from "./runtime/docker.ts";
import { ProcessRuntime } from "./runtime/process.ts";
import type { Runtime } from "./runtime/types.ts";

/**
 * Makes the work directory once, at start (protocol/dirs.ts): made lazily by the first job with
 * Node's recursive mkdir, a --work-dir under /proc would hang every job in the thread pool.
 */
function makeWorkRoot(dir: string): void {
  try {
    makeDirs(dir);
  } catch (e) {
    if (!(e instanceof DirectoryError)) throw e;
    throw new DirectoryError(
      `--work-dir ${dir}: ${e.message}; choose a directory on a local disk the agent can write (see docs/evaluator.md)`,
      { cause: e },
    );
  }
}

async function makeRuntime(c: AgentConfig, logger: Logger): Promise<Runtime> {
  if (c.runtime === "process") return new ProcessRuntime();
  const docker = new DockerRuntime({
    allowedImages: c.allowAnyImage ? undefined : c.allowedImages,
    labels: { "org.gridtune.agent": `${c.site}.${c.agent}` },
    instance: agentInstance(c),
  });
  try {
    await docker.init();
    return docker;
  } catch (e) {
    if (c.runtime === "docker" || !(e instanceof RuntimeError) || e.code !== "RUNTIME_UNAVAILABLE") throw e;
    await docker.close();
    if (c.trustedUsers.length === 0) throw processTrustError();
    logger.warn("no Docker daemon answers; using the process runtime", { error: e.message });
    return new ProcessRuntime();
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command("gridtune-evaluator")
    .description("gridtune evaluator agent: pulls evaluation jobs for its site and runs them")
    .version(GRIDTUNE_VERSION)
    .exitOverride()
    .option("--site <name>", "site of this agent (env GRIDTUNE_SITE)")
    .option(
      "--name <agent>",
      "agent name, as registered with gridtune-steering admin (env GRIDTUNE_AGENT; default: host name)",
    )
    .option("--slots <n>", "concurrent CPU evaluations (default 1)")
    .option("--gpus <ids>", "GPU ids to use, one slot per GPU (or --gpus-per-job K per slot)")
    .option("--gpus-per-job <k>", "GPUs per evaluation (default 1)")
    .option("--runtime <kind>", "auto | docker | process (default auto)")
    .option("--nats-url <urls>", "NATS server, or a cluster's servers separated by commas (env NATS_URL)")
    .option("--seed-file <file>", "nkey seed of this agent, mode 0600 (env GRIDTUNE_SEED_FILE)")
    .option("--ca-file <file>", "CA of the NATS server (env GRIDTUNE_CA_FILE)")
    .option("--cert-file <file>", "client certificate for mutual TLS")
    .option("--key-file <file>", "client key for mutual TLS")
    .option("--work-dir <dir>", "where job working directories are made")
    .option("--allowed-images <list>", "comma-separated image allow-list, enforced by image ID")
    .option("--allow-any-image", "run any image (not recommended)")
    .option(
      "--trusted-users <list>",
      "users whose jobs the process runtime may run, e.g. alice,bob (env GRIDTUNE_TRUSTED_USERS; required with it)",
    )
    .option("--allow-network", "let jobs that ask for it use the bridge network")
    .option("--max-memory-mb <mb>", "per-job memory cap (default 16384)")
    .option("--max-cpus <n>", "per-job CPU cap (default 64)")
    .option("--pids-limit <n>", "per-job process cap (default 1024)")
    .option("--max-log-mb <mb>", "log kept per job (default 20)")
    .option("--max-wall-clock-minutes <m>", "per-job wall clock cap (default 7 days)")
    .action(async (f: AgentFlags) => {
      const config = compileAgentConfig(f);
      makeWorkRoot(config.workRoot);
      const logger = createLogger(`agent:${config.site}/${config.agent}`);
      const runtime = await makeRuntime(config, logger);
      const agent = new Agent({ ...config, runtime, logger });
      const stopped = waitForShutdown();
      await agent.start();
      const sig = await stopped;
      logger.info("draining", { signal: sig, running: agent.runningJobs().length });
      await agent.close(config.policy.stopGraceMs + 20_000);
      await runtime.close();
    });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    return reportCliError(e, "gridtune-evaluator", argv.includes("--verbose"));
  }
}
