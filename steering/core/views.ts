// Read models for the client API, derived from a task engine.
import { unreachable } from "../../protocol/errors.ts";
import {
  RUNG_VALUES_SHOWN,
  STEERING_ITERATIONS_SHOWN,
  type PointView,
  type TaskDetail,
  type TaskSummary,
} from "../../protocol/api.ts";
import { view as steeringView } from "./task/steeringIterations.ts";
import { TaskEngine, type PointRec } from "./task/taskEngine.ts";

/** The resource level a point's loss belongs to: the judged report's when the scheduler stopped it. */
function lossResource(p: PointRec): number | null {
  if (p.job.stop !== null && p.job.stopResource !== null && p.state !== "done") return p.job.stopResource;
  return p.resource ?? p.job.target;
}

/**
 * The best point of one segment. Without a scheduler, the done point with the smallest loss. With
 * one, the best at the highest resource level any trial reached with a result (done, or paused at
 * a rung): losses at different levels do not compare, and a pausing scheduler (PASHA, promotion
 * ASHA) may end with no trial trained to max_t, its answer being the best at its final top rung.
 */
function bestOf(points: readonly PointRec[], scheduled: boolean): PointRec | null {
  const withResult = points.filter(
    (p) => (p.state === "done" || (scheduled && p.state === "paused")) && p.loss !== null,
  );
  let top = Number.NEGATIVE_INFINITY;
  if (scheduled) for (const p of withResult) top = Math.max(top, lossResource(p) ?? 0);
  let best: PointRec | null = null;
  for (const p of withResult) {
    if (scheduled && (lossResource(p) ?? 0) !== top) continue;
    if (best === null || (p.loss as number) < (best.loss as number)) best = p;
  }
  return best;
}

function bestOfTask(e: TaskEngine): PointRec | null {
  const bySegment = new Map<number, PointRec[]>();
  for (const p of e.points.values()) {
    const mine = bySegment.get(p.segment);
    if (mine) mine.push(p);
    else bySegment.set(p.segment, [p]);
  }
  let best: PointRec | null = null;
  for (const mine of bySegment.values()) {
    const b = bestOf(mine, e.schedulers !== null);
    if (b && (best === null || (b.loss as number) < (best.loss as number))) best = b;
  }
  return best;
}

export function summarize(e: TaskEngine): TaskSummary {
  const counts = {
    points: 0,
    done: 0,
    failed: 0,
    running: 0,
    queued: 0,
    jobs: 0,
    stopped: 0,
    paused: 0,
    cancelled: 0,
    evaluated: 0,
    pointJobs: 0,
    budgetSpent: 0,
  };
  for (const p of e.points.values()) {
    counts.points++;
    counts.jobs += p.attempts;
    counts.pointJobs += p.jobs;
    switch (p.state) {
      case "done":
      case "failed":
      case "stopped":
      case "paused":
        counts[p.state]++;
        counts.evaluated++;
        break;
      case "running":
      case "queued":
      case "cancelled":
        counts[p.state]++;
        break;
      case "budget-spent":
        counts.budgetSpent++;
        break;
      default:
        return unreachable(p.state, "point state");
    }
  }
  const b = bestOfTask(e);
  return {
    taskId: e.taskId,
    user: e.user,
    outDS: e.spec.outDS,
    state: e.state,
    createdAt: e.createdAt,
    finishedAt: e.finishedAt,
    maxPoints: e.spec.maxPoints * (e.spec.segments?.length ?? 1),
    counts,
    budget: e.budget(),
    best: b === null ? null : { pointId: b.pointId, loss: b.loss as number, values: b.values },
    ...(e.spec.steeringExec !== undefined ? { steering: e.steering.summary() } : {}),
  };
}

/** The most of one iteration's reason a show reply holds (phpo logs --steering has all of it). */
const STEERING_REASON_SHOWN = 1000;

/** The last iterations of the task's steering program, for show (tasks with steeringExec). */
function steeringIterationsShown(e: TaskEngine): TaskDetail["steeringIterations"] {
  if (e.spec.steeringExec === undefined) return undefined;
  return e.steering.list.slice(-STEERING_ITERATIONS_SHOWN).map((i) => {
    const v = steeringView(i);
    return v.reason !== null && v.reason.length > STEERING_REASON_SHOWN
      ? { ...v, reason: `${v.reason.slice(0, STEERING_REASON_SHOWN)}…` }
      : v;
  });
}

/** Attempts of the point's job that had the most (a promotion starts a new job at attempt 1). */
function mostAttempts(p: PointRec): number {
  let most = p.job.state === "queued" || p.job.state === "cancelled" ? p.job.attempt - 1 : p.job.attempt;
  for (const h of p.history) most = Math.max(most, h.attempt);
  return most;
}

export function pointView(e: TaskEngine, p: PointRec): PointView {
  return {
    pointId: p.pointId,
    segment: e.segmentName(p.segment),
    values: p.values,
    state: p.state,
    loss: p.loss,
    attempts: mostAttempts(p),
    dispatches: p.attempts,
    resource: lossResource(p),
    reports: p.reports.map(({ resource, loss, metrics, job, attempt, at, site }) => ({
      resource,
      loss,
      metrics,
      job,
      attempt,
      at,
      site,
    })),
    history: p.history,
    site: p.site,
    agent: p.agent,
    error: p.error,
    failureClass: p.failureClass,
    metricsKeys: p.metricsKeys,
    logKeys: p.logKeys,
    ...(p.missing.length === 0
      ? {}
      : {
          missing: p.missing.map(({ job, attempt, kind, reason, pending }) => ({
            job,
            attempt,
            kind,
            reason,
            pending,
          })),
        }),
    checkpointKey: p.checkpointKey,
    jobs: p.jobs,
    judged:
      p.job.stop !== null && p.job.stopResource !== null
        ? { resource: p.job.stopResource, loss: p.job.stopLoss }
        : null,
    ...(p.trial === null ? {} : { trial: p.trial, target: p.job.target }),
  };
}

