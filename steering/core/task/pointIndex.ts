// Indexes of a task's points by state, so the decisions the dispatcher asks for on every pump
// (in flight, next queued job, unevaluated per segment, active jobs) cost O(1) or O(queued) rather
// than a walk over every point: a task may hold 100k points and see thousands of events a second.
// Membership is a function of the point's state and its job's state only; the engine calls
// update() for each point an event touched, and check() (tests) compares with a full scan.
import type { PointRec } from "./records.ts";

export class PointIndex {
  /** Points whose current job waits to be dispatched. */
  readonly queued = new Set<PointRec>();
  /** Points whose current job is dispatched or running. */
  readonly active = new Set<PointRec>();
  /** Per segment: points not evaluated yet (state queued or running), for PanDA's iteration rule. */
  private readonly unevaluated: Array<Set<PointRec>> = [];

  update(p: PointRec): void {
    const j = p.job.state;
    toggle(this.queued, p, j === "queued");
    toggle(this.active, p, j === "dispatched" || j === "running");
    const seg = (this.unevaluated[p.segment] ??= new Set());
    toggle(seg, p, p.state === "queued" || p.state === "running");
  }

  unevaluatedIn(segment: number): number {
    return this.unevaluated[segment]?.size ?? 0;
  }

  /** Throws if the index differs from a full scan of `points` (a missed update() in the engine). */
  check(points: Iterable<PointRec>): void {
    const fresh = new PointIndex();
    for (const p of points) fresh.update(p);
    const same = (a: Set<PointRec>, b: Set<PointRec>) => a.size === b.size && [...a].every((p) => b.has(p));
    const segs = Math.max(fresh.unevaluated.length, this.unevaluated.length);
    const ok =
      same(fresh.queued, this.queued) &&
      same(fresh.active, this.active) &&
      Array.from({ length: segs }, (_, i) => i).every((i) =>
        same(fresh.unevaluated[i] ?? new Set(), this.unevaluated[i] ?? new Set()),
      );
    if (!ok) throw new Error("point index out of date: an event changed a point without update()");
  }
}

function toggle(set: Set<PointRec>, p: PointRec, member: boolean): void {
  if (member) set.add(p);
  else set.delete(p);
}
