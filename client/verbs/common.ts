// Small helpers shared by the verbs.
import { ValidationError } from "../../protocol/errors.ts";
import type { TaskDetail, TaskSummary } from "../../protocol/api.ts";
import { TASK_ID_RE } from "../../protocol/names.ts";
import { showAll } from "../paging.ts";
import { formatNumber, formatValues } from "../format.ts";
import { countsLine } from "../render.ts";
import { steeringFailureLine } from "../steeringView.ts";
import type { VerbContext } from "../context.ts";

/** Checks a TASK argument before any request: a typo is a usage error (exit 2), not a remote one. */
export function parseTaskArg(task: string): string {
  const t = task.trim();
  if (!TASK_ID_RE.test(t)) {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `task id ${JSON.stringify(task)} is not valid: task ids are decimal numbers (see phpo list)`,
    );
  }
  return t;
}

export function parseIntArg(value: string, what: string, min = 0): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${what} ${JSON.stringify(value)} must be an integer ≥ ${min}`,
    );
  }
  return Number(value);
}

/** The task with all its points, fetched page by page (`points: false`: the summary part only). */
export async function fetchDetail(
  ctx: VerbContext,
  taskId: string,
  o: { points?: boolean } = {},
): Promise<TaskDetail> {
  const api = await ctx.api();
  return showAll(
    (pointsFrom, pointsLimit) => api.call("show", { taskId, pointsFrom, pointsLimit }),
    o.points ?? true,
  );
}

/** One line: `task 12 finished: 10/10 points (9 done, 1 failed, 0 running, 0 queued), 12 jobs; best loss 0.1 at point 3 (lr=0.01)`. */
export function summaryLine(s: TaskSummary): string {
  const best = s.best
    ? `best loss ${formatNumber(s.best.loss)} at point ${s.best.pointId} (${formatValues(s.best.values)})`
    : "no loss yet";
  const steering = steeringFailureLine(s);
  return `task ${s.taskId} ${s.state}: ${countsLine(s)}; ${best}${steering ? `\n${steering}` : ""}`;
}

export const isFinal = (s: TaskSummary) => s.state === "finished" || s.state === "killed";
