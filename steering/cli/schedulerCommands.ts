// The scheduler commands of gridtune-steering: `preview` and `replay`. Both drive the pure
// scheduler core; steering/main.ts registers them next to `serve`.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSchedulerConfig, type SchedulerConfig } from "../../protocol/scheduler.ts";
import { parsePreviewInput, previewOutput } from "./preview.ts";
import { runReplay } from "./replay.ts";

async function readText(file: string, option: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new ValidationError("NOT_FOUND", `${option}: cannot read ${file} (${reason})`);
  }
}

/** Reads and validates a scheduler config file; errors name the file and the field. */
export async function loadSchedulerConfigFile(file: string): Promise<SchedulerConfig> {
  const text = await readText(file, "--config");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  try {
    return parseSchedulerConfig(data, "");
  } catch (e) {
    if (e instanceof ValidationError) throw new ValidationError("INVALID_CONFIG", `${file}: ${e.message}`);
    throw e;
  }
}

export function registerSchedulerCommands(program: Command): void {
  program
    .command("preview")
    .description("show the search plan of a scheduler: brackets, rung lengths, trials, and where trials stop")
    .argument("<task.json>", "a phpo task config with a `scheduler` key, or a bare scheduler config")
    .option("--json", 'print {"brackets":[…],"counts":[…]} instead of tables')
    .action(async (file: string, opts: { json?: boolean }) => {
      const input = parsePreviewInput(await readText(file, "<task.json>"), file);
      process.stdout.write(previewOutput(input, opts.json === true));
    });
  program
    .command("replay")
    .description(
      "answer JSON lines on stdin ({op: report|schedule|fail|complete}) with the scheduler's decisions",
    )
    .requiredOption("--config <scheduler.json>", "the scheduler config")
    .action(async (opts: { config: string }) => {
      const config = await loadSchedulerConfigFile(opts.config);
      await runReplay(config, process.stdin, process.stdout);
    });
}
