// Per-user limits, the rules: one tenant must not degrade the others. Every submission is checked
// against the user's limits (steering's defaults, or an admin's override that the shell reads from
// the limits file, shell/limits.ts) before it costs steering anything lasting: the request's size
// before it is parsed, the points and the rate before the task is decided, the rate again and the
// active tasks in the decision (two submissions in flight cannot both take the last free place).
// Pure: the time of the rate window comes in as `now`.
import { z } from "zod";
import { GridtuneError } from "../../protocol/errors.ts";

export const TenantLimits = z.object({
  /** Tasks running or paused at once. */
  activeTasks: z.number().int().positive(),
  /** Points of one task (maxPoints times its segments). */
  maxPoints: z.number().int().positive(),
  /** Bytes of a submit request (the spec and a few bytes of framing), before it is parsed. */
  specBytes: z.number().int().positive(),
  /** Submissions accepted in any 60 s. */
  submitsPerMinute: z.number().int().positive(),
  /** Bytes of all the user's datasets (`phpo dataset put`, scope user.<user>.*). */
  datasetBytes: z.number().int().positive(),
  /** Files of all the user's datasets. */
  datasetFiles: z.number().int().positive(),
});
export type TenantLimits = z.infer<typeof TenantLimits>;

export const DEFAULT_TENANT_LIMITS: TenantLimits = {
  activeTasks: 20,
  maxPoints: 100_000,
  specBytes: 256 * 1024,
  submitsPerMinute: 30,
  datasetBytes: 50 * 1024 ** 3,
  datasetFiles: 10_000,
};

/** The limits by the names used in messages, docs and the admin command's options. */
export const LIMIT_NAMES = {
  activeTasks: { name: "active_tasks", option: "--active-tasks" },
  maxPoints: { name: "max_points", option: "--max-points" },
  specBytes: { name: "spec_bytes", option: "--spec-bytes" },
  submitsPerMinute: { name: "submits_per_minute", option: "--submits-per-minute" },
  datasetBytes: { name: "dataset_bytes", option: "--dataset-bytes" },
  datasetFiles: { name: "dataset_files", option: "--dataset-files" },
} as const satisfies Record<keyof TenantLimits, { name: string; option: string }>;

/** The span of submits_per_minute. */
export const RATE_WINDOW_MS = 60_000;

/** A submission refused by one of the user's limits. */
export class LimitExceededError extends GridtuneError {
  override name = "LimitExceededError";
  constructor(
    readonly limit: keyof TenantLimits,
    message: string,
    retryable = false,
  ) {
    super("LIMIT_EXCEEDED", message, { retryable });
  }
}

/**
 * The times of each user's submissions, as folded from the task-created events (core/state.ts):
 * a submission counts from the moment it is decided, so submissions in flight together count
 * against each other. A user's times older than the window are dropped at their next submission,
 * so each user keeps at most about submits_per_minute of them.
 */
export class SubmitWindow {
  private readonly times = new Map<string, number[]>();

  /** A submission of `user` at `at`. */
  note(user: string, at: number): void {
    const kept = (this.times.get(user) ?? []).filter((t) => t > at - RATE_WINDOW_MS);
    kept.push(at);
    this.times.set(user, kept);
  }

  /** The user's submissions in the window before `now`, oldest first. */
  recent(user: string, now: number): number[] {
    return (this.times.get(user) ?? []).filter((t) => t > now - RATE_WINDOW_MS);
  }
}

/** Before parsing: the request's bytes. */
export function checkSpecBytes(user: string, limits: TenantLimits, bytes: number): void {
  if (bytes <= limits.specBytes) return;
  throw refusal(
    user,
    limits,
    "specBytes",
    `the submitted spec is ${bytes} bytes`,
    "make it smaller (a large search space belongs in a file the payload reads, not in the spec)",
  );
}

/** After parsing: the task's points (maxPoints times its segments, as `list` counts them). */
export function checkMaxPoints(user: string, limits: TenantLimits, points: number): void {
  if (points <= limits.maxPoints) return;
  throw refusal(user, limits, "maxPoints", `the task asks for ${points} points`, "ask for fewer");
}

/** Before the task is logged: the submissions in the window before `now` (SubmitWindow.recent). */
export function checkRate(user: string, limits: TenantLimits, recent: readonly number[], now: number): void {
  if (recent.length < limits.submitsPerMinute) return;
  const oldest = recent[0] ?? now;
  const waitS = Math.max(1, Math.ceil((oldest + RATE_WINDOW_MS - now) / 1000));
  throw refusal(
    user,
    limits,
    "submitsPerMinute",
    `you submitted ${recent.length} tasks in the last minute`,
    `try again in ${waitS} s`,
    true,
  );
}

/** In the decision: the user's running and paused tasks. */
export function checkActive(user: string, limits: TenantLimits, active: number): void {
  if (active < limits.activeTasks) return;
  throw refusal(
    user,
    limits,
    "activeTasks",
    `you have ${active} active tasks`,
    "kill one or wait for one to finish",
  );
}

/** Before a dataset file is uploaded: the user's dataset bytes and files once it is stored. */
export function checkDatasetQuota(
  user: string,
  limits: TenantLimits,
  after: { bytes: number; files: number },
  adding: string,
): void {
  if (after.bytes > limits.datasetBytes)
    throw refusal(
      user,
      limits,
      "datasetBytes",
      `with ${adding} your datasets would hold ${after.bytes} bytes`,
      "remove a dataset (phpo dataset rm NAME)",
    );
  if (after.files > limits.datasetFiles)
    throw refusal(
      user,
      limits,
      "datasetFiles",
      `with ${adding} your datasets would hold ${after.files} files`,
      "remove a dataset (phpo dataset rm NAME) or pack small files into an archive",
    );
}

/** The refusal names the limit, its value, the fix, and the admin command that raises it. */
function refusal(
  user: string,
  limits: TenantLimits,
  limit: keyof TenantLimits,
  what: string,
  fix: string,
  retryable = false,
): LimitExceededError {
  const { name, option } = LIMIT_NAMES[limit];
  const value = limits[limit];
  return new LimitExceededError(
    limit,
    `${what}, the limit ${name} is ${value}: ${fix}, or ask an admin to raise it with ` +
      `\`gridtune-steering admin set-limits ${user} ${option} ${value * 2}\``,
    retryable,
  );
}
