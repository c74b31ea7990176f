// A discrete-event simulator that drives steering's real task engine (TaskEngine, with its
// schedulers and samplers) with W simulated workers and a simulated clock. Every state change is
// the log event the service would store (trial-suggested, job-dispatched, job-progress, ...), so
// the decisions are exactly those steering takes; only the agents and the payload are simulated:
// a job trains its point's curve from where it resumes (its checkpoint) to its target, and is
// charged the curve's own time between the two, plus a start overhead.
import type { PointRec } from "../core/task/records.ts";
import { TaskEngine } from "../core/task/taskEngine.ts";
import { compileTask } from "../core/task/compiledTask.ts";
import type { LogEvent, LogEventOf } from "../core/events.ts";
import { ValidationError } from "../../protocol/errors.ts";
import { Rng } from "../core/rng.ts";
import type { TaskSpec } from "../../protocol/taskConfig.ts";
import { reportLevels, timeAt, valueAt, type Curve, type CurveSource } from "./curves.ts";

export interface SimOptions {
  spec: TaskSpec;
  source: CurveSource;
  workers: number;
  /** Seeds the task (sampler, bracket draws) and the failure injection. */
  seed: number;
  /** Seconds a job spends before it trains (container start, downloads), charged to its worker. */
  overhead?: number;
  /** Probability that an attempt fails, at a uniformly drawn moment of its run. */
  failureRate?: number;
  /** Stop once the best full-fidelity value is ≤ target (the search "reached" it). */
  target?: number;
}

/** The best full-fidelity value so far, when it improved: simulated wall time and worker-seconds. */
export interface TracePoint {
  wall: number;
  compute: number;
  best: number;
}

export interface SimResult {
  /** Worker-seconds spent (every attempt's run, overhead included). */
  compute: number;
  /** Simulated seconds from the start until the task ended (or reached the target). */
  wall: number;
  /** compute / (workers × wall). */
  utilisation: number;
  trials: number;
  jobs: number;
  failures: number;
  /** The best value trained to full fidelity (null: none was). */
  best: number | null;
  /**
   * The configuration the search would return (best at the highest level reached) and its
   * full-fidelity value looked up in its curve, as the tabular-benchmark literature scores it.
   */
  incumbent: { curve: number; level: number; full: number } | null;
  trace: TracePoint[];
  /** When the best full-fidelity value first reached options.target (null: never). */
  reached: { wall: number; compute: number } | null;
  /** Log events the engine applied. */
  events: number;
}

interface Running {
  ref: { jobId: string; attempt: number };
  point: PointRec;
  curve: Curve;
  start: number;
  /** Seconds from the start to each report (levels[i]). */
  at: number[];
  levels: number[];
  next: number;
  target: number;
  /** Failure moment (injected), or Infinity. */
  failAt: number;
}

const SITE = "sim";

