// phpo status TASK: the short summary of show (one line; --json: the TaskSummary).
import { TaskSummary } from "../../protocol/api.ts";
import { printJson } from "../io.ts";
import type { VerbContext } from "../context.ts";
import { fetchDetail, parseTaskArg, summaryLine } from "./common.ts";

export async function statusVerb(ctx: VerbContext, task: string): Promise<number> {
  const d = await fetchDetail(ctx, parseTaskArg(task), { points: false });
  // The detail is a TaskSummary plus more; parsing strips the rest.
  const summary = TaskSummary.parse(d);
  if (ctx.json) printJson(ctx.io, summary);
  else ctx.io.stdout.write(summaryLine(summary) + "\n");
  return 0;
}
