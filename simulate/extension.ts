// The simulator's phpo verb, composed into phpo by bin/phpo (client/ may not import steering's
// engine; see client/extensions.ts). Registering the command is cheap: the simulator itself is
// loaded only when the verb runs.
import type { PhpoExtension } from "../client/extensions.ts";
import type { SimulateOptions } from "./verb.ts";

export const simulatorExtension: PhpoExtension = {
  register(program, run) {
    program
      .command("simulate")
      .argument("[config]", "a --loadJson file (default: the curves' own configurations, --compare)")
      .option(
        "--curves <dir>",
        `a tabular benchmark folder (LCBench: configs.csv, curves.csv), or its name in $GRIDTUNE_LCBENCH`,
      )
      .option("--from-task <task>", "the learning curves of a finished task of yours")
      .option("--workers <n>", "simulated workers (default: nParallelEvaluation, else 4)")
      .option("--seeds <n>", "simulated runs per method (default 10)")
      .option("--first-seed <n>", "seed of the first run (default 0)")
      .option(
        "--compare <methods>",
        "methods side by side: random,sha,asha-stopping,asha-promotion,hyperband,pasha",
      )
      .option("--overhead <seconds>", "start overhead charged to every job (default 0)")
      .option("--failure-rate <p>", "probability that an attempt fails (default 0)")
      .option("--plot <out.svg>", "best-so-far against worker-hours, a band over seeds")
      .description(
        "the cost of a task (worker-hours, wall time) and what the ASHA family saves, on recorded curves",
      )
      .action(async (config: string | undefined, o: SimulateOptions) =>
        run(async (ctx) => {
          const { simulateVerb } = await import("./verb.ts");
          return simulateVerb(ctx, config, o);
        }),
      );
  },
  async previewSimulate(ctx, spec, flags) {
    const { previewSimulation } = await import("./verb.ts");
    return previewSimulation(ctx, spec, flags);
  },
};
