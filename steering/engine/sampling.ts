// The sampling decisions of a task without a scheduler, by PanDA's iteration rule: generate when
// the unevaluated points of a segment fall to minUnevaluatedPoints, nPointsPerIteration −
// minUnevaluatedPoints at a time, up to maxPoints. Built-in samplers answer at once
// (proposeSampling); a steering program (steeringExec) is run by the dispatcher outside the
// commit queue (steeringDue), and its answer becomes the same points-added event (steeringResult).
// Pure functions over a read-only view of the engine.
import type { Point, SearchSpace } from "../../protocol/searchSpace.ts";
import type { TaskSpec } from "../../protocol/taskConfig.ts";
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

/** New points from a built-in sampler, as a points-added event; null if none are due. */
export function proposeSampling(v: SamplingView, at: number): LogEventOf<"points-added"> | null {
  for (let i = 0; i < v.segments.length; i++) {
    const seg = v.segments[i]!;
    if (seg.external) continue; // see steeringDue
    const n = seg.due(v.unevaluated(i), v.spec);
    if (n <= 0) continue;
    const { points, state, exhausted } = seg.sample(n);
    return {
      type: "points-added",
      taskId: v.taskId,
      at,
      segment: i,
      points: points.map((values, k) => ({ pointId: v.nextPointId + k, values })),
      sampler: state,
      exhausted,
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
    const n = seg.due(v.unevaluated(i), v.spec);
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
 * The points-added event for a steering iteration's result (points: at most the n asked, already
 * validated against the space; exhausted: the program returned [] or failed, which ends generation
 * for the segment). Null when the result no longer applies: points were added to the segment since
 * the iteration started (it was run twice; the first result won), or its generation is over.
 */
export function steeringResult(
  v: SamplingView,
  segment: number,
  generated: number,
  points: Point[],
  exhausted: boolean,
  at: number,
): LogEventOf<"points-added"> | null {
  const seg = v.segments[segment];
  if (!seg?.external || seg.generatedCount !== generated || seg.finishedSampling(v.spec)) return null;
  const room = v.spec.maxPoints - generated;
  const kept = points.slice(0, Math.max(0, room));
  return {
    type: "points-added",
    taskId: v.taskId,
    at,
    segment,
    points: kept.map((values, k) => ({ pointId: v.nextPointId + k, values })),
    sampler: null,
    exhausted: exhausted || kept.length === 0,
  };
}
