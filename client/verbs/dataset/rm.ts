// phpo dataset rm NAME: removes one of the user's own datasets (every file and its checksums).
import type { VerbContext } from "../../context.ts";
import { printJson } from "../../io.ts";
import { parseDatasetArg } from "./show.ts";

export async function datasetRmVerb(ctx: VerbContext, name: string): Promise<number> {
  const api = await ctx.api();
  const r = await api.call("datasetRemove", { name: parseDatasetArg(name) });
  if (ctx.json) printJson(ctx.io, r);
  else ctx.io.stdout.write(`dataset ${r.name} removed (${r.files} files)\n`);
  return 0;
}
