// %NAME placeholders in steeringExec and evaluationExec. iDDS substitutes them one regular
// expression after another, so "%IN" also hits the front of "%INPUT". Here every name is replaced
// in one pass, longest names first, and only as a whole token (not followed by a letter, digit or
// underscore); the substituted values are never scanned again, so a value containing "%OUT" stays.
import { ValidationError } from "./errors.ts";

export const STEERING_PLACEHOLDERS = ["MAX_POINTS", "NUM_POINTS", "IN", "OUT", "SEGMENT_NAME"] as const;
export const EVALUATION_PLACEHOLDERS = ["SEGMENT_NAME"] as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces %NAME by values[NAME] in token. Keys are names without the "%" (a leading "%" is
 * accepted and dropped). A %WORD that is not a key is left as written (see findPlaceholders).
 */
export function substitutePlaceholders(token: string, values: Readonly<Record<string, string>>): string {
  const table = new Map<string, string>();
  for (const [key, value] of Object.entries(values)) {
    const name = key.startsWith("%") ? key.slice(1) : key;
    if (!NAME.test(name))
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `placeholder name ${JSON.stringify(key)} must be letters, digits and underscores (e.g. "IN" for %IN)`,
      );
    table.set(name, value);
  }
  if (table.size === 0) return token;
  const names = [...table.keys()].sort((a, b) => b.length - a.length || a.localeCompare(b));
  const re = new RegExp(`%(${names.join("|")})(?![A-Za-z0-9_])`, "g");
  return token.replace(re, (_, name: string) => table.get(name) ?? "");
}

/** The %NAME tokens in a string, in order of appearance (for warning about unknown ones). */
export function findPlaceholders(token: string): string[] {
  return [...token.matchAll(/%([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? "");
}
