// Which users may send work to which site, and which runtimes a site offers: `<dir>/sites.json`
// (0600, next to identities.json), written by `gridtune-steering admin add-site/set-site/add-user/
// set-user` and read by steering (SitePolicyFile) at each submission, registration and lease tick.
// A site accepts a user named in its `users`, a member of one of its `groups`, or anyone when
// `all`. The process runtime runs payloads unconfined as the agent's own user on the host, so a
// site that offers it must name the users it trusts: `all` together with "process" is refused.
// A site without an entry accepts nobody (closed by default).
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ValidationError, describeZodError } from "../../protocol/errors.ts";
import { IdentityName } from "../../protocol/identity.ts";
import { ensurePrivateDir, writeFileAtomic } from "./fsutil.ts";

// The pure rules over a policy live in core/sites.ts (the decider uses them); importers keep this path.
export { checkSubmitSites, siteAccepts, sitesOf } from "../core/sites.ts";

export const SiteRuntime = z.enum(["docker", "process"]);
export type SiteRuntime = z.infer<typeof SiteRuntime>;

const PROCESS_NEEDS_NAMES =
  'a site offering the process runtime runs payloads unconfined on its hosts: name the users it trusts (--users/--groups) instead of "all"';

export const SiteAccess = z
  .object({
    users: z.array(IdentityName),
    groups: z.array(IdentityName),
    all: z.boolean(),
    runtimes: z.array(SiteRuntime).min(1, "a site offers at least one runtime (docker, process)"),
  })
  .strict()
  .refine((a) => !(a.all && a.runtimes.includes("process")), { message: PROCESS_NEEDS_NAMES });
export type SiteAccess = z.infer<typeof SiteAccess>;

export const UserGroups = z.object({ groups: z.array(IdentityName) }).strict();
export type UserGroups = z.infer<typeof UserGroups>;

export const SitePolicy = z
  .object({
    version: z.literal(1),
    sites: z.record(IdentityName, SiteAccess),
    users: z.record(IdentityName, UserGroups),
  })
  .strict();
export type SitePolicy = z.infer<typeof SitePolicy>;

export const EMPTY_POLICY: SitePolicy = { version: 1, sites: {}, users: {} };

export const sitePolicyFile = (dir: string): string => join(dir, "sites.json");

/** Parses "a,b" (the --users/--groups/--runtimes options); empty entries dropped, duplicates removed. */
export function parseNameList(list: string, option: string): string[] {
  const names = [
    ...new Set(
      list
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== ""),
    ),
  ];
  const r = z.array(IdentityName).safeParse(names);
  if (!r.success)
    throw new ValidationError("INVALID_NAME", `${option} "${list}":\n${describeZodError(r.error, option)}`);
  return r.data;
}

export function parseRuntimes(list: string): SiteRuntime[] {
  const names = parseNameList(list, "--runtimes");
  const r = z.array(SiteRuntime).min(1).safeParse(names);
  if (!r.success)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--runtimes "${list}" must list docker and/or process, e.g. --runtimes docker`,
    );
  return r.data;
}

function parsePolicy(json: unknown, file: string): SitePolicy {
  const r = SitePolicy.safeParse(json);
  if (!r.success)
    throw new ValidationError("INVALID_CONFIG", `${file} is invalid:\n${describeZodError(r.error)}`);
  return r.data;
}

async function readPolicy(file: string): Promise<SitePolicy> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return EMPTY_POLICY;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError("INVALID_CONFIG", `${file} is not valid JSON; restore it from a backup`, {
      cause: err,
    });
  }
  return parsePolicy(json, file);
}

/** The admin side: read-modify-write of sites.json, serialised within this process. */
export class SitePolicyStore {
  readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.file = sitePolicyFile(dir);
  }

  read(): Promise<SitePolicy> {
    return readPolicy(this.file);
  }

  /** Applies `change` to a copy of the policy, validates the result and writes it atomically. */
  update<T>(change: (p: SitePolicy) => T): Promise<{ policy: SitePolicy; value: T }> {
    const run = this.queue.then(async () => {
      const p = structuredClone(await this.read());
      const value = change(p);
      const r = SitePolicy.safeParse(p);
      if (!r.success)
        throw new ValidationError(
          "INVALID_CONFIG",
          `refused, nothing was written (${this.file} keeps its policy):\n${describeZodError(r.error)}`,
        );
      const policy = r.data;
      await ensurePrivateDir(this.dir);
      await writeFileAtomic(this.file, JSON.stringify(policy, null, 2) + "\n", 0o600);
      return { policy, value };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * Steering's view of sites.json: `current()` is synchronous (the dispatcher asks on every pump);
 * `refresh()` re-reads the file when its mtime or size changed. A file that becomes invalid is
 * logged and the last good policy kept, so an admin's typo never stops steering.
 */
export class SitePolicyFile {
  private policy: SitePolicy = EMPTY_POLICY;
  private seen = "";

  constructor(
    readonly file: string,
    private readonly onInvalid: (e: Error) => void,
  ) {}

  current(): SitePolicy {
    return this.policy;
  }

  /** The first read: an invalid file is an error here (steering does not start on it). */
  async load(): Promise<SitePolicy> {
    this.policy = await readPolicy(this.file);
    this.seen = await this.stamp();
    return this.policy;
  }

  async refresh(): Promise<SitePolicy> {
    const stamp = await this.stamp().catch(() => this.seen);
    if (stamp === this.seen) return this.policy;
    try {
      this.policy = await readPolicy(this.file);
      this.seen = stamp;
    } catch (e) {
      this.seen = stamp; // reported once per change, not on every refresh
      this.onInvalid(e instanceof Error ? e : new Error(String(e)));
    }
    return this.policy;
  }

  private async stamp(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.mtimeMs}/${s.size}/${s.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
      throw err;
    }
  }
}
