// Sampling bookkeeping of one segment: how many points exist, whether the sampler is exhausted,
// and the PanDA iteration rule (generate when unevaluated points fall below minUnevaluatedPoints,
// nPointsPerIteration − minUnevaluatedPoints at a time, never past maxPoints). Sampling works on
// a restored copy so the live state only moves when the points-added event is applied.
// A segment of a task with `steeringExec` (and no scheduler) is `external`: its points come from
// the user's steering program, run by the dispatcher (steering/program/iteration.ts) outside the
// commit queue; the engine only says when an iteration is due and turns its result into the same
// points-added event (sampler state null).
import type { SamplerConfig } from "../../../protocol/sampler.ts";
import type { SearchSpace } from "../../../protocol/searchSpace.ts";
import type { Point } from "../../../protocol/points.ts";
import type { TaskSpec } from "../../../protocol/taskConfig.ts";
import { createSampler, restoreSampler } from "../../sampler/index.ts";

/** What a task snapshot keeps of a segment's sampling (snapshot.ts): exactly the fields the fold writes. */
export interface SamplingPart {
  sampler: unknown;
  generated: number;
  exhausted: boolean;
  owed: number;
}

export class SegmentSampling {
  private samplerState: unknown = null;
  private generated = 0;
  private exhausted = false;
  /** Points of the current iteration not logged yet (its next parts). */
  private owed = 0;
  private readonly config: SamplerConfig;
  /** Points come from the steering program (steeringExec), not from a built-in sampler. */
  readonly external: boolean;

  constructor(
    spec: TaskSpec,
    readonly index: number,
    readonly name: string | null,
    private readonly space: SearchSpace,
    seed: number,
  ) {
    // With a scheduler, points are sampled one at a time per suggested trial, which the iDDS
    // protocol (batches of nPointsPerIteration) cannot serve: the built-in sampler is used.
    this.external = spec.steeringExec !== undefined && spec.scheduler === undefined;
    // The task's seed (the sampler's seed if the user gave one, else a random one, logged at
    // submission) is offset per segment, so segments sample different points.
    this.config = spec.sampler
      ? { ...spec.sampler, seed: (spec.sampler.seed + index) >>> 0 }
      : { type: "random", seed };
  }

  /** How many points to ask for now (0: none due). */
  due(unevaluated: number, spec: TaskSpec): number {
    if (this.exhausted || this.generated >= spec.maxPoints) return 0;
    if (this.owed > 0) return Math.min(this.owed, spec.maxPoints - this.generated);
    // PanDA/iDDS: the next iteration when the unevaluated points fall *below*
    // minUnevaluatedPoints; with the default 0, when none is left
    if (unevaluated >= Math.max(1, spec.minUnevaluatedPoints)) return 0;
    const perIteration = Math.max(1, spec.nPointsPerIteration - spec.minUnevaluatedPoints);
    return Math.min(perIteration, spec.maxPoints - this.generated);
  }

  /** An iteration logged in parts has parts still to come. */
  get owes(): boolean {
    return this.owed > 0 && !this.exhausted;
  }

  /** Points generated so far (every logged points-added of this segment). */
  get generatedCount(): number {
    return this.generated;
  }

  finishedSampling(spec: TaskSpec): boolean {
    return this.exhausted || this.generated >= spec.maxPoints;
  }

  /** Built-in samplers only: an external segment's points come from steeringResult (TaskEngine). */
  sample(n: number): { points: Point[]; state: unknown; exhausted: boolean } {
    const sampler =
      this.samplerState === null
        ? createSampler(this.space, this.config)
        : restoreSampler(this.space, this.config, this.samplerState);
    const points = sampler.ask(n);
    return { points, state: sampler.snapshot(), exhausted: points.length < n };
  }

  restore(state: unknown, added: number, exhausted: boolean, more = 0): void {
    this.samplerState = state;
    this.generated += added;
    this.exhausted ||= exhausted;
    this.owed = this.exhausted ? 0 : more;
  }

  save(): SamplingPart {
    return {
      sampler: this.samplerState,
      generated: this.generated,
      exhausted: this.exhausted,
      owed: this.owed,
    };
  }

  load(part: SamplingPart): void {
    this.samplerState = part.sampler;
    this.generated = part.generated;
    this.exhausted = part.exhausted;
    this.owed = part.owed;
  }

  /** Built-in samplers keep no history; an external (steering-container) sampler reads it from the points. */
  tell(_point: Point, _loss: number): void {}
}
