// Steering's state: the tasks in memory (a fold of their logged events) and the summaries of the
// retired ones. Pure: changed only by apply() of a logged event (the Committer's stage()).
import type { TaskSummary } from "../../protocol/messages.ts";
import type { LogEvent } from "./events.ts";
import { SubmitWindow } from "./limits.ts";
import { TaskEngine } from "./task/taskEngine.ts";

export class SteeringState {
  /** The tasks in memory: the active ones (and finished ones not yet retired, see taskArchive.ts). */
  readonly engines = new Map<string, TaskEngine>();
  /** Retired tasks: their summary only; `show` and the like load them from the log on demand. */
  readonly finished = new Map<string, TaskSummary>();
  maxTaskId = 0;
  /**
   * The users' submissions of the last minute (submits_per_minute), from the task-created events
   * applied live: a restart or a rebuild does not count them again, as a restart starts afresh.
   */
  readonly submits = new SubmitWindow();

  /** Replaces a task's engine by a fold of its logged events (they start with task-created). */
  rebuild(taskId: string, events: readonly LogEvent[]): TaskEngine | undefined {
    const e = foldTask(taskId, events);
    if (!e) return undefined;
    this.engines.set(taskId, e);
    this.noteTaskId(taskId);
    return e;
  }

  apply(ev: LogEvent): TaskEngine | undefined {
    if (ev.type === "task-created") {
      if (this.engines.has(ev.taskId)) return this.engines.get(ev.taskId);
      const e = new TaskEngine(ev);
      this.engines.set(ev.taskId, e);
      this.noteTaskId(ev.taskId);
      this.submits.note(ev.user, ev.at);
      return e;
    }
    const e = this.engines.get(ev.taskId);
    e?.apply(ev);
    return e;
  }

  /** Task ids are never reused, retired tasks' included. */
  noteTaskId(taskId: string): void {
    const n = Number(taskId);
    if (Number.isSafeInteger(n)) this.maxTaskId = Math.max(this.maxTaskId, n);
  }

  /** The task leaves memory; its summary stays (list). */
  retire(summary: TaskSummary): void {
    this.engines.delete(summary.taskId);
    this.finished.set(summary.taskId, summary);
    this.noteTaskId(summary.taskId);
  }

  /** The task's owner, in memory or retired. */
  ownerOf(taskId: string): string | undefined {
    return this.engines.get(taskId)?.user ?? this.finished.get(taskId)?.user;
  }

  /** The user's running and paused tasks. */
  activeTasksOf(user: string): number {
    let n = 0;
    for (const e of this.engines.values())
      if (e.user === user && (e.state === "running" || e.state === "paused")) n++;
    return n;
  }
}

/** A task's engine from its logged events, or undefined if they do not start with its task-created. */
export function foldTask(taskId: string, events: readonly LogEvent[]): TaskEngine | undefined {
  const created = events[0];
  if (created?.type !== "task-created" || created.taskId !== taskId) return undefined;
  const e = new TaskEngine(created);
  for (const ev of events.slice(1)) e.apply(ev);
  return e;
}
