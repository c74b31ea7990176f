// The steering program's iterations (tasks with steeringExec) as phpo prints them: show's table,
// the failure line of show, list and watch, and watch's line per iteration.
import { unreachable } from "../protocol/errors.ts";
import type { SteeringIterationView, TaskDetail, TaskSummary } from "../protocol/api.ts";
import { formatDuration, formatTime, renderTable } from "./format.ts";

function outcomeOf(i: SteeringIterationView): string {
  switch (i.outcome) {
    case "points":
      return "points";
    case "empty":
      return "[] (done)";
    case "failed":
      return i.retryAt === null ? "FAILED" : "failed, retried";
    default:
      return unreachable(i.outcome, "steering outcome");
  }
}

/** "steering program failed: iteration 3 failed: …; its output: phpo logs 12 --steering --iteration 3". */
export function steeringFailureLine(s: TaskSummary): string | null {
  const f = s.steering?.failure;
  if (!f) return null;
  const last = s.steering?.last;
  const it = last && last.outcome === "failed" ? ` --iteration ${last.iteration}` : "";
  return `steering program failed, generation ended: ${f}; its output: phpo logs ${s.taskId} --steering${it}`;
}

/** One line per iteration for phpo watch (and a failure's first line of reason). */
export function steeringIterationLine(taskId: string, i: SteeringIterationView): string {
  const seg = i.segment === null ? "" : ` (segment ${i.segment})`;
  const exit = i.exitCode === null ? "" : `, exit ${i.exitCode}`;
  const head = `task ${taskId} steering iteration ${i.iteration}${seg}: ${outcomeOf(i)}, ${i.added} points added${exit}`;
  if (i.outcome !== "failed") return head;
  const why = (i.reason ?? "no reason given").split("\n")[0]!;
  const retry = i.retryAt === null ? "" : `; runs again at ${formatTime(i.retryAt)}`;
  return `${head}: ${why}${retry} (phpo logs ${taskId} --steering --iteration ${i.iteration})`;
}

/** show's section: every iteration in a table, then each failure's reason in full. */
export function renderSteering(d: TaskDetail): string[] {
  const its = d.steeringIterations;
  if (its === undefined) return [];
  const s = d.steering;
  const out = [
    "",
    `steering program: ${s?.iterations ?? its.length} iterations, ${s?.failed ?? 0} failed` +
      (s && s.iterations > its.length ? ` (the last ${its.length} shown)` : ""),
  ];
  if (its.length === 0) return [...out, "  none yet"];
  out.push(
    renderTable(
      ["iteration", "segment", "started", "took", "outcome", "added", "exit", "log"],
      its.map((i) => [
        i.iteration,
        i.segment,
        formatTime(i.startedAt),
        formatDuration(i.endedAt - i.startedAt),
        outcomeOf(i),
        i.added,
        i.exitCode,
        i.hasLog ? "yes" : "no",
      ]),
      { indent: "  " },
    ).trimEnd(),
  );
  for (const i of its.filter((x) => x.outcome === "failed"))
    out.push(`  iteration ${i.iteration}: ${i.reason ?? "no reason given"}`);
  const line = steeringFailureLine(d);
  if (line) out.push("", line);
  else if (its.some((i) => i.hasLog))
    out.push(`  (output: phpo logs ${d.taskId} --steering [--iteration N])`);
  return out;
}
