// The samplers the steering service uses: createSampler for a new task, restoreSampler to
// rebuild one from its snapshot after a crash.
import { ValidationError, describeZodError, unreachable } from "../../protocol/errors.ts";
import type { SamplerConfig } from "../../protocol/sampler.ts";
import { SamplerState } from "./state.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import { GridSampler } from "./grid.ts";
import { RandomSampler } from "./random.ts";
import type { Sampler } from "./sampler.ts";

export type { Sampler } from "./sampler.ts";
export { RandomSampler } from "./random.ts";
export { GridSampler, gridAxis, type GridAxis } from "./grid.ts";
export { drawValue, samplePoint } from "./draw.ts";
export {
  SteeringInput,
  buildSteeringInput,
  parseSteeringInput,
  parseSteeringOutput,
  readSteeringOutput,
  type ExternalSampler,
  type History,
} from "./programIo.ts";

/** A sampler for a parsed config (the task spec's, parsed once at submission). */
export function createSampler(space: SearchSpace, c: SamplerConfig): Sampler {
  switch (c.type) {
    case "random":
      return new RandomSampler(space, c.seed);
    case "grid":
      return new GridSampler(space, c.seed);
    default:
      return unreachable(c, "sampler config");
  }
}

/** Rebuilds a sampler from snapshot(); it continues exactly where the snapshot was taken. */
export function restoreSampler(space: SearchSpace, c: SamplerConfig, state: unknown): Sampler {
  const r = SamplerState.safeParse(state);
  if (!r.success) throw new ValidationError("INVALID_ARGUMENT", describeZodError(r.error, "sampler state"));
  const s = r.data;
  if (s.type !== c.type)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `sampler state is for a "${s.type}" sampler but the config says "${c.type}"; restore with the config the state was taken under`,
    );
  switch (s.type) {
    case "random":
      return new RandomSampler(space, s.rng);
    case "grid":
      return new GridSampler(space, { rng: s.rng, cursor: s.cursor });
    default:
      return unreachable(s, "sampler state");
  }
}
