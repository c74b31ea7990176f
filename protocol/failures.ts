// Why an attempt failed, as a class that picks the retry policy (docs/steering.md, "Failures").
// The agent sets the class on its result; steering derives it from the error code for a result
// that has none (an agent from before classes) and sets `node-lost` for a lease that expired.
import { z } from "zod";
import { unreachable, type ErrorCode } from "./errors.ts";

export const FailureClass = z.enum([
  /** The payload exited non-zero, wrote a bad output.json, or said status != 0. */
  "payload",
  /** The image is missing on the agent, or its allow-list refuses it. */
  "image",
  /** The payload ran out of its memory limit. */
  "oom",
  /** The payload ran past its wall-clock limit. */
  "timeout",
  /** The agent was drained and handed the attempt back (never a failure). */
  "preempted",
  /** The attempt's agent stopped renewing its lease, or nobody claimed it. */
  "node-lost",
  /** S3, NATS or the container daemon was unavailable, or another fault of the agent's own. */
  "infrastructure",
]);
export type FailureClass = z.infer<typeof FailureClass>;

/**
 * Failures of these classes are the user's: they count against maxAttempts (PanDA's rule). The
 * others are the site's: they do not burn the user's attempts, and have their own bound.
 */
export function countsAgainstAttempts(c: FailureClass): boolean {
  switch (c) {
    case "payload":
    case "oom":
    case "timeout":
      return true;
    case "image":
    case "preempted":
    case "node-lost":
    case "infrastructure":
      return false;
    default:
      return unreachable(c, "failure class");
  }
}

/**
 * Failures of a job that do not count against maxAttempts (image, node lost, infrastructure):
 * after this many the point fails with the last reason. Each is retried after the back-off and
 * preferably on another agent or site, so a broken agent does not burn them in a fraction of a
 * second. A constant, not a setting: the task's log replays to the same states on every steering.
 */
export const MAX_SITE_FAILURES = 3;

/** The class of an error code, for a result that names none (an agent from before classes). */
export function classOfError(code: ErrorCode): FailureClass {
  switch (code) {
    case "IMAGE_MISSING":
    case "IMAGE_NOT_ALLOWED":
      return "image";
    case "UNAVAILABLE":
    case "TIMEOUT":
    case "RUNTIME_UNAVAILABLE":
    case "STORAGE_FAILED":
    case "PROTOCOL_MISMATCH":
    case "STALE_ATTEMPT":
    case "INTERNAL":
    case "FORBIDDEN":
    case "UNAUTHENTICATED":
      // FORBIDDEN: an agent that refuses the user (its --trusted-users); another one may not
      return "infrastructure";
    case "EVALUATION_FAILED":
    case "OUTPUT_INVALID":
    case "ARCHIVE_REJECTED":
    case "TOO_LARGE":
    case "INVALID_CONFIG":
    case "INVALID_SEARCH_SPACE":
    case "INVALID_ARGUMENT":
    case "INVALID_NAME":
    case "NOT_FOUND":
    case "CONFLICT":
    case "LIMIT_EXCEEDED":
      return "payload";
    default:
      return unreachable(code, "error code");
  }
}
