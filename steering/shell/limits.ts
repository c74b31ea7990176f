// Per-user limits, the shell's part: reading the admin's overrides from the limits file (the rules
// themselves are pure, core/limits.ts). A user's limits are steering's defaults with that user's
// overrides on top, read again whenever the file changes.
import { readFile, stat } from "node:fs/promises";
import { z } from "zod";
import { describeZodError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import { TenantLimits } from "../core/limits.ts";

/** The limits file an admin writes (`gridtune-steering admin set-limits`): overrides per user. */
export const LimitsFile = z.object({
  users: z.record(z.string(), TenantLimits.partial().strict()),
});
export type LimitsFile = z.infer<typeof LimitsFile>;

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

/** A user's limits: steering's defaults, then the admin's overrides for that user. */
export class TenantLimitsReader {
  constructor(
    private readonly defaults: TenantLimits,
    private readonly overrides: (user: string) => Promise<Partial<TenantLimits>> = () => Promise.resolve({}),
  ) {}

  async limitsOf(user: string): Promise<TenantLimits> {
    return { ...this.defaults, ...(await this.overrides(user)) };
  }
}
