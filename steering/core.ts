// The steering state and its one mutation path: commit(event) appends the event to the log (and
// waits for the server's ack), then folds it into the in-memory state, then tells watchers. All
// commits run one at a time, so the in-memory order is the log order.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../protocol/log.ts";
import type { TaskEvent } from "../protocol/messages.ts";
import { subjects } from "../protocol/subjects.ts";
import { TaskEngine } from "./engine/taskEngine.ts";
import type { EventLog } from "./eventLog.ts";
import type { LogEvent } from "./events.ts";
import { summarize } from "./views.ts";

export class SteeringState {
  readonly engines = new Map<string, TaskEngine>();
  maxTaskId = 0;

  /** Replaces a task's engine by a fold of its logged events (they start with task-created). */
  rebuild(taskId: string, events: readonly LogEvent[]): TaskEngine | undefined {
    const created = events[0];
    if (created?.type !== "task-created" || created.taskId !== taskId) return undefined;
    const e = new TaskEngine(created);
    for (const ev of events.slice(1)) e.apply(ev);
    this.engines.set(taskId, e);
    return e;
  }

  apply(ev: LogEvent): TaskEngine | undefined {
    if (ev.type === "task-created") {
      if (this.engines.has(ev.taskId)) return this.engines.get(ev.taskId);
      const e = new TaskEngine(ev);
      this.engines.set(ev.taskId, e);
      this.maxTaskId = Math.max(this.maxTaskId, Number(ev.taskId));
      return e;
    }
    const e = this.engines.get(ev.taskId);
    e?.apply(ev);
    return e;
  }
}

const EVENT_KIND: Partial<Record<LogEvent["type"], TaskEvent["kind"]>> = {
  "points-added": "point-added",
  "job-claimed": "job-started",
  "job-progress": "progress",
  "job-finished": "point-done",
  "job-lost": "point-failed",
  "task-state": "state",
};

/** The events of one task as logged (the source of truth), for rebuilding its engine. */
export type TaskLogReader = (taskId: string) => Promise<LogEvent[]>;

export class Committer {
  private tail: Promise<unknown> = Promise.resolve();
  /** Tasks whose engine ran ahead of the log and still wait for a rebuild. */
  private readonly diverged = new Set<string>();

  constructor(
    readonly state: SteeringState,
    private readonly log: Pick<EventLog, "append">,
    private readonly nc: Pick<NatsConnection, "publish">,
    private readonly logger: Logger,
    private readonly readTask: TaskLogReader | null = null,
  ) {}

  /** Runs fn after every earlier serial section; errors go to the caller, not to later sections. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Append + apply + notify. Call only inside serial().
   *
   * Divergence: TaskEngine.proposeTrial() runs the scheduler's suggest() live, before its event is
   * logged (the scheduler cannot be copied or rolled back). If the append then fails, the engine
   * holds a scheduler state that no log explains, and the append may even have reached the stream
   * (a timeout after the server stored it). Neither guessing is safe, so the engine is rebuilt
   * from what the log really holds, read back from JetStream; until that succeeds nothing is
   * committed for the task (commit throws: reports are redelivered, the pump retries). A restart
   * reaches the same state, since it folds the same log.
   */
  async commit(ev: LogEvent): Promise<TaskEngine | undefined> {
    if (this.diverged.has(ev.taskId)) await this.rebuild(ev.taskId);
    try {
      await this.log.append(ev);
    } catch (e) {
      if (this.state.engines.get(ev.taskId)?.hasUnloggedSuggestion()) {
        this.diverged.add(ev.taskId);
        this.logger.error("a scheduler suggestion was not logged; rebuilding the task from the log", {
          taskId: ev.taskId,
          error: String(e),
        });
        await this.rebuild(ev.taskId).catch((err: unknown) =>
          this.logger.error("rebuild failed; retried before the next commit", {
            taskId: ev.taskId,
            error: String(err),
          }),
        );
      }
      throw e;
    }
    const engine = this.state.apply(ev);
    if (engine) this.notify(engine, ev);
    return engine;
  }

  /** Rebuilds the engines that ran ahead of the log (the dispatcher calls this before each pump). */
  async recover(): Promise<void> {
    for (const taskId of [...this.diverged]) await this.rebuild(taskId);
  }

  isDiverged(taskId: string): boolean {
    return this.diverged.has(taskId);
  }

  private async rebuild(taskId: string): Promise<void> {
    if (!this.readTask) throw new Error(`task ${taskId} diverged from the log and cannot be read back`);
    const events = await this.readTask(taskId);
    if (!this.state.rebuild(taskId, events)) throw new Error(`the log of task ${taskId} has no task-created`);
    this.diverged.delete(taskId);
    this.logger.info("task rebuilt from the log", { taskId, events: events.length });
  }

  private notify(engine: TaskEngine, ev: LogEvent): void {
    const kind = EVENT_KIND[ev.type];
    if (!kind) return;
    const pointId =
      ev.type === "points-added"
        ? (ev.points[0]?.pointId ?? null)
        : "jobId" in ev
          ? (engine.pointOfJob(ev.jobId)?.pointId ?? null)
          : null;
    const event: TaskEvent = {
      taskId: engine.taskId,
      at: ev.at,
      kind: ev.type === "job-finished" && ev.status !== "ok" ? "point-failed" : kind,
      pointId,
      loss: ev.type === "job-finished" ? ev.loss : null,
      summary: summarize(engine),
    };
    try {
      this.nc.publish(subjects.events(engine.user, engine.taskId), JSON.stringify(event));
    } catch (e) {
      this.logger.debug("could not publish a watch event", { error: String(e) });
    }
  }
}
