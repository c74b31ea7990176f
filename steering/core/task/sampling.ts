// The sampling decisions of a task without a scheduler, by PanDA's iteration rule: generate when
// the unevaluated points of a segment fall below minUnevaluatedPoints (or to none),
// nPointsPerIteration − minUnevaluatedPoints at a time, up to maxPoints, and not once the
// segment's maxEvaluationJobs are used up (its points could never run). Built-in samplers answer at once
// (proposeSampling); a steering program (steeringExec) is run by the dispatcher outside the
// commit queue (steeringDue), and its answer becomes the same points-added event (steeringResult).
// Pure functions over a read-only view of the engine.
import type { SearchSpace } from "../../../protocol/searchSpace.ts";
import type { Point } from "../../../protocol/points.ts";
import type { TaskSpec } from "../../../protocol/taskConfig.ts";
import type { LogEventOf } from "../events.ts";
import type { PointRec } from "./records.ts";
import type { SegmentSampling } from "./segmentSampling.ts";

/** What the sampling decisions read of a task engine. */
export interface SamplingView {
  taskId: string;
  spec: TaskSpec;
  segments: readonly SegmentSampling[];
  points: ReadonlyMap<number, PointRec>;
  nextPointId: number;
  /** Points of the segment not evaluated yet (queued or running). */
  unevaluated(segment: number): number;
  /** Evaluation jobs the segment may still start (maxEvaluationJobs minus attempts dispatched). */
  jobsLeft(segment: number): number;
}

/** Points to ask for in the segment now (0: none due). */
function dueIn(v: SamplingView, i: number): number {
  return v.jobsLeft(i) > 0 ? v.segments[i]!.due(v.unevaluated(i), v.spec) : 0;
}

/** A steering-program iteration that is due (tasks with steeringExec): what to run it with. */
export interface SteeringDue {
  segment: number;
  segmentName: string | null;
  /** Points to ask for: min(nPointsPerIteration − minUnevaluatedPoints, maxPoints − generated). */
  n: number;
  /** Points of the segment generated so far; the result is committed only if this is unchanged. */
  generated: number;
  /** Every point of the segment so far, in point order, with its loss (null: not evaluated yet). */
  history: Array<[Point, number | null]>;
  space: SearchSpace;
}

/** The points of one points-added event stay under this many bytes of JSON (a log message is at most 1 MiB). */
export const POINTS_EVENT_BYTES = 256 * 1024;

/**
 * At most this many points are sampled per call: an iteration of a million points (maxPoints and
 * nPointsPerIteration are only bounded by the user) is logged in parts, and one call must not
 * block steering's event loop for seconds.
 */
export const MAX_POINTS_PER_CALL = 4096;

/** How many of the points, from the first, fit in one event (at least one, so the log moves on). */
export function pointsThatFit(points: readonly Point[], budget = POINTS_EVENT_BYTES): number {
  let bytes = 0;
  for (let i = 0; i < points.length; i++) {
    bytes += JSON.stringify(points[i]).length + 24; // + {"pointId":…,"values":…}
    if (bytes > budget && i > 0) return i;
  }
  return points.length;
}

/**
 * New points from a built-in sampler, as a points-added event; null if none are due. An iteration
 * too large for one event is logged in parts: this event holds what fits and says how many points
 * are still to come (`more`), which the next call samples first.
 */
export function proposeSampling(v: SamplingView, at: number): LogEventOf<"points-added"> | null {
  for (let i = 0; i < v.segments.length; i++) {
    const seg = v.segments[i]!;
    if (seg.external) continue; // see steeringDue
    // sampling is cheap but not free: never more than one event's worth of points per call
    const due = dueIn(v, i);
    if (due <= 0) continue;
    const n = Math.min(due, MAX_POINTS_PER_CALL);
    let sampled = seg.sample(n);
    const k = pointsThatFit(sampled.points);
    // sampling works on a copy of the sampler: ask again for the part that fits, from the same state
    if (k < sampled.points.length) sampled = seg.sample(k);
    const { points, state, exhausted } = sampled;
    return {
      type: "points-added",
      taskId: v.taskId,
      at,
      segment: i,
      points: points.map((values, k) => ({ pointId: v.nextPointId + k, values })),
      sampler: state,
      exhausted,
      more: exhausted ? 0 : due - points.length,
    };
  }
  return null;
}

/**
 * The steering-program iterations due now (segments of a task with steeringExec), by the same
 * PanDA rule as proposeSampling. The caller runs them (I/O, outside the commit queue), at most one
 * per segment at a time, and commits each result through steeringResult.
 */
export function steeringDue(v: SamplingView): SteeringDue[] {
  const out: SteeringDue[] = [];
  for (let i = 0; i < v.segments.length; i++) {
    const seg = v.segments[i]!;
    if (!seg.external) continue;
    const n = dueIn(v, i);
    if (n <= 0) continue;
    const history: Array<[Point, number | null]> = [];
    for (const p of v.points.values()) {
      if (p.segment !== i) continue;
      const evaluated = p.state !== "queued" && p.state !== "running";
      const loss = evaluated && p.loss !== null && Number.isFinite(p.loss) ? p.loss : null;
      history.push([p.values, loss]);
    }
    out.push({
      segment: i,
      segmentName: seg.name,
      n,
      generated: seg.generatedCount,
      history,
      space: v.spec.segmentSearchSpaces?.[i] ?? v.spec.searchSpace,
    });
  }
  return out;
}

/**
 * The points-added events for a steering iteration's result (points: at most the n asked, already
 * validated against the space; exhausted: the program returned [] or failed, which ends generation
 * for the segment), in parts that each fit in a log message; the caller commits them together.
 * None when the result no longer applies: points were added to the segment since the iteration
 * started (it was run twice; the first result won), or its generation is over.
 */
export function steeringResult(
  v: SamplingView,
  segment: number,
  generated: number,
  points: Point[],
  exhausted: boolean,
  at: number,
): Array<LogEventOf<"points-added">> {
  const seg = v.segments[segment];
  if (!seg?.external || seg.generatedCount !== generated || seg.finishedSampling(v.spec)) return [];
  const room = v.spec.maxPoints - generated;
  let rest = points.slice(0, Math.max(0, room));
  const out: Array<LogEventOf<"points-added">> = [];
  let next = v.nextPointId;
  do {
    const part = rest.slice(0, pointsThatFit(rest));
    rest = rest.slice(part.length);
    out.push({
      type: "points-added",
      taskId: v.taskId,
      at,
      segment,
      points: part.map((values, k) => ({ pointId: next + k, values })),
      sampler: null,
      // the program's answer is one iteration: its parts follow at once, none is owed to a later one
      exhausted: rest.length === 0 && (exhausted || part.length === 0),
      more: 0,
    });
    next += part.length;
  } while (rest.length > 0);
  return out;
}
