// The admin operations behind `gridtune-steering admin …`: add or remove sites, agents and users,
// rotate keys, list. Each one validates names, updates the identity store, rewrites nats.conf and
// reloads the running nats-server (pid file, SIGHUP): no restart, and a removed identity's live
// connections are closed at once. New identities come back with the path of their seed file, to
// hand over; the seed itself is never printed.
import { access } from "node:fs/promises";
import { GridtuneError, ValidationError } from "../../protocol/errors.ts";
import {
  type Identity,
  agentIdentity,
  connectionName,
  identityId,
  steeringApiIdentity,
  steeringIdentity,
  userIdentity,
  validateIdentityName,
} from "../../protocol/identity.ts";
import { IdentityStore, type IdentityRecord } from "./identities.ts";
import { clusterNodeDirs, natsFiles, reloadRunningServer, writeConfigFromStore } from "./natsServer.ts";
import { SitePolicyStore, type SiteAccess, type SitePolicy } from "./sitePolicy.ts";

export interface AdminIdentity {
  id: string;
  name: string;
  identity: Identity;
  publicKey: string;
  /** Present for identities made or rotated by this call: the file to hand over (0600). */
  seedFile?: string;
  created?: boolean;
}

export interface AdminResult {
  action: string;
  identities: AdminIdentity[];
  removed: AdminIdentity[];
  /** True when a running nats-server reloaded the new configuration. */
  reloaded: boolean;
  /** Set when the config was rewritten (absent before the stack's first start). */
  configFile?: string;
  /** The site policy entries this call wrote (sites.json; steering reads it on its next check). */
  sites?: Record<string, SiteAccess>;
  /** The user groups this call wrote. */
  users?: Record<string, { groups: string[] }>;
}

/** What `add-site`/`set-site` may say about who may send the site work and what it runs. */
export type SiteAccessChange = Partial<SiteAccess>;

/** A new site accepts nobody and offers docker until the operator says otherwise. */
const CLOSED_SITE: SiteAccess = { users: [], groups: [], all: false, runtimes: ["docker"] };

const hasChange = (c: SiteAccessChange): boolean => Object.values(c).some((v) => v !== undefined);

/** Applies a change to an entry: `--users`/`--groups` name the site's users, so they clear `all`. */
function changeAccess(before: SiteAccess, c: SiteAccessChange): SiteAccess {
  const named = c.users !== undefined || c.groups !== undefined;
  return {
    users: c.users ?? before.users,
    groups: c.groups ?? before.groups,
    all: c.all ?? (named ? false : before.all),
    runtimes: c.runtimes ?? before.runtimes,
  };
}

const siteEntry = (p: SitePolicy, site: string): SiteAccess | undefined =>
  Object.hasOwn(p.sites, site) ? p.sites[site] : undefined;

const describeRecord = (r: IdentityRecord, extra: Partial<AdminIdentity> = {}): AdminIdentity => ({
  id: identityId(r.identity),
  name: connectionName(r.identity),
  identity: r.identity,
  publicKey: r.publicKey,
  ...extra,
});

/**
 * Rewrites the config and reloads the server when the stack has been set up in `dir`, and each
 * node of its local NATS cluster (gridtune-stack --nats-cluster) the same way.
 */
async function apply(dir: string, store: IdentityStore): Promise<{ reloaded: boolean; configFile?: string }> {
  let reloaded = false;
  let configFile: string | undefined;
  for (const d of [dir, ...(await clusterNodeDirs(dir))]) {
    try {
      await access(natsFiles(d).settingsFile);
    } catch {
      continue; // never started: the next start renders the config from the store
    }
    const file = await writeConfigFromStore(d, store);
    configFile ??= file;
    if (await reloadRunningServer(d)) reloaded = true;
  }
  return { reloaded, ...(configFile ? { configFile } : {}) };
}

async function addIdentities(dir: string, action: string, ids: Identity[]): Promise<AdminResult> {
  const store = new IdentityStore(dir);
  const identities: AdminIdentity[] = [];
  for (const id of ids) {
    const r = await store.ensure(id);
    identities.push(describeRecord(r.record, { seedFile: r.seedFile, created: r.created }));
  }
  return { action, identities, removed: [], ...(await apply(dir, store)) };
}

async function removeIdentities(
  dir: string,
  action: string,
  what: string,
  remove: (s: IdentityStore) => Promise<IdentityRecord[]>,
): Promise<AdminResult> {
  const store = new IdentityStore(dir);
  const removed = await remove(store);
  if (removed.length === 0) {
    throw new GridtuneError(
      "NOT_FOUND",
      `${what} is not registered in ${dir}; see \`gridtune-steering admin list\``,
    );
  }
  return {
    action,
    identities: [],
    removed: removed.map((r) => describeRecord(r)),
    ...(await apply(dir, store)),
  };
}

/** Parses "a1,a2" (the --agents option); duplicates and bad names are refused. */
export function parseAgentList(list: string): string[] {
  const agents = list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (agents.length === 0) throw new ValidationError("INVALID_ARGUMENT", `--agents "${list}" names no agent`);
  agents.forEach((a) => validateIdentityName(a, "agent"));
  if (new Set(agents).size !== agents.length) {
    throw new ValidationError("INVALID_ARGUMENT", `--agents "${list}" names an agent twice`);
  }
  return agents;
}

/**
 * Adds a site with its agents (default one agent, `a1`) and its policy entry: who may send it work
 * and which runtimes it offers. A new site without options accepts nobody (docker only); an
 * existing entry is kept unless options are given.
 */
