// phpo kill|pause|resume TASK and phpo retry TASK [--failed].
import type { VerbContext } from "../context.ts";
import { printJson } from "../io.ts";
import { parseTaskArg, summaryLine } from "./common.ts";

export async function controlVerb(
  ctx: VerbContext,
  verb: "kill" | "pause" | "resume",
  task: string,
): Promise<number> {
  const s = await (await ctx.api()).call(verb, { taskId: parseTaskArg(task) });
  if (ctx.json) printJson(ctx.io, s);
  else ctx.io.stdout.write(summaryLine(s) + "\n");
  return 0;
}

export async function retryVerb(ctx: VerbContext, task: string, failedOnly: boolean): Promise<number> {
  const r = await (await ctx.api()).call("retry", { taskId: parseTaskArg(task), failedOnly });
  if (ctx.json) printJson(ctx.io, r);
  else {
    const what = failedOnly ? "failed" : "failed or cancelled";
    ctx.io.stdout.write(
      `requeued ${r.requeued} ${what} point${r.requeued === 1 ? "" : "s"}\n${summaryLine(r.task)}\n`,
    );
  }
  return 0;
}