export function simulate(o: SimOptions): SimResult {
  const taskId = "sim";
  const full =
    o.spec.scheduler && "max_t" in o.spec.scheduler ? o.spec.scheduler.max_t : o.source.maxResource;
  if (full > o.source.maxResource)
    throw new ValidationError(
      "INVALID_CONFIG",
      `scheduler.max_t: ${full} is beyond the last level of the curves of ${o.source.name} ` +
        `(${o.source.maxResource}); the simulator cannot charge training the curves do not have: ` +
        `set max_t ≤ ${o.source.maxResource}`,
    );
  const overhead = o.overhead ?? 0;
  const rng = new Rng((o.seed ^ 0x5f3759df) >>> 0);
  const engine = new TaskEngine({
    type: "task-created",
    taskId,
    at: 0,
    user: "sim",
    task: compileTask(o.spec),
    seed: o.seed,
  });
  const workers: Array<Running | null> = Array.from({ length: o.workers }, () => null);
  const r: SimResult = {
    compute: 0,
    wall: 0,
    utilisation: 0,
    trials: 0,
    jobs: 0,
    failures: 0,
    best: null,
    incumbent: null,
    trace: [],
    reached: null,
    events: 1,
  };
  let now = 0;
  let done = 0; // worker-seconds of attempts that ended
  let incumbentValue = Number.POSITIVE_INFINITY;

  const apply = (ev: LogEvent) => {
    engine.apply(ev);
    r.events++;
  };
  const computeNow = () => workers.reduce((a, w) => a + (w ? now - w.start : 0), done);
  const release = (i: number, w: Running) => {
    done += now - w.start;
    workers[i] = null;
  };
  const finished = (
    w: Running,
    status: "ok" | "failed" | "stopped",
    loss: number | null,
    resource: number | null,
  ) => {
    const ev: LogEventOf<"job-finished"> = {
      type: "job-finished",
      taskId,
      at: now,
      ...w.ref,
      site: SITE,
      agent: SITE,
      status,
      loss,
      metrics: loss === null ? {} : { loss },
      resource,
      error:
        status === "failed"
          ? { code: "EVALUATION_FAILED", message: "simulated failure", retryable: false }
          : null,
      artifacts: [],
      missing: [],
      output: null,
      startedAt: w.start,
      finishedAt: now,
      exitCode: status === "ok" ? 0 : status === "failed" ? 1 : null,
      failureClass: status === "failed" ? ("payload" as const) : null,
    };
    apply(ev);
  };

  const start = (i: number, jobId: string, attempt: number) => {
    const ref = { jobId, attempt };
    apply({ type: "job-dispatched", taskId, at: now, ...ref, site: SITE });
    apply({ type: "job-claimed", taskId, at: now, ...ref, site: SITE, agent: `w${i}` });
    const point = engine.pointOfJob(jobId) as PointRec;
    r.jobs++;
    const curve = o.source.curveOf(point.values);
    // a promoted trial (or a retry after a checkpoint) resumes: it pays only the levels it adds
    const from = point.checkpointKey !== null ? (point.checkpointResource ?? 0) : 0;
    const target = point.job.target ?? o.source.maxResource;
    const levels = reportLevels(curve, from, target);
    const base = timeAt(curve, from);
    const at = levels.map((l) => overhead + Math.max(0, timeAt(curve, l) - base));
    const fails = (o.failureRate ?? 0) > 0 && rng.next() < (o.failureRate ?? 0);
    const failAt = fails ? now + rng.next() * (at.at(-1) ?? 0) : Number.POSITIVE_INFINITY;
    workers[i] = { ref, point, curve, start: now, at, levels, next: 0, target, failAt };
  };

  const pump = () => {
    for (;;) {
      const free = workers.indexOf(null);
      if (free < 0) return;
      const job = engine.nextDispatchable();
      if (job) {
        start(free, job.jobId, job.attempt);
        continue;
      }
      const ev = engine.proposeTrial(now) ?? engine.proposeSampling(now);
      if (!ev) return;
      apply(ev);
    }
  };

  const checkpoint = (w: Running, level: number) =>
    apply({
      type: "job-checkpoint",
      taskId,
      at: now,
      ...w.ref,
      artifact: { kind: "checkpoint", key: `sim/${w.point.pointId}/${level}`, size: 0, etag: "" },
      resource: level,
    });

  const report = (i: number, w: Running) => {
    const level = w.levels[w.next] as number;
    const value = valueAt(w.curve, level);
    w.next++;
    // the configuration the search would return: the best at the highest level reached so far
    const top = r.incumbent?.level ?? -1;
    if (level > top || (level === top && value < incumbentValue)) {
      incumbentValue = value;
      r.incumbent = { curve: w.curve.id, level, full: valueAt(w.curve, full) };
    }
    if (level >= full && (r.best === null || value < r.best)) {
      r.best = value;
      const compute = computeNow();
      r.trace.push({ wall: now, compute, best: value });
      if (o.target !== undefined && value <= o.target && r.reached === null)
        r.reached = { wall: now, compute };
    }
    if (level < w.target) {
      apply({ type: "job-progress", taskId, at: now, ...w.ref, resource: level, metrics: { loss: value } });
      // steering asked the agent to stop (pruned or paused before the target): it stops here, and
      // a paused trial leaves its checkpoint behind, as an agent does, to be resumed from
      if (w.point.job.stop === null) return;
      if (w.point.job.stop === "paused") checkpoint(w, level);
      finished(w, "stopped", value, level);
      return release(i, w);
    }
    checkpoint(w, level);
    finished(w, "ok", value, level);
    release(i, w);
  };

  pump();
  for (;;) {
    // the next event: the earliest report or failure of any worker (ties: lowest worker)
    let which = -1;
    let when = Number.POSITIVE_INFINITY;
    workers.forEach((w, i) => {
      if (!w) return;
      const t = Math.min(w.failAt, w.start + (w.at[w.next] ?? 0));
      if (t < when) {
        when = t;
        which = i;
      }
    });
    const w = workers[which];
    if (!w) break;
    now = when;
    if (w.failAt <= now) {
      r.failures++;
      finished(w, "failed", null, w.next > 0 ? (w.levels[w.next - 1] ?? null) : null);
      release(which, w);
    } else report(which, w);
    if (r.reached) break;
    pump();
  }
  r.trials = engine.points.size;
  r.compute = computeNow();
  r.wall = now;
  r.utilisation = now > 0 ? r.compute / (o.workers * now) : 0;
  return r;
}
