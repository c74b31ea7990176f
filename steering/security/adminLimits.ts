// `gridtune-steering admin set-limits` and `admin limits`: an admin's per-user overrides of
// steering's default limits (docs/steering.md), in `<dir>/limits.json`, which steering reads again
// whenever it changes (GRIDTUNE_LIMITS_FILE; the embedded stack points it there). A file, not
// events in the log: the admin verbs work on the stack directory without a NATS connection, as the
// identity verbs do, and the file is durable (written atomically) and read at every start.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ValidationError } from "../../protocol/errors.ts";
import { validateIdentityName } from "../../protocol/identity.ts";
import { LIMIT_NAMES, TenantLimits } from "../core/limits.ts";
import { LimitsFile } from "../shell/limits.ts";
import { writeFileAtomic } from "./fsutil.ts";

export const limitsFilePath = (dir: string): string => join(dir, "limits.json");

export interface LimitsResult {
  file: string;
  user: string;
  /** The user's overrides after the change (absent limits are steering's defaults). */
  overrides: Partial<TenantLimits>;
}

export async function readLimitsFile(dir: string): Promise<LimitsFile> {
  const file = limitsFilePath(dir);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { users: {} };
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = null;
  }
  const r = LimitsFile.safeParse(raw);
  if (!r.success)
    throw new ValidationError("INVALID_CONFIG", `${file} is not a limits file: fix or remove it`);
  return r.data;
}

/**
 * Sets some of the user's limits (undefined: unchanged); `clear` first drops all their overrides.
 * Values must be positive integers.
 */
export async function setLimits(
  dir: string,
  user: string,
  change: Partial<Record<keyof TenantLimits, string | number | undefined>>,
  clear = false,
): Promise<LimitsResult> {
  validateIdentityName(user, "user");
  const parsed: Partial<TenantLimits> = {};
  for (const [key, raw] of Object.entries(change) as Array<
    [keyof TenantLimits, string | number | undefined]
  >) {
    if (raw === undefined) continue;
    const v = Number(raw);
    if (!TenantLimits.shape[key].safeParse(v).success)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `${LIMIT_NAMES[key].option} ${String(raw)}: give a positive whole number`,
      );
    parsed[key] = v;
  }
  const limits = await readLimitsFile(dir);
  const overrides = { ...(clear ? {} : limits.users[user]), ...parsed };
  if (Object.keys(overrides).length === 0) delete limits.users[user];
  else limits.users[user] = overrides;
  const file = limitsFilePath(dir);
  await writeFileAtomic(file, JSON.stringify(limits, null, 2) + "\n", 0o600);
  return { file, user, overrides };
}
