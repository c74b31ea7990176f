// Independent seeded draws from every dimension: PanDA's default behaviour without a steering
// container's optimiser. It never runs out.
import { Rng, type RngState } from "../core/rng.ts";
import type { RandomSamplerState } from "./state.ts";
import { type SearchSpace } from "../../protocol/searchSpace.ts";
import { parameterOrder, type Point } from "../../protocol/points.ts";
import { samplePoint } from "./draw.ts";
import { checkAskCount, checkTell, type Sampler } from "./sampler.ts";

export class RandomSampler implements Sampler {
  private readonly rng: Rng;
  private readonly order: string[];

  /** seed: a 32-bit seed, or an Rng state taken from snapshot() to continue a sequence. */
  constructor(
    private readonly space: SearchSpace,
    seed: number | RngState,
  ) {
    this.rng = new Rng(Array.isArray(seed) ? ([...seed] as RngState) : seed);
    this.order = parameterOrder(space);
  }

  ask(n: number): Point[] {
    checkAskCount(n);
    return Array.from({ length: n }, () => samplePoint(this.space, this.rng, {}, this.order));
  }

  tell(point: Point, loss: number | null): void {
    checkTell(this.space, point, loss);
  }

  snapshot(): RandomSamplerState {
    return { type: "random", rng: this.rng.state() };
  }
}
