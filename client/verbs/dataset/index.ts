// `phpo dataset <verb>`: the command group (one file per verb beside this one).
import type { Command } from "commander";
import type { VerbContext } from "../../context.ts";
import { datasetGetVerb } from "./get.ts";
import { datasetLsVerb } from "./ls.ts";
import { datasetPutVerb, type PutFlags } from "./put.ts";
import { datasetRmVerb } from "./rm.ts";
import { datasetShowVerb } from "./show.ts";

export function registerDatasetVerbs(
  program: Command,
  run: (fn: (ctx: VerbContext) => Promise<number>) => Promise<void>,
): void {
  const ds = program
    .command("dataset")
    .description("your training data and published datasets: put, ls, show, rm, get (no S3 keys needed)");
  ds.command("put")
    .argument("<paths...>", "a directory (its files, recursively) or files")
    .requiredOption("--name <name>", "the dataset: user.<you>.<name>")
    .option("--multipart-threshold <MiB>", "files larger than this go in resumable parts (default 64)")
    .option("--part-size <MiB>", "size of each part (default 16, at least 5)")
    .option(
      "--state-dir <dir>",
      "where resumable uploads keep their state (default ~/.local/state/gridtune/uploads)",
    )
    .description("upload files into a dataset of yours; run it again to resume")
    .action(async (paths: string[], o: PutFlags) => run((ctx) => datasetPutVerb(ctx, paths, o)));
  ds.command("ls")
    .description("your datasets, the published ones (readable by all) and your quota")
    .option("--mine", "only your own datasets")
    .action(async (o: { mine?: boolean }) => run((ctx) => datasetLsVerb(ctx, o)));
  ds.command("show")
    .argument("<name>")
    .description("the files of a dataset: sizes and sha256")
    .action(async (name: string) => run((ctx) => datasetShowVerb(ctx, name)));
  ds.command("rm")
    .argument("<name>")
    .description("remove a dataset of yours")
    .action(async (name: string) => run((ctx) => datasetRmVerb(ctx, name)));
  ds.command("get")
    .argument("<name>")
    .option("--dest <dir>", "where to write the files", ".")
    .description("download a dataset, each file's sha256 verified")
    .action(async (name: string, o: { dest: string }) => run((ctx) => datasetGetVerb(ctx, name, o)));
}
