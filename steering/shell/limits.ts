// Per-user limits: one tenant must not degrade the others. Every submission is checked against
// the user's limits (steering's defaults, or an admin's override from the limits file) before it
// costs steering anything lasting: the request's size before it is parsed, the rate before the
// task is logged, the points and the active tasks inside the commit queue (two submissions in
// flight cannot both take the last free place).
import { readFile, stat } from "node:fs/promises";
import { z } from "zod";
import { describeZodError, GridtuneError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";

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

/** The limits file an admin writes (`gridtune-steering admin set-limits`): overrides per user. */
export const LimitsFile = z.object({
  users: z.record(z.string(), TenantLimits.partial().strict()),
});
export type LimitsFile = z.infer<typeof LimitsFile>;

/** The limits by the names used in messages, docs and the admin command's options. */
export const LIMIT_NAMES = {
  activeTasks: { name: "active_tasks", option: "--active-tasks" },
  maxPoints: { name: "max_points", option: "--max-points" },
  specBytes: { name: "spec_bytes", option: "--spec-bytes" },
  submitsPerMinute: { name: "submits_per_minute", option: "--submits-per-minute" },
  datasetBytes: { name: "dataset_bytes", option: "--dataset-bytes" },
  datasetFiles: { name: "dataset_files", option: "--dataset-files" },
} as const satisfies Record<keyof TenantLimits, { name: string; option: string }>;

const RATE_WINDOW_MS = 60_000;

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

/** Reads the admin's limits file again whenever it changes; a missing file means no overrides. */
export class LimitsFileReader {
  /** What the file was when last read (a rename in place gives a new inode, even in the same ms). */
  private seen = "";
  private current: LimitsFile = { users: {} };

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {}

  async overrides(user: string): Promise<Partial<TenantLimits>> {
    await this.refresh();
    return this.current.users[user] ?? {};
  }

  private async refresh(): Promise<void> {
    const s = await stat(this.path).catch(() => null);
    if (s === null) {
      this.seen = "";
      this.current = { users: {} };
      return;
    }
    const seen = `${s.ino}:${s.mtimeMs}:${s.size}`;
    if (seen === this.seen) return;
    try {
      const parsed = LimitsFile.safeParse(JSON.parse(await readFile(this.path, "utf8")));
      if (!parsed.success) throw new Error(describeZodError(parsed.error));
      this.current = parsed.data;
      this.seen = seen;
    } catch (e) {
      // Keep the last good overrides: a hand-edited file with a typo must not lift every limit.
      this.logger.error("the limits file is unreadable; the previous limits stay in force", {
        file: this.path,
        error: String(e),
      });
    }
  }
}

/**
 * The checks, in the order api.ts runs them. `now` is the clock of the rate limit (tests pass a
 * literal one); `overrides` gives a user's admin overrides (the limits file).
 */
export class TenantLimiter {
  /** Times of each user's accepted submissions in the last minute. */
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly defaults: TenantLimits,
    private readonly overrides: (user: string) => Promise<Partial<TenantLimits>> = () => Promise.resolve({}),
    private readonly now: () => number = Date.now,
  ) {}

  async limitsOf(user: string): Promise<TenantLimits> {
    return { ...this.defaults, ...(await this.overrides(user)) };
  }

  /** Before parsing: the request's bytes. */
  checkSpecBytes(user: string, limits: TenantLimits, bytes: number): void {
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
  checkMaxPoints(user: string, limits: TenantLimits, points: number): void {
    if (points <= limits.maxPoints) return;
    throw refusal(user, limits, "maxPoints", `the task asks for ${points} points`, "ask for fewer");
  }

  /** Before logging the task: the submissions accepted in the last minute. */
  checkRate(user: string, limits: TenantLimits): void {
    const times = this.window(user);
    if (times.length < limits.submitsPerMinute) return;
    const waitS = Math.max(1, Math.ceil((times[0]! + RATE_WINDOW_MS - this.now()) / 1000));
    throw refusal(
      user,
      limits,
      "submitsPerMinute",
      `you submitted ${times.length} tasks in the last minute`,
      `try again in ${waitS} s`,
      true,
    );
  }

  /** Inside the commit queue: the user's running and paused tasks. */
  checkActive(user: string, limits: TenantLimits, active: number): void {
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
  checkDatasetQuota(
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

  /** Counts an accepted submission against the rate. */
  accepted(user: string): void {
    const times = this.window(user);
    times.push(this.now());
    this.recent.set(user, times);
  }

  private window(user: string): number[] {
    const since = this.now() - RATE_WINDOW_MS;
    const times = (this.recent.get(user) ?? []).filter((t) => t > since);
    if (times.length === 0) this.recent.delete(user);
    else this.recent.set(user, times);
    return times;
  }
}

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
