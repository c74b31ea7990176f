// The steering state and its one mutation path: stage(event) sends the event to the log, folds it
// into the in-memory state and hands back a promise of its durability; whatever acts on the event
// waits for that promise (group commit: many appends in flight, one serial decision queue, so the
// in-memory order is the log order). Watchers get the events once stored, a summary per batch.
import type { NatsConnection } from "@nats-io/transport-node";
import { UnavailableError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import { MAX_CHANGES_PER_MESSAGE, type TaskChange, type TaskEvents } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { TaskEngine } from "../core/task/taskEngine.ts";
import type { EventLog } from "./eventLog.ts";
import type { LogEvent } from "../core/events.ts";
import type { Decision } from "../core/decision.ts";
import type { SteeringState } from "../core/state.ts";
import type { Effects } from "./effects.ts";
import { summarize } from "../core/views.ts";

const EVENT_KIND: Partial<Record<LogEvent["type"], TaskChange["kind"]>> = {
  "points-added": "point-added",
  "job-claimed": "job-started",
  "job-progress": "progress",
  "job-finished": "point-done",
  "job-lost": "point-failed",
  "task-state": "state",
  "steering-iteration": "steering-iteration",
};

/** The events of one task as logged (the source of truth), for rebuilding its engine. */
export type TaskLogReader = (taskId: string) => Promise<LogEvent[]>;

/** An event folded into the state whose append is on its way: effects wait for `durable`. */
export interface Staged {
  engine: TaskEngine | undefined;
  /** Settles once the server has stored the event; rejects if the append failed. */
  durable: Promise<void>;
}

/** How long watch changes of a task are gathered before they go out in one message. */
const NOTIFY_EVERY_MS = 100;

export class Committer {
  private tail: Promise<unknown> = Promise.resolve();
  /** Tasks whose engine ran ahead of the log and still wait for a rebuild. */
  private readonly diverged = new Set<string>();
  /** Appends sent and not yet acknowledged (a rebuild waits for them). */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Watch changes waiting for their task's next flush. */
  private readonly pendingEvents = new Map<string, { engine: TaskEngine; changes: TaskChange[] }>();
  private notifyTimer: NodeJS.Timeout | null = null;
  /** Appends in flight by task (a task is retired only with none). */
  private readonly inflightByTask = new Map<string, number>();
  /** Called with a task's engine each time one of its events is stored (retires finished tasks). */
  onDurable: ((engine: TaskEngine) => void) | null = null;

  constructor(
    readonly state: SteeringState,
    private readonly log: Pick<EventLog, "append"> & Partial<Pick<EventLog, "resume">>,
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
   * The life of one command: `decide` runs in the serial queue on the state as it is (every
   * earlier command's events folded in), its events are staged in order (group commit: the queue
   * moves on at once), and once all of them are durable its effects run, in order, and its reply
   * is returned. If an event could not be logged no effect runs and the error goes to the caller
   * (the task is rebuilt from the log, see stage()). A `decide` that needs a read only the queue
   * makes safe (a retired task's log, read and brought back to memory by a retry) may be async:
   * nothing else is decided between its read and its decision.
   */
  async run<R>(decide: () => Decision<R> | Promise<Decision<R>>, effects: Effects): Promise<R> {
    const { decision, durable } = await this.serial(async () => {
      const decision = await decide();
      const durable = decision.events.map((ev) => this.stage(ev).durable);
      return { decision, durable };
    });
    await Promise.all(durable);
    for (const effect of decision.effects) await effects.run(effect);
    return decision.reply;
  }

  /** The tasks waiting for a rebuild from their log. */
  get divergedTasks(): ReadonlySet<string> {
    return this.diverged;
  }

  /** stage() and wait until the event is stored. Call only inside serial(). */
  async commit(ev: LogEvent): Promise<TaskEngine | undefined> {
    if (this.diverged.has(ev.taskId)) await this.rebuild(ev.taskId);
    const s = this.stage(ev);
    try {
      await s.durable;
    } catch (e) {
      // Inside the queue, so the rebuild can run at once (stage() leaves it to recover()).
      await this.rebuild(ev.taskId).catch((err: unknown) =>
        this.logger.error("rebuild failed; retried before the next commit", {
          taskId: ev.taskId,
          error: String(err),
        }),
      );
      throw e;
    }
    return s.engine;
  }

  /**
   * Group commit. Sends the append without waiting for it, folds the event into the state at
   * once and returns; `durable` settles when the server has stored the event. The caller acts on
   * the event (publishes the job, answers the agent, acks the report) only after `durable`, so
   * nothing leaves steering that the log does not hold, while the serial queue moves on and many
   * appends are in flight together. One connection keeps publish order, so a task's events are in
   * the log in the order of their stage() calls, which is the in-memory order (tasks are folded
   * independently; EventLog may group a turn's events by task). Call only inside serial().
   *
   * Divergence: if an append fails, the state holds an event that the log may not (or may: a
   * timeout after the server stored it). Neither guess is safe, so the task is marked diverged and
   * its engine is rebuilt from what the log really holds, read back from JetStream once the
   * appends in flight have settled; until then stage() refuses the task's events (reports are
   * redelivered, claims are retried, the pump tries again). The task's events staged behind the
   * lost one are refused unsent by the EventLog (their `durable` rejects as well), so the log has
   * no event stored past a hole and no effect rests on a lost event. A restart reaches the same
   * state, since it folds the same log. Effects already taken rest on events the log holds.
   */
  stage(ev: LogEvent): Staged {
    if (this.diverged.has(ev.taskId))
      throw new UnavailableError(`task ${ev.taskId} is being rebuilt from its log; try again`);
    let append: Promise<void>;
    try {
      append = this.log.append(ev);
    } catch (e) {
      // Refused before anything was sent (too large to log): nothing is applied, but a live
      // scheduler suggestion behind the event must be undone by a rebuild.
      if (this.state.engines.get(ev.taskId)?.hasUnloggedSuggestion()) this.markDiverged(ev, e);
      throw e;
    }
    this.inflight.add(append);
    this.inflightByTask.set(ev.taskId, (this.inflightByTask.get(ev.taskId) ?? 0) + 1);
    const engine = this.state.apply(ev);
    const landed = () => {
      this.inflight.delete(append);
      const left = (this.inflightByTask.get(ev.taskId) ?? 1) - 1;
      if (left > 0) this.inflightByTask.set(ev.taskId, left);
      else this.inflightByTask.delete(ev.taskId);
    };
    const durable = append.then(
      () => {
        landed();
        if (engine) {
          this.notify(engine, ev);
          this.onDurable?.(engine);
        }
      },
      (e: unknown) => {
        landed();
        this.markDiverged(ev, e);
        throw e;
      },
    );
    // Callers that only need the ordering (not the outcome) may drop `durable`: never unhandled.
    durable.catch(() => undefined);
    return { engine, durable };
  }

  private markDiverged(ev: LogEvent, e: unknown): void {
    if (this.diverged.has(ev.taskId)) return;
    this.diverged.add(ev.taskId);
    this.logger.error("an event was not logged; rebuilding the task from the log", {
      taskId: ev.taskId,
      type: ev.type,
      error: String(e),
    });
    void this.serial(() => this.recover()).catch(() => undefined);
  }

  /** Rebuilds the engines that ran ahead of the log (the dispatcher calls this before each pump). */
  async recover(): Promise<void> {
    for (const taskId of [...this.diverged])
      await this.rebuild(taskId).catch((err: unknown) =>
        this.logger.error("rebuild failed; retried on the next pump", { taskId, error: String(err) }),
      );
  }

  /** Appends of the task sent and not yet settled. */
  hasInflight(taskId: string): boolean {
    return this.inflightByTask.has(taskId);
  }

  isDiverged(taskId: string): boolean {
    return this.diverged.has(taskId);
  }

  /** Waits until every append sent so far has settled (shutdown). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Sends the watch changes gathered so far, one message per task (also called on shutdown). */
  flushNotifications(): void {
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
    this.notifyTimer = null;
    const batches = [...this.pendingEvents.values()];
    this.pendingEvents.clear();
    for (const { engine, changes } of batches) {
      // One summary per flush: summarize() walks every point, so it is not run per change.
      const summary = summarize(engine);
      for (let i = 0; i < changes.length; i += MAX_CHANGES_PER_MESSAGE) {
        const message: TaskEvents = {
          taskId: engine.taskId,
          changes: changes.slice(i, i + MAX_CHANGES_PER_MESSAGE),
          summary,
        };
        try {
          this.nc.publish(subjects.events(engine.user, engine.taskId), JSON.stringify(message));
        } catch (e) {
          this.logger.debug("could not publish a watch message", { error: String(e) });
        }
      }
    }
  }

  private async rebuild(taskId: string): Promise<void> {
    if (!this.readTask) throw new Error(`task ${taskId} diverged from the log and cannot be read back`);
    // Appends still in flight may land in the log: read it back only once they have settled.
    await this.settled();
    const events = await this.readTask(taskId);
    if (!this.state.rebuild(taskId, events)) throw new Error(`the log of task ${taskId} has no task-created`);
    // The log refused the task's appends since the failure (so none was stored past the hole);
    // the engine now matches the log again, so they are taken again.
    this.log.resume?.(taskId);
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
    const change: TaskChange = {
      at: ev.at,
      kind: ev.type === "job-finished" && ev.status !== "ok" ? "point-failed" : kind,
      pointId,
      loss: ev.type === "job-finished" ? ev.loss : null,
    };
    const pending = this.pendingEvents.get(engine.taskId) ?? { engine, changes: [] };
    pending.engine = engine;
    pending.changes.push(change);
    this.pendingEvents.set(engine.taskId, pending);
    // A task's end goes out at once (watchers stop on it); the rest is gathered for a moment.
    if (ev.type === "task-state") this.flushNotifications();
    else this.notifyTimer ??= setTimeout(() => this.flushNotifications(), NOTIFY_EVERY_MS).unref();
  }
}
