// The interface the steering service drives, and the checks every built-in sampler shares.
import { ValidationError } from "../../protocol/errors.ts";
import type { SamplerState } from "./state.ts";
import { type SearchSpace } from "../../protocol/searchSpace.ts";
import { show } from "../../protocol/text.ts";
import { validatePoint, type Point } from "../../protocol/points.ts";

/**
 * A synchronous ask-and-tell sampler. ask(n) returns up to n new points; fewer means the sampler is
 * running out, [] means it has nothing more to offer, which ends generation (as in iDDS).
 * snapshot() is JSON; restoreSampler(space, config, snapshot) continues the identical sequence.
 */
export interface Sampler {
  ask(n: number): Point[];
  tell(point: Point, loss: number | null): void;
  snapshot(): SamplerState;
}

/** ask(0) would read as "exhausted", so a caller that wants no point must not ask. */
export function checkAskCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `ask(n): n must be a positive integer, got ${show(n)}; do not ask when no point is wanted`,
    );
}

/**
 * Random and grid sampling do not use losses (by design: they are the non-adaptive baselines), but
 * tell still checks its input so a point from another space or a NaN loss is caught where it enters.
 */
export function checkTell(space: SearchSpace, point: Point, loss: number | null): void {
  validatePoint(space, point);
  if (loss !== null && !Number.isFinite(loss))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `tell: loss must be a finite number or null, got ${String(loss)}`,
    );
}
