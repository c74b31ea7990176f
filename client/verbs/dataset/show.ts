// phpo dataset show NAME: the files of a dataset the user may read, with sizes and sha256.
import { DatasetName, type DatasetFile } from "../../../protocol/datasets.ts";
import { pages } from "../../paging.ts";
import { ValidationError } from "../../../protocol/errors.ts";
import type { VerbContext } from "../../context.ts";
import { renderTable } from "../../format.ts";
import { printJson } from "../../io.ts";

/** A NAME argument, checked before any request. */
export function parseDatasetArg(name: string): string {
  const p = DatasetName.safeParse(name);
  if (!p.success)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `dataset ${JSON.stringify(name)}: ${p.error.issues[0]?.message ?? "invalid"}`,
    );
  return p.data;
}

export async function datasetShowVerb(ctx: VerbContext, name: string): Promise<number> {
  const api = await ctx.api();
  const dataset = parseDatasetArg(name);
  const files: DatasetFile[] = [];
  for await (const page of pages((from) => api.call("datasetShow", { name: dataset, from })))
    files.push(...page.files);
  const r = { name: dataset, files };
  if (ctx.json) {
    printJson(ctx.io, r);
    return 0;
  }
  ctx.io.stdout.write(
    renderTable(
      ["file", "bytes", "sha256"],
      r.files.map((f) => [f.path, f.size, f.sha256 ?? "(not recorded)"]),
      { align: ["l", "r", "l"] },
    ),
  );
  const bytes = r.files.reduce((n, f) => n + f.size, 0);
  ctx.io.stdout.write(`dataset ${r.name}: ${r.files.length} files, ${bytes} bytes\n`);
  return 0;
}
