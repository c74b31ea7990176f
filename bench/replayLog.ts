// Generates the events of busy tasks for bench/replay.ts by driving real TaskEngines the way the
// service does (engine decisions in, log events out, each event folded before the next decision),
// so the log holds what real tasks produce and its replay exercises the fold for real. A simulated
// agent runs the jobs round robin, one resource step per turn, as test/unit/fixtures/schedulerSim.ts
// does. No task is allowed to finish: a busy deployment's tasks are active, and active tasks are
// the ones start-up reads in full (finished ones come from the finished index).
import { parseTaskSpec, type TaskSpecInput } from "../protocol/taskConfig.ts";
import type { LogEvent, LogEventOf } from "../steering/core/events.ts";
import { compileTask } from "../steering/core/task/compiledTask.ts";
import { TaskEngine } from "../steering/core/task/taskEngine.ts";

type Ref = { jobId: string; attempt: number };

/** The shapes of task the bench generates. */
export type TaskShape = "scheduler" | "sampler";

/** Progress reports of a job of a task without a scheduler (it has no resource target). */
const SAMPLER_STEPS = 3;

const base: TaskSpecInput = {
  outDS: "user.alice.replay",
  evaluationContainer: "busybox:1.36",
  evaluationExec: "python train.py",
  searchSpace: {
    x: { method: "uniform", dimension: { low: 0, high: 1 } },
    n: { method: "uniformint", dimension: { low: 1, high: 1000 } },
    act: { method: "categorical", dimension: { categories: ["relu", "tanh", "gelu"] } },
  },
};

/**
 * `scheduler`: ASHA (stopping rule) over trials of up to 9 epochs, 64 in parallel: trial-suggested,
 * job-dispatched, job-claimed, job-progress per epoch, job-finished (ok or stopped).
 * `sampler`: the random sampler in batches of 8 points, 8 in parallel: points-added, then per
 * point job-dispatched, job-claimed, 3 job-progress, job-finished.
 */
function specOf(shape: TaskShape, maxPoints: number): TaskSpecInput {
  switch (shape) {
    case "scheduler":
      return {
        ...base,
        maxPoints,
        nParallelEvaluation: 64,
        scheduler: { type: "asha-stopping", max_t: 9, grace_period: 1, reduction_factor: 3 } as never,
      };
    case "sampler":
      return { ...base, maxPoints, nParallelEvaluation: 8, nPointsPerIteration: 8 };
    default:
      return shape satisfies never;
  }
}

export class TaskSim {
  readonly engine: TaskEngine;
  private readonly running: Array<{ ref: Ref; step: number }> = [];
  private turn = 0;
  private clock: number;

  constructor(
    readonly taskId: string,
    readonly shape: TaskShape,
    /** Points the task may create: large enough that the event budget ends first. */
    maxPoints: number,
    start: number,
    /** Receives every event, in order, after the engine folded it. */
    private readonly emit: (ev: LogEvent) => void,
  ) {
    this.clock = start;
    const created: LogEventOf<"task-created"> = {
      type: "task-created",
      taskId,
      at: this.clock,
      user: "alice",
      task: compileTask(parseTaskSpec(specOf(shape, maxPoints))),
      seed: Number(taskId),
    };
    this.engine = new TaskEngine(created);
    this.emit(created);
  }

  private apply(ev: LogEvent): void {
    this.engine.apply(ev);
    this.emit(ev);
  }

  private at(): number {
    return (this.clock += 7);
  }

  /** One turn: what the dispatcher's pump would do, then one step of one running job. */
  turnOnce(): void {
    this.pump();
    this.step();
  }

  private pump(): void {
    for (let guard = 0; guard < 10_000; guard++) {
      const j = this.engine.nextDispatchable();
      if (j) {
        const ref = { jobId: j.jobId, attempt: j.attempt };
        this.apply({ type: "job-dispatched", taskId: this.taskId, at: this.at(), ...ref, site: "site-a" });
        this.apply({
          type: "job-claimed",
          taskId: this.taskId,
          at: this.at(),
          ...ref,
          site: "site-a",
          agent: `agent-${guard % 16}`,
        });
        this.running.push({ ref, step: 0 });
        continue;
      }
      const next =
        this.shape === "scheduler"
          ? this.engine.proposeTrial(this.at())
          : this.engine.proposeSampling(this.at());
      if (!next) return;
      this.apply(next);
    }
    throw new Error(`task ${this.taskId}: the pump never settled`);
  }

  private step(): void {
    if (this.running.length === 0) throw new Error(`task ${this.taskId}: nothing runs (budget too small?)`);
    const k = this.turn++ % this.running.length;
    const r = this.running[k]!;
    const p = this.engine.pointOfJob(r.ref.jobId)!;
    const x = Number(p.values.x);
    const target = p.job.target ?? SAMPLER_STEPS;
    const loss = (step: number) => (x - 0.5) ** 2 + 1 / Math.max(step, 1);
    if (p.job.stop) return this.finish(k, "stopped", null);
    if (r.step >= target) return this.finish(k, "ok", loss(r.step));
    r.step++;
    this.apply({
      type: "job-progress",
      taskId: this.taskId,
      at: this.at(),
      ...r.ref,
      resource: r.step,
      metrics: { loss: loss(r.step), accuracy: 1 - loss(r.step) / 2 },
    });
  }

  private finish(k: number, status: "ok" | "stopped", loss: number | null): void {
    const [r] = this.running.splice(k, 1);
    const startedAt = this.clock;
    const at = this.at();
    this.apply({
      type: "job-finished",
      taskId: this.taskId,
      at,
      ...r!.ref,
      site: "site-a",
      agent: "agent-1",
      status,
      loss,
      metrics: loss === null ? {} : { loss },
      resource: r!.step,
      error: null,
      artifacts: [],
      missing: [],
      output: null,
      startedAt,
      finishedAt: at,
      exitCode: status === "ok" ? 0 : null,
      failureClass: null,
    });
  }
}
