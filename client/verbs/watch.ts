// phpo watch TASK (and submit --wait): follows gt.events.<user>.<task> until the task is finished or
// killed. In a terminal one progress line is redrawn in place; otherwise one plain line per change.
// Every message carries the whole TaskSummary, so a missed message loses nothing; a slow poll of
// `show` covers the case where none comes at all (e.g. the task ended before we subscribed).
// Steering gathers changes for up to 100 ms into one message; --json still prints one line per
// change (a TaskEvent: the change, its task and the message's summary).
import { type TaskEvent, TaskEvents, TaskSummary } from "../../protocol/api.ts";
import { subjects } from "../../protocol/subjects.ts";
import type { VerbContext } from "../context.ts";
import { TaskFailedError } from "../errors.ts";
import { formatNumber, progressBar } from "../format.ts";
import { budgetNote } from "../render.ts";
import { steeringFailureLine, steeringIterationLine } from "../steeringView.ts";
import { fetchDetail, isFinal, parseTaskArg, summaryLine } from "./common.ts";

const POLL_MS = 15_000;

export function progressLine(s: TaskSummary): string {
  const c = s.counts;
  // stopped (pruned) and paused trials have reached an end too: an ASHA task is not at "1/27"
  const finished = Math.max(c.evaluated, c.done + c.failed);
  const best = s.best ? `best ${formatNumber(s.best.loss)} (p${s.best.pointId})` : "best -";
  const pruned = c.stopped || c.paused ? `, ${c.stopped} stopped, ${c.paused} paused` : "";
  const budget = budgetNote(s);
  return `task ${s.taskId} ${s.state.padEnd(8)} ${progressBar(finished, s.maxPoints)} ${finished}/${s.maxPoints} evaluated, ${c.running} running, ${c.failed} failed${pruned}, ${best}${budget ? `; ${budget}` : ""}`;
}

/** Follows the task to its end; returns the final summary. */
export async function followTask(ctx: VerbContext, taskId: string): Promise<TaskSummary> {
  const conn = await ctx.connection();
  const tty = ctx.io.stdout.isTTY === true && !ctx.json;
  let last = "";
  let printedIteration = 0;
  const show = (s: TaskSummary, event?: TaskEvent) => {
    if (ctx.json) {
      // One JSON document per line for scripts (JSON Lines).
      ctx.io.stdout.write(JSON.stringify(event ?? { taskId, kind: "state", summary: s }) + "\n");
      return;
    }
    // each steering iteration gets a line of its own, kept above the redrawn progress line
    const it = s.steering?.last;
    if (it && it.iteration > printedIteration) {
      printedIteration = it.iteration;
      const text = steeringIterationLine(taskId, it);
      ctx.io.stdout.write(tty ? `\r\x1b[2K${text}\n` : `${new Date().toISOString().slice(11, 19)} ${text}\n`);
    }
    const line = progressLine(s);
    if (tty) ctx.io.stdout.write(`\r\x1b[2K${line}`);
    else if (line !== last) ctx.io.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
    last = line;
  };

  return new Promise<TaskSummary>((resolve, reject) => {
    let done = false;
    const finish = (s: TaskSummary | null, err?: unknown) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      sub.unsubscribe();
      if (tty) ctx.io.stdout.write("\n");
      if (err !== undefined) reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
      else resolve(s as TaskSummary);
    };
    const onSummary = (s: TaskSummary, event?: TaskEvent) => {
      if (done) return;
      show(s, event);
      if (isFinal(s)) finish(s);
    };
    const sub = conn.nc.subscribe(subjects.events(conn.config.user, taskId), {
      callback: (err, msg) => {
        if (err) return finish(null, err);
        let json: unknown;
        try {
          json = msg.json();
        } catch {
          return;
        }
        const m = TaskEvents.safeParse(json);
        if (!m.success) {
          if (ctx.opts.verbose) ctx.warn(`ignored a malformed watch message on ${msg.subject}`);
          return;
        }
        const { taskId: id, changes, summary } = m.data;
        for (const change of changes) onSummary(summary, { ...change, taskId: id, summary });
      },
    });
    // Subscribed first, then the current state: no change can fall between the two.
    const poll = () =>
      fetchDetail(ctx, taskId, { points: false }).then(
        (d) => onSummary(TaskSummary.parse(d)),
        (e: unknown) => finish(null, e),
      );
    conn.nc
      .flush()
      .then(poll)
      .catch((e: unknown) => finish(null, e));
    const timer = setInterval(() => void poll(), POLL_MS);
  });
}

/** Exit status of a followed task: killed, or ended without a single good point, is a failure. */
export function checkOutcome(s: TaskSummary): void {
  if (s.state === "killed") throw new TaskFailedError(`task ${s.taskId} was killed`);
  // a pausing scheduler (PASHA) may end with no trial done: its answer is the best at its top rung
  const steering = steeringFailureLine(s);
  if (s.best === null)
    throw new TaskFailedError(
      steering
        ? `task ${s.taskId} finished without a successful evaluation: its ${steering}`
        : `task ${s.taskId} finished without a successful evaluation; see phpo show ${s.taskId} and phpo logs`,
    );
}

export async function watchVerb(ctx: VerbContext, task: string): Promise<number> {
  const taskId = parseTaskArg(task);
  const s = await followTask(ctx, taskId);
  // --json already streamed every state as a JSON line, the last one final.
  if (!ctx.json) ctx.io.stdout.write(summaryLine(s) + "\n");
  checkOutcome(s);
  return 0;
}
