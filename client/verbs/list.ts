// phpo list: the user's tasks, newest first.
import type { TaskSummary } from "../../protocol/api.ts";
import { pages } from "../paging.ts";
import { formatNumber, formatTime, renderTable } from "../format.ts";
import { printJson } from "../io.ts";
import { budgetNote } from "../render.ts";
import type { VerbContext } from "../context.ts";
import { steeringFailureLine } from "../steeringView.ts";

export async function listVerb(ctx: VerbContext): Promise<number> {
  const api = await ctx.api();
  // a page of tasks at a time: a user's thousands of summaries would not fit in one reply
  const tasks: TaskSummary[] = [];
  for await (const page of pages((from) => api.call("list", { from }))) tasks.push(...page.tasks);
  const sorted = [...tasks].sort((a, b) => Number(b.taskId) - Number(a.taskId));
  if (ctx.json) {
    printJson(ctx.io, { tasks: sorted });
    return 0;
  }
  if (sorted.length === 0) {
    ctx.io.stdout.write("no tasks yet: submit one with phpo --loadJson config.json\n");
    return 0;
  }
  const rows = sorted.map((t) => [
    t.taskId,
    budgetNote(t) ? `${t.state}, ${budgetNote(t)}` : t.state,
    t.outDS,
    `${Math.max(t.counts.evaluated, t.counts.done + t.counts.failed)}/${t.maxPoints}`,
    t.counts.failed,
    t.counts.running,
    t.best ? formatNumber(t.best.loss) : null,
    formatTime(t.createdAt),
  ]);
  ctx.io.stdout.write(
    renderTable(["task", "state", "outDS", "evaluated", "failed", "running", "best loss", "created"], rows, {
      align: ["r", "l", "l", "r", "r", "r", "r", "l"],
    }),
  );
  // a task whose steering program failed says so under the table, with where to read why
  for (const t of sorted) {
    const line = steeringFailureLine(t);
    if (line) ctx.io.stdout.write(`task ${t.taskId}: ${line}\n`);
  }
  return 0;
}
