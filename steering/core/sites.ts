// The site policy's rules (which users a site accepts, the check of a submission's `site` field),
// pure over a policy that the shell reads from sites.json (security/sitePolicy.ts).
import { GridtuneError } from "../../protocol/errors.ts";
import type { SitePolicy } from "../security/sitePolicy.ts";

/** Whether `site` accepts work from `user` (false for a site without an entry). */
export function siteAccepts(p: SitePolicy, site: string, user: string): boolean {
  const a = Object.hasOwn(p.sites, site) ? p.sites[site] : undefined;
  if (!a) return false;
  if (a.all || a.users.includes(user)) return true;
  const groups = Object.hasOwn(p.users, user) ? (p.users[user]?.groups ?? []) : [];
  return a.groups.some((g) => groups.includes(g));
}

/** The sites that accept `user`, sorted. */
export function sitesOf(p: SitePolicy, user: string): string[] {
  return Object.keys(p.sites)
    .filter((s) => siteAccepts(p, s, user))
    .sort();
}

/**
 * Steering's check of a submission's `site` field. Returns the warnings for the submit reply (a
 * listed site, or every site of the user, with no agent registered now). Throws, naming the field
 * and the fix, for a site that does not exist (INVALID_ARGUMENT) or does not accept the user
 * (FORBIDDEN); both list the sites the user may use.
 */
export function checkSubmitSites(
  p: SitePolicy,
  user: string,
  sites: readonly string[] | undefined,
  live: ReadonlySet<string>,
): string[] {
  const mine = sitesOf(p, user);
  const yours =
    mine.length > 0
      ? `sites you may use: ${mine.join(", ")}`
      : `no site accepts your work yet: ask the operator (gridtune-steering admin set-site <site> --users ${user})`;
  const listed = sites ?? [];
  for (const s of listed) {
    if (!Object.hasOwn(p.sites, s))
      throw new GridtuneError(
        "INVALID_ARGUMENT",
        `site: there is no site "${s}"; ${yours}. Fix --site (or leave it out to use any of yours).`,
      );
    if (!siteAccepts(p, s, user))
      throw new GridtuneError(
        "FORBIDDEN",
        `site: site "${s}" does not accept work from user ${user}; ${yours}. Fix --site, or ask the operator to add you (gridtune-steering admin set-site ${s} --users …).`,
      );
  }
  if (listed.length === 0 && mine.length === 0) throw new GridtuneError("FORBIDDEN", `site: ${yours}`);
  const candidates = listed.length > 0 ? listed : mine;
  if (candidates.some((s) => live.has(s))) return [];
  return [
    `site: no agent of ${candidates.length === 1 ? "site" : "sites"} ${candidates.join(", ")} is registered now; ` +
      `the task waits until one registers (check --site, or ask the site's operator)`,
  ];
}
