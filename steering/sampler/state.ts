// A built-in sampler's durable state: JSON, so steering puts it in its event log (points-added,
// trial-suggested) and rebuilds the sampler exactly after a crash.
import { z } from "zod";

// Rng keeps its words as JS numbers: some are uint32, some int32 (after an XOR), so both ranges fit.
const Word = z.int().min(-0x80000000).max(0xffffffff);

/** The four words of steering/core/rng.ts's Rng state. */
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
