// The steering-container side of sampling (iDDS protocol). The container implementation (a later
// piece of the steering service) runs the user's steeringExec; this module defines what it plugs
// into and the two files it exchanges:
//   %IN  {"points": [[{point}, loss_or_null], ...], "opt_space": <search space or null>}
//        every point generated so far, evaluated or not (null = not evaluated yet);
//   %OUT a JSON list of new points, each a dictionary over the space's keys; [] = stop.
import { z } from "zod";
import { GridtuneError, ValidationError } from "../../protocol/errors.ts";
import { type SearchSpace } from "../../protocol/searchSpace.ts";
import { show } from "../../protocol/text.ts";
import { Point, validatePoint } from "../../protocol/points.ts";

/** Every point generated so far with its loss, null while it is not evaluated. */
export type History = ReadonlyArray<readonly [Point, number | null]>;

/**
 * An asynchronous sampler backed by an external optimiser (a steering container). ask resolves to
 * at most n points, [] when the optimiser has nothing more to offer; a failing run rejects, and
 * generation stops either way (iDDS).
 */
export interface ExternalSampler {
  ask(n: number, history: History): Promise<Point[]>;
}

export const SteeringInput = z.object({
  points: z.array(z.tuple([Point, z.number().nullable()])),
  // iDDS passes whatever the task's opt_space is (its own test uses {"A": [1, 4], ...}), so the
  // reader does not insist on gridtune's search-space format.
  opt_space: z.record(z.string(), z.unknown()).nullable(),
});
export type SteeringInput = z.infer<typeof SteeringInput>;

/** The %IN document for a steering run. Losses must be finite: JSON would turn Infinity into null. */
export function buildSteeringInput(history: History, space: SearchSpace | null): SteeringInput {
  const points = history.map(([point, loss], i): [Point, number | null] => {
    if (loss !== null && !Number.isFinite(loss))
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `steering input: history[${i}] has loss ${String(loss)}, which JSON cannot carry; register a large finite loss instead`,
      );
    return [point, loss];
  });
  return { points, opt_space: space };
}

/** Reads a %IN document back (for tests, debugging, and resuming from a kept working dir). */
export function parseSteeringInput(json: unknown, source = "%IN"): SteeringInput {
  const r = SteeringInput.safeParse(json);
  if (r.success) return r.data;
  const lines = r.error.issues.map(
    (i) => `${source}: ${i.path.map(String).join(".") || "(root)"}: ${i.message}`,
  );
  throw new ValidationError(
    "INVALID_ARGUMENT",
    [
      ...lines,
      `${source} must be {"points": [[{point}, loss_or_null], ...], "opt_space": {...} or null}`,
    ].join("\n"),
  );
}

/** The points of a %OUT document, each checked against the space; [] means stop. */
export function parseSteeringOutput(json: unknown, space: SearchSpace, source = "%OUT"): Point[] {
  if (!Array.isArray(json))
    throw new ValidationError(
      "OUTPUT_INVALID",
      `steering output ${source} must be a JSON list of points [{"<parameter>": value, ...}, ...] ([] to stop), got ${show(json).slice(0, 200)}`,
    );
  return json.map((p: unknown, i) => {
    try {
      return validatePoint(space, p);
    } catch (err) {
      if (!(err instanceof GridtuneError)) throw err;
      throw new ValidationError("OUTPUT_INVALID", `steering output ${source}[${i}]: ${err.message}`, {
        cause: err,
      });
    }
  });
}

/** parseSteeringOutput for the file's text, with the JSON syntax error located. */
export function readSteeringOutput(text: string, space: SearchSpace, source = "%OUT"): Point[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ValidationError(
      "OUTPUT_INVALID",
      `steering output ${source} is not valid JSON (${why}); the steering must write a JSON list of points, [] to stop`,
      { cause: err },
    );
  }
  return parseSteeringOutput(json, space, source);
}
