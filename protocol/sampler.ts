// The sampler configuration of a task spec (its durable state is steering's: steering/sampler/state.ts).
// SamplerConfig is a union on `type`: the external steering-container sampler joins it as one
// more member (its options belong to that implementation), without touching the built-in ones.
import { z } from "zod";

/** The seed of a built-in sampler; the same seed and space give the same points. */
export const Seed = z
  .int({ error: (i) => `must be an integer seed in [0, 4294967295], got ${JSON.stringify(i.input)}` })
  .min(0, { error: "must be >= 0" })
  .max(0xffffffff, { error: "must be <= 4294967295 (a 32-bit seed)" });

export const RandomSamplerConfig = z.strictObject({ type: z.literal("random"), seed: Seed.default(0) });
export type RandomSamplerConfig = z.infer<typeof RandomSamplerConfig>;
export const GridSamplerConfig = z.strictObject({ type: z.literal("grid"), seed: Seed.default(0) });
export type GridSamplerConfig = z.infer<typeof GridSamplerConfig>;

export const SamplerConfig = z.discriminatedUnion("type", [RandomSamplerConfig, GridSamplerConfig]);
export type SamplerConfig = z.infer<typeof SamplerConfig>;
