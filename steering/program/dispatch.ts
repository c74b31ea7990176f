// The steering-program iterations of tasks with steeringExec, started by the dispatcher's
// start-program-iteration effect (decided in core/decide/dispatch.ts): at most one per segment at
// a time, outside the commit queue (they never block reports or dispatch), each recorded as a
// steering-iteration event with its output stored in S3, a failure retried after a back-off
// (engine/steeringIterations.ts). Only the log counts: an iteration in flight at a crash is run
// again after the restart, and one whose points are logged is never re-run (the engine's
// generated count moved on).
import type { Logger } from "../../protocol/log.ts";
import type { Committer } from "../shell/committer.ts";
import type { ProgramResultCommand, ProgramResultReply } from "../core/decide/program.ts";
import type { TaskEngine } from "../core/task/taskEngine.ts";
import { SteeringProgram } from "./iteration.ts";
import type { SteeringRunner } from "./runner.ts";
import { placeSandbox } from "./sandbox.ts";
import { keys, type Storage } from "../shell/storage.ts";

/** The most of a failure's reason an event holds (the stored output has all of it). */
const STEERING_REASON_CHARS = 8192;

export interface SteeringDispatchDeps {
  c: Committer;
  storage: Storage;
  /** Decides an iteration's end and commits it (Committer.run): its reply once the events are durable. */
  decide: (command: ProgramResultCommand) => Promise<ProgramResultReply>;
  logger: Logger;
  runner: SteeringRunner;
  /** Aborted when steering stops: runs in flight are killed, their results not committed. */
  signal: AbortSignal;
  /** The time now (the shell's Clock port). */
  now: () => number;
  kick: () => void;
}

export class SteeringDispatch {
  /** Iterations running now, by "taskId/segment". */
  private readonly runs = new Map<string, Promise<void>>();

  constructor(private readonly d: SteeringDispatchDeps) {}

  /** Settles once every iteration in flight has ended (after the abort: their containers removed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.runs.values()]);
  }

  /**
   * Starts the segment's due steering iteration unless one runs already (never awaited here). The
   * pump decided it due; it is looked up again here, as the state is now: one whose result was
   * committed meanwhile, or held by its retry back-off, is left to the next pump's decision.
   */
  start(taskId: string, segment: number): void {
    const key = `${taskId}/${segment}`;
    if (this.runs.has(key) || this.d.signal.aborted) return;
    const e = this.d.c.state.engines.get(taskId);
    const due = e?.steeringDue().find((d) => d.segment === segment);
    if (!e || !due || due.notBefore > this.d.now()) return;
    const run = this.runSteering(e.taskId, e.task, due).finally(() => {
      this.runs.delete(key);
      if (!this.d.signal.aborted) this.d.kick();
    });
    this.runs.set(key, run);
  }

  /**
   * One iteration: run it, store its output (S3, under the task), then commit the
   * steering-iteration event and its points together. A failure is retried after a back-off
   * (steeringIterations.ts); the last one, or one no retry can mend, ends generation for the
   * segment, with the reason in the log for phpo show, list and watch.
   */
  private async runSteering(
    taskId: string,
    task: TaskEngine["task"],
    due: ReturnType<TaskEngine["steeringDue"]>[number],
  ): Promise<void> {
    const log = { taskId, segment: due.segment, n: due.n, generated: due.generated, failures: due.failures };
    const startedAt = this.d.now();
    this.d.logger.info("steering iteration started", log);
    const program = new SteeringProgram(this.d.runner, {
      task,
      segmentName: due.segmentName,
      space: due.space,
      signal: this.d.signal,
      sandbox: (dir) => placeSandbox(this.d.storage, task.spec.sandboxKey, dir),
    });
    const r = await program.run(due.n, due.history);
    if (this.d.signal.aborted) return;
    let points = r.points;
    if (points.length > due.n) {
      this.d.logger.warn("steering returned more points than asked; the extra ones are dropped", {
        ...log,
        returned: points.length,
      });
      points = points.slice(0, due.n);
    }
    const endedAt = this.d.now();
    const key = keys.steeringLog(taskId, due.segment, due.generated, due.failures);
    let logKey: string | null = key;
    let reason = r.error ? r.error.message.slice(0, STEERING_REASON_CHARS) : null;
    try {
      await this.d.storage.put(key, r.output);
    } catch (err) {
      logKey = null;
      this.d.logger.warn("could not store a steering iteration's output", { ...log, error: String(err) });
      if (reason !== null) reason += ` (its output could not be stored: ${String(err)})`;
    }
    try {
      // what the iteration's end becomes is decided in core/decide/program.ts
      const d = await this.d.decide({
        type: "program-result",
        taskId,
        segment: due.segment,
        generated: due.generated,
        failures: due.failures,
        startedAt,
        endedAt,
        points,
        exitCode: r.exitCode,
        error: r.error ? { code: r.error.code, message: r.error.message } : null,
        reason,
        key,
        logKey,
      });
      if (d.dropped) this.d.logger.info("steering result dropped: the task ended meanwhile", log);
      else if (r.error)
        this.d.logger.warn(
          d.retryAt === null
            ? "steering iteration failed: generation ends for the segment"
            : "steering iteration failed: it runs again after a back-off",
          {
            ...log,
            ...(d.retryAt === null ? {} : { retryInMs: d.retryAt - endedAt }),
            reason: r.error.message,
          },
        );
      else if (points.length === 0)
        this.d.logger.info(
          "steering returned [] (nothing more to offer): generation ends for the segment",
          log,
        );
      if (!d.dropped)
        this.d.logger.info("steering iteration committed", {
          ...log,
          added: d.added,
          exhausted: d.exhausted,
          ms: this.d.now() - startedAt,
        });
    } catch (err) {
      // not logged: the next pump finds the iteration still due and runs it again
      this.d.logger.error("could not commit a steering result; the iteration will run again", {
        ...log,
        error: String(err),
      });
    }
  }
}