/** A `show`, `list` or `download` page stays under this many bytes (NATS's max_payload is 1 MiB). */
export const PAGE_BYTES = 512 * 1024;

/** The bytes of a value's JSON, as it goes on the wire (UTF-8). */
export function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v));
}

/** Room left in a page for the keys and brackets around its parts (`"points":[…],"pointsNext":12`). */
export const FRAMING_BYTES = 256;

/**
 * One page of `n` entries from `from`: at most `limit` of them and `budget` bytes of JSON. Never
 * empty while entries remain (unless limit is 0), so a page always moves on; one entry larger than
 * the budget still gets its page, and the reply check in api.ts refuses it if it is over max_payload.
 */
export function fillPage<V>(
  n: number,
  from: number,
  limit: number,
  budget: number,
  view: (i: number) => V,
): { page: V[]; next: number | null } {
  const page: V[] = [];
  let bytes = 0;
  let i = from;
  for (; i < n && page.length < limit; i++) {
    const v = view(i);
    bytes += jsonBytes(v) + 1; // and its comma
    if (bytes > budget && page.length > 0) break;
    page.push(v);
  }
  return { page, next: i < n ? i : null };
}

/** A task in memory is summarized when listed; a retired one is its summary. */
const summaryOf = (t: TaskEngine | TaskSummary): TaskSummary => (t instanceof TaskEngine ? summarize(t) : t);

/**
 * The user's tasks by id: all of them without `from` (a phpo from before paging), else one page.
 * `tasks` holds the tasks in memory and the retired ones' summaries.
 */
export function listPage(
  tasks: Iterable<TaskEngine | TaskSummary>,
  user: string,
  from: number | undefined,
  pageBytes = PAGE_BYTES,
): { tasks: TaskSummary[]; next: number | null } {
  const mine = [...tasks].filter((e) => e.user === user).sort((a, b) => Number(a.taskId) - Number(b.taskId));
  if (from === undefined) return { tasks: mine.map(summaryOf), next: null };
  const { page, next } = fillPage(
    mine.length,
    from,
    Number.POSITIVE_INFINITY,
    pageBytes - FRAMING_BYTES,
    (i) => summaryOf(mine[i]!),
  );
  return { tasks: page, next };
}

/**
 * The task with one page of its points: from `from`, at most `limit`, the whole reply at most
 * `pageBytes`. The task's own part (summary, spec, segments, rungs) is counted first; rungs give
 * up their worst values until that part takes at most half the page, so points always have room.
 */
export function detail(
  e: TaskEngine,
  from = 0,
  limit = Number.POSITIVE_INFINITY,
  rungValues = RUNG_VALUES_SHOWN,
  pageBytes = PAGE_BYTES,
): TaskDetail {
  const points = [...e.points.values()].sort((a, b) => a.pointId - b.pointId);
  const segments = e.segmentNames.map((name, i) => {
    const mine = points.filter((p) => p.segment === i);
    return { name, points: mine.length, best: bestOf(mine, e.schedulers !== null)?.loss ?? null };
  });
  const summary = summarize(e);
  const steeringIterations = steeringIterationsShown(e);
  const head = { ...summary, spec: e.spec, pointsFrom: from, segments, steeringIterations };
  const headBytes = jsonBytes(head);
  const rungs = e.schedulers ? rungsWithin(e, rungValues, pageBytes / 2 - headBytes) : undefined;
  const used = headBytes + (rungs ? jsonBytes(rungs) : 0) + FRAMING_BYTES;
  const { page, next } = fillPage(points.length, from, limit, pageBytes - used, (i) =>
    pointView(e, points[i]!),
  );
  return {
    ...summary,
    spec: e.spec,
    points: page,
    pointsFrom: from,
    pointsNext: next,
    segments,
    ...(steeringIterations ? { steeringIterations } : {}),
    ...(rungs ? { rungs } : {}),
  };
}

/**
 * Each rung's best values (at most `most`; `count` says how many it holds), halved until they
 * take at most `budget` bytes: a 100k-trial task's rungs would not fit in a reply.
 */
function rungsWithin(e: TaskEngine, most: number, budget: number): NonNullable<TaskDetail["rungs"]> {
  const all = e.rungs().map((r) => {
    const kept = r.values.flatMap((v, i) => (Number.isFinite(v) ? [i] : [])); // best first: the best are kept
    return {
      segment: e.segmentName(r.segment),
      level: r.level,
      values: kept.map((i) => r.values[i] as number),
      ...(r.trials ? { trials: kept.map((i) => r.trials?.[i] ?? "") } : {}),
    };
  });
  const cut = (n: number) =>
    all.map((r) => ({
      ...r,
      values: r.values.slice(0, n),
      ...(r.trials ? { trials: r.trials.slice(0, n) } : {}),
      count: r.values.length,
    }));
  let n = most;
  let rungs = cut(n);
  while (n > 0 && jsonBytes(rungs) > budget) {
    n = Math.floor(n / 2);
    rungs = cut(n);
  }
  return rungs;
}
