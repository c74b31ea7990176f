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

export class Committer {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly state: SteeringState,
    private readonly log: EventLog,
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
  ) {}

  /** Runs fn after every earlier serial section; errors go to the caller, not to later sections. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Append + apply + notify. Call only inside serial(). */
  async commit(ev: LogEvent): Promise<TaskEngine | undefined> {
    await this.log.append(ev);
    const engine = this.state.apply(ev);
    if (engine) this.notify(engine, ev);
    return engine;
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
