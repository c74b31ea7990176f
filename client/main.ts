// The phpo command line. bin/phpo runs `process.exit(await main(process.argv))`; tests call
// main() in-process with their own output streams. Every error goes through handleError.
import { Command } from "commander";
import { GRIDTUNE_VERSION } from "../protocol/version.ts";
import { VerbContext } from "./context.ts";
import { handleError } from "./errors.ts";
import type { Env } from "./connection.ts";
import type { PhpoExtension, SimulateFlags } from "./extensions.ts";
import { type GlobalOptions, type Io, processIo } from "./io.ts";
import { registerPhpoOptions } from "./options.ts";
import { controlVerb, retryVerb } from "./verbs/control.ts";
import { registerDatasetVerbs } from "./verbs/dataset/index.ts";
import { downloadVerb } from "./verbs/download.ts";
import { listVerb } from "./verbs/list.ts";
import { logsVerb } from "./verbs/logs.ts";
import { type MonitorFlags, monitorVerb } from "./verbs/monitor.ts";
import { steeringLogsVerb } from "./verbs/steeringLogs.ts";
import { plotVerb } from "./verbs/plot.ts";
import { previewVerb } from "./verbs/preview.ts";
import { resultsVerb } from "./verbs/results.ts";
import { showVerb } from "./verbs/show.ts";
import { statusVerb } from "./verbs/status.ts";
import { submitVerb } from "./verbs/submit.ts";
import { watchVerb } from "./verbs/watch.ts";

/** Program-level flags that take a value (needed to find the verb in argv). */
const GLOBAL_WITH_VALUE = new Set([
  "--nats-url",
  "--user",
  "--seed-file",
  "--ca-file",
  "--config",
  "--timeout",
]);

/**
 * PanDA style: `phpo --loadJson cfg.json` (no verb) submits. Inserts "submit" when the first word
 * that is not a program-level flag is an option other than --help/--version.
 */
export function withDefaultVerb(args: readonly string[]): string[] {
  let i = 0;
  while (i < args.length) {
    const a = args[i] as string;
    if (GLOBAL_WITH_VALUE.has(a)) i += 2;
    else if (
      ["-v", "--verbose", "--json"].includes(a) ||
      [...GLOBAL_WITH_VALUE].some((g) => a.startsWith(`${g}=`))
    )
      i += 1;
    else break;
  }
  const first = args[i];
  if (first === undefined || !first.startsWith("-") || ["-h", "--help", "-V", "--version"].includes(first))
    return [...args];
  return ["submit", ...args];
}

