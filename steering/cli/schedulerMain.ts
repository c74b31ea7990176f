// A small entry point with only the scheduler commands (preview, replay): used by the end-to-end
// tests and the benchmark without starting anything else.
//   node --import tsx steering/cli/schedulerMain.ts replay --config sched.json < lines.jsonl
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command } from "commander";
import { reportCliError } from "../../protocol/cli.ts";
import { registerSchedulerCommands } from "./schedulerCommands.ts";

export async function schedulerMain(argv: string[]): Promise<number> {
  const program = new Command("gridtune-steering").exitOverride();
  registerSchedulerCommands(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    return reportCliError(e, "gridtune-steering");
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = await schedulerMain(process.argv);
}