export async function addSite(
  dir: string,
  site: string,
  agents: string[] = ["a1"],
  access: SiteAccessChange = {},
): Promise<AdminResult> {
  validateIdentityName(site, "site");
  const { policy } = await new SitePolicyStore(dir).update((p) => {
    const before = siteEntry(p, site);
    if (!before || hasChange(access)) p.sites[site] = changeAccess(before ?? CLOSED_SITE, access);
  });
  const r = await addIdentities(
    dir,
    "add-site",
    agents.map((a) => agentIdentity(site, a)),
  );
  return { ...r, sites: { [site]: policy.sites[site]! } };
}

/** Changes who may send work to a known site, and which runtimes it offers. */
export async function setSite(dir: string, site: string, access: SiteAccessChange): Promise<AdminResult> {
  validateIdentityName(site, "site");
  if (!hasChange(access))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      "set-site changes nothing: pass --users, --groups, --all/--no-all or --runtimes",
    );
  const agents = (await new IdentityStore(dir).list()).some(
    (r) => r.identity.role === "agent" && r.identity.site === site,
  );
  const { policy } = await new SitePolicyStore(dir).update((p) => {
    const before = siteEntry(p, site);
    if (!before && !agents)
      throw new GridtuneError("NOT_FOUND", `site ${site} does not exist; add it with admin add-site ${site}`);
    p.sites[site] = changeAccess(before ?? CLOSED_SITE, access);
  });
  return {
    action: "set-site",
    identities: [],
    removed: [],
    reloaded: false,
    sites: { [site]: policy.sites[site]! },
  };
}

/** Sets a user's groups (replacing the previous ones). */
async function writeGroups(
  dir: string,
  user: string,
  groups: string[],
): Promise<Record<string, { groups: string[] }>> {
  await new SitePolicyStore(dir).update((p) => {
    if (groups.length === 0) delete p.users[user];
    else p.users[user] = { groups };
  });
  return { [user]: { groups } };
}

export const addAgent = (dir: string, site: string, agent: string): Promise<AdminResult> =>
  addIdentities(dir, "add-agent", [agentIdentity(site, agent)]);

/**
 * Steering's two identities, `steering` (JetStream work) and `steering-api` (serves requests,
 * publishes only into inboxes); idempotent. A deployment from before the split runs this once and
 * passes the new seed to steering (--api-seed-file).
 */
export const addSteering = (dir: string): Promise<AdminResult> =>
  addIdentities(dir, "add-steering", [steeringIdentity(), steeringApiIdentity()]);

/** Adds a phpo user, with the groups given (unchanged when none are given). */
export async function addUser(dir: string, user: string, groups?: string[]): Promise<AdminResult> {
  const r = await addIdentities(dir, "add-user", [userIdentity(user)]);
  return groups === undefined ? r : { ...r, users: await writeGroups(dir, user, groups) };
}

/** Replaces a known user's groups. */
export async function setUser(dir: string, user: string, groups: string[]): Promise<AdminResult> {
  if (!(await new IdentityStore(dir).get(userIdentity(user))))
    throw new GridtuneError("NOT_FOUND", `user ${user} does not exist; add it with admin add-user ${user}`);
  return {
    action: "set-user",
    identities: [],
    removed: [],
    reloaded: false,
    users: await writeGroups(dir, user, groups),
  };
}

export function removeAgent(dir: string, site: string, agent: string): Promise<AdminResult> {
  const id = agentIdentity(site, agent);
  return removeIdentities(dir, "remove-agent", `agent ${site}/${agent}`, (s) => s.remove(id));
}

/** Removes every agent of the site and its policy entry. */
export async function removeSite(dir: string, site: string): Promise<AdminResult> {
  validateIdentityName(site, "site");
  const r = await removeIdentities(dir, "remove-site", `site ${site}`, (s) => s.removeSite(site));
  await new SitePolicyStore(dir).update((p) => delete p.sites[site]);
  return r;
}

/** Removes the user, their groups and their name from every site's list. */
export async function removeUser(dir: string, user: string): Promise<AdminResult> {
  const id = userIdentity(user);
  const r = await removeIdentities(dir, "remove-user", `user ${user}`, (s) => s.remove(id));
  await new SitePolicyStore(dir).update((p) => {
    delete p.users[user];
    for (const a of Object.values(p.sites)) a.users = a.users.filter((u) => u !== user);
  });
  return r;
}

/** The site policy (sites.json) as it is now. */
export const readSitePolicy = (dir: string): Promise<SitePolicy> => new SitePolicyStore(dir).read();

/**
 * New key pair for an existing identity. After the reload the old seed is refused and its live
 * connections are closed; processes using connectNats re-read the seed file when they reconnect.
 */
export async function rotateIdentity(dir: string, identity: Identity): Promise<AdminResult> {
  const store = new IdentityStore(dir);
  const r = await store.rotate(identity);
  return {
    action: "rotate",
    identities: [describeRecord(r.record, { seedFile: r.seedFile, created: true })],
    removed: [],
    ...(await apply(dir, store)),
  };
}

export async function listIdentities(dir: string): Promise<AdminIdentity[]> {
  const store = new IdentityStore(dir);
  const out: AdminIdentity[] = [];
  for (const r of await store.list()) {
    const seedFile = store.seedFile(r.identity);
    const present = await access(seedFile).then(
      () => true,
      () => false,
    );
    out.push(describeRecord(r, present ? { seedFile } : {}));
  }
  return out;
}
