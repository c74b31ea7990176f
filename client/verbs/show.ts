// phpo show TASK: state, counts, best point, segments, points, rung tables.
import { printJson } from "../io.ts";
import { renderShow } from "../render.ts";
import type { VerbContext } from "../context.ts";
import { fetchDetail, parseTaskArg } from "./common.ts";

export async function showVerb(ctx: VerbContext, task: string): Promise<number> {
  const d = await fetchDetail(ctx, parseTaskArg(task));
  if (ctx.json) printJson(ctx.io, d);
  else ctx.io.stdout.write(renderShow(d));
  return 0;
}
