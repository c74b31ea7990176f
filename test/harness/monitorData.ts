// A generated ASHA task for the monitor's unit tests and benchmark: `trials` points, each with
// `reports` reports (resource 1…reports), its attempts and sites, served through MemoryBackend,
// the monitor's backend interface with everything in memory (the same server code path as NATS).
import { GridtuneError } from "../../protocol/errors.ts";
import type { ArtifactKind } from "../../protocol/messages.ts";
import type { DownloadItem, PointView, TaskDetail, TaskEvents, TaskSummary } from "../../protocol/api.ts";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";
import type { ControlVerb, MonitorBackend } from "../../client/monitor/backend.ts";

/** Deterministic pseudo-random in [0, 1) from two integers. */
const hash01 = (a: number, b: number) =>
  (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b + b * 0x27d4eb2d) >>> 0) / 2 ** 32;

export function generatedTask(o: {
  trials: number;
  reports: number;
  taskId?: string;
  createdAt?: number;
}): TaskDetail {
  const createdAt = o.createdAt ?? 1_700_000_000_000;
  const taskId = o.taskId ?? "1";
  const levels = [1, 3, 9].filter((l) => l < o.reports);
  const spec = parseTaskSpec({
    outDS: "user.demo.generated/",
    evaluationContainer: "gridtune/python:1",
    evaluationExec: "python3 train.py",
    searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 6 } } },
    maxPoints: o.trials,
    nParallelEvaluation: 64,
    scheduler: { type: "asha-stopping", max_t: o.reports, grace_period: 1, reduction_factor: 3 },
  });
  const points: PointView[] = [];
  for (let i = 0; i < o.trials; i++) {
    const q = hash01(i, 1);
    const site = `site-${i % 4}`;
    const agent = `${site}-agent-${i % 3}`;
    const start = createdAt + i * 500;
    const reports = Array.from({ length: o.reports }, (_, k) => {
      const r = k + 1;
      const loss = q + 1 / r + hash01(i, r) / 50;
      return {
        resource: r,
        loss,
        metrics: { loss, accuracy: 1 - loss / 3 },
        job: 1,
        attempt: 1,
        at: start + r * 100,
        site,
      };
    });
    const failed = i % 97 === 13;
    const end = start + o.reports * 100 + 50;
    points.push({
      pointId: i,
      segment: null,
      values: { x: 6 * q },
      state: failed ? "failed" : "done",
      loss: failed ? null : (reports[reports.length - 1]?.loss ?? null),
      attempts: 1,
      resource: o.reports,
      reports,
      history: [
        {
          job: 1,
          attempt: 1,
          site,
          agent,
          status: failed ? "failed" : "ok",
          loss: failed ? null : (reports[reports.length - 1]?.loss ?? null),
          startedAt: start,
          finishedAt: end,
          error: failed ? "EVALUATION_FAILED: the payload exited with status 3" : null,
        },
      ],
      site,
      agent,
      error: failed ? "EVALUATION_FAILED: the payload exited with status 3" : null,
      metricsKeys: [`metrics/${i}`],
      logKeys: [`log/${i}`],
      checkpointKey: null,
      trial: `t${i}`,
      target: o.reports,
      jobs: 1,
    });
  }
  const done = points.filter((p) => p.state === "done");
  const best = done.reduce<PointView | null>(
    (b, p) => (b === null || (p.loss ?? 0) < (b.loss ?? 0) ? p : b),
    null,
  );
  return {
    taskId,
    user: "demo",
    outDS: spec.outDS,
    state: "finished",
    createdAt,
    finishedAt: createdAt + o.trials * 500 + o.reports * 100,
    maxPoints: o.trials,
    counts: {
      points: o.trials,
      done: done.length,
      failed: o.trials - done.length,
      running: 0,
      queued: 0,
      jobs: o.trials,
      stopped: 0,
      paused: 0,
      cancelled: 0,
      evaluated: o.trials,
      pointJobs: o.trials,
      budgetSpent: 0,
    },
    best: best ? { pointId: best.pointId, loss: best.loss ?? 0, values: best.values } : null,
    spec,
    points,
    pointsFrom: 0,
    pointsNext: null,
    segments: [{ name: null, points: o.trials, best: best?.loss ?? null }],
    rungs: levels.map((level) => {
      const values = points
        .map((p) => p.reports.find((r) => r.resource === level)?.loss)
        .filter((v): v is number => v !== undefined)
        .sort((a, b) => a - b);
      return { segment: null, level, values: values.slice(0, 2000), count: values.length };
    }),
  };
}

export const summaryOf = (d: TaskDetail): TaskSummary => {
  const { taskId, user, outDS, state, createdAt, finishedAt, maxPoints, counts, best } = d;
  return { taskId, user, outDS, state, createdAt, finishedAt, maxPoints, counts, best };
};

/** The monitor backend over tasks in memory; records the actions and lets a test push events. */
export class MemoryBackend implements MonitorBackend {
  readonly actions: { verb: string; taskId: string }[] = [];
  private listeners = new Set<(e: TaskEvents) => void>();
  logs = new Map<string, string>();

  constructor(
    readonly user: string,
    readonly tasks: Map<string, TaskDetail>,
  ) {}

  private get(taskId: string): TaskDetail {
    const d = this.tasks.get(taskId);
    if (!d) throw new GridtuneError("NOT_FOUND", `task ${taskId} not found`);
    return d;
  }

  list(): Promise<TaskSummary[]> {
    return Promise.resolve([...this.tasks.values()].map(summaryOf));
  }
  show(taskId: string): Promise<TaskDetail> {
    return Promise.resolve(this.get(taskId));
  }
  control(verb: ControlVerb, taskId: string): Promise<TaskSummary> {
    this.actions.push({ verb, taskId });
    const d = this.get(taskId);
    if (verb === "kill") d.state = "killed";
    return Promise.resolve(summaryOf(d));
  }
  retry(taskId: string): Promise<{ task: TaskSummary; requeued: number }> {
    this.actions.push({ verb: "retry", taskId });
    return Promise.resolve({ task: summaryOf(this.get(taskId)), requeued: 0 });
  }
  artifacts(taskId: string, pointId: number, kinds: ArtifactKind[]): Promise<DownloadItem[]> {
    const log = this.logs.get(`${taskId}/${pointId}`);
    if (!kinds.includes("log") || log === undefined) return Promise.resolve([]);
    return Promise.resolve([
      { pointId, attempt: 1, kind: "log", name: `p${pointId}.log`, url: `memory:${taskId}/${pointId}` },
    ]);
  }
  logText(item: DownloadItem): Promise<string> {
    return Promise.resolve(this.logs.get(item.url.slice("memory:".length)) ?? "");
  }
  open(): Promise<Response> {
    return Promise.resolve(new Response("bytes"));
  }
  subscribe(on: (e: TaskEvents) => void): () => void {
    this.listeners.add(on);
    return () => this.listeners.delete(on);
  }
  emit(e: TaskEvents): void {
    for (const l of this.listeners) l(e);
  }
}