function buildProgram(
  io: Io,
  env: Env,
  run: (fn: (ctx: VerbContext) => Promise<number>) => Promise<void>,
  extensions: readonly PhpoExtension[],
): Command {
  const program = new Command("phpo")
    .description(
      "gridtune's PanDA-compatible hyperparameter optimisation client (phpo --loadJson config.json submits a task)",
    )
    .version(GRIDTUNE_VERSION, "-V, --version", "print the version and exit")
    .option("-v, --verbose", "stack traces and NATS details")
    .option("--json", "machine-readable output on stdout")
    .option(
      "--nats-url <urls>",
      "NATS server of the gridtune service, or its cluster's servers separated by commas (env NATS_URL)",
    )
    .option("--user <name>", "your gridtune user name (env GRIDTUNE_USER)")
    .option("--seed-file <file>", "your NATS nkey seed file (env GRIDTUNE_SEED_FILE)")
    .option("--ca-file <file>", "CA of the NATS server certificate (env GRIDTUNE_CA_FILE)")
    .option(
      "--config <file>",
      "connection config file (env GRIDTUNE_CONFIG; default ~/.config/gridtune/config.json)",
    )
    .option("--timeout <seconds>", "deadline of each request to steering (default 10)")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // handleError prints commander's errors, once, with the exit code we document.
      outputError: () => undefined,
    });
  const submit = program
    .command("submit")
    .description("submit a task (the default verb: phpo --loadJson cfg.json)")
    .action(async (_o: unknown, cmd: Command) => run((ctx) => submitVerb(ctx, cmd.opts())));
  registerPhpoOptions(submit);

  program
    .command("list")
    .description("your tasks")
    .action(async () => run((ctx) => listVerb(ctx)));
  program
    .command("show")
    .argument("<task>")
    .description("state, counts, best point, segments, points and rung tables")
    .action(async (task: string) => run((ctx) => showVerb(ctx, task)));
  program
    .command("status")
    .argument("<task>")
    .description("a one-line summary of the task")
    .action(async (task: string) => run((ctx) => statusVerb(ctx, task)));
  program
    .command("watch")
    .argument("<task>")
    .description("follow the task's progress until it ends")
    .action(async (task: string) => run((ctx) => watchVerb(ctx, task)));
  program
    .command("logs")
    .argument("<task>")
    .argument("[point]", "the evaluation's point (not with --steering)")
    .option("--job <n>", "job of the point: 1, then one per ASHA promotion (default: the last)")
    .option("--attempt <n>", "attempt within the job (default: the job's last)")
    .option("--steering", "the steering program's output instead (tasks with steeringExec)")
    .option("--iteration <n>", "with --steering: which iteration (default: the last; phpo show lists them)")
    .description("print the container log of one evaluation, or of a steering iteration")
    .action(
      async (
        task: string,
        point: string | undefined,
        o: { job?: string; attempt?: string; steering?: boolean; iteration?: string },
      ) =>
        run((ctx) =>
          o.steering || o.iteration !== undefined
            ? steeringLogsVerb(ctx, task, point, o)
            : logsVerb(ctx, task, point, o.attempt, o.job),
        ),
    );
  for (const verb of ["kill", "pause", "resume"] as const) {
    program
      .command(verb)
      .argument("<task>")
      .description(`${verb} the task`)
      .action(async (task: string) => run((ctx) => controlVerb(ctx, verb, task)));
  }
  program
    .command("retry")
    .argument("<task>")
    .option("--failed", "requeue failed points only (default: failed and cancelled)")
    .description("requeue the task's failed (and cancelled) points")
    .action(async (task: string, o: { failed?: boolean }) =>
      run((ctx) => retryVerb(ctx, task, o.failed === true)),
    );
  program
    .command("download")
    .argument("<task>")
    .option("--metrics", "metrics tarballs (the default)")
    .option("--checkpoints", "checkpoint tarballs")
    .option("--logs", "container logs")
    .option("--dest <dir>", "where to write the files", ".")
    .description("download the task's artifacts, named as PanDA names them")
    .action(
      async (task: string, o: { metrics?: boolean; checkpoints?: boolean; logs?: boolean; dest: string }) =>
        run((ctx) => downloadVerb(ctx, task, o)),
    );
  program
    .command("results")
    .argument("<task>")
    .option("--csv", "CSV (the default)")
    .description(
      "one row per report (point, hyperparameters, resource, loss, attempts, site) and per final loss",
    )
    .action(async (task: string) => run((ctx) => resultsVerb(ctx, task)));
  program
    .command("preview")
    .argument("<config>", "a --loadJson file")
    .option("--simulate", "add the simulated cost (worker-hours, wall time) on recorded learning curves")
    .option(
      "--curves <dir>",
      "with --simulate: a tabular benchmark folder (LCBench: configs.csv, curves.csv)",
    )
    .option("--from-task <task>", "with --simulate: the learning curves of a finished task of yours")
    .option("--workers <n>", "with --simulate: simulated workers (default: nParallelEvaluation)")
    .option("--seeds <n>", "with --simulate: simulated runs (default 5)")
    .description("the plan of the configured scheduler, without submitting")
    .action(async (config: string, o: SimulateFlags & { simulate?: boolean }) =>
      run(async (ctx) => previewVerb(ctx, config, o, extensions)),
    );
  registerDatasetVerbs(program, run);
  for (const e of extensions) e.register(program, run);
  program
    .command("plot")
    .argument("<task>")
    .requiredOption("--out <file.svg>", "SVG file to write")
    .description("learning curves and best-so-far as an SVG")
    .action(async (task: string, o: { out: string }) => run((ctx) => plotVerb(ctx, task, o.out)));
  program
    .command("monitor")
    .argument("[task...]", "only these tasks (default: all your tasks)")
    .option("--port <n>", "port to serve on (default 0: a free one)")
    .option("--host <address>", "address to serve on (default 127.0.0.1; another one is warned about)")
    .description("a live web view of your tasks on this machine; prints its URL (with an access token)")
    .action(async (tasks: string[], o: MonitorFlags) => run((ctx) => monitorVerb(ctx, tasks, o)));
  return program;
}

/** Runs phpo with argv as process.argv gives it (node, script, ...args); returns the exit code. */
export async function main(
  argv: readonly string[],
  io: Io = processIo(),
  env: Env = process.env,
  extensions: readonly PhpoExtension[] = [],
): Promise<number> {
  const args = withDefaultVerb(argv.slice(2));
  let code = 0;
  let ctx: VerbContext | undefined;
  const program = buildProgram(
    io,
    env,
    async (fn) => {
      ctx = new VerbContext(io, program.opts<GlobalOptions>(), env);
      code = await fn(ctx);
    },
    extensions,
  );
  try {
    if (args.length === 0) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync(args, { from: "user" });
    return code;
  } catch (err) {
    return handleError(err, io, {
      verbose:
        program.opts<GlobalOptions>().verbose === true || args.includes("-v") || args.includes("--verbose"),
    });
  } finally {
    await ctx?.close();
  }
}
