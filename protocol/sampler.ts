// Sampler configuration and the sampler's durable state. Both are JSON so the steering service
// can put them in its event log and rebuild a sampler exactly after a crash.
// SamplerConfig is a union on `type`: the external steering-container sampler joins it as one
// more member (its options belong to that implementation), without touching the built-in ones.
import { z } from "zod";

// Rng keeps its words as JS numbers: some are uint32, some int32 (after an XOR), so both ranges fit.
const Word = z.int().min(-0x80000000).max(0xffffffff);

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

/** The four words of protocol/rng.ts's Rng state. */
export const RngSnapshot = z.tuple([Word, Word, Word, Word]);
export type RngSnapshot = z.infer<typeof RngSnapshot>;

export const RandomSamplerState = z.object({ type: z.literal("random"), rng: RngSnapshot });
export type RandomSamplerState = z.infer<typeof RandomSamplerState>;
/** cursor: index of the next grid combination to consider (last grid dimension fastest). */
export const GridSamplerState = z.object({
  type: z.literal("grid"),
  rng: RngSnapshot,
  cursor: z.int().min(0),
});
export type GridSamplerState = z.infer<typeof GridSamplerState>;

export const SamplerState = z.discriminatedUnion("type", [RandomSamplerState, GridSamplerState]);
export type SamplerState = z.infer<typeof SamplerState>;
