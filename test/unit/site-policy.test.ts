// The site policy (sites.json): who a site accepts (users, groups, all), the submit check's errors
// and warning, the refusal of "all" together with the process runtime, the admin verbs that write
// it, and steering's reloading reader that keeps the last good policy over a broken file.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { pickSite } from "../../steering/core/agentRegistry.ts";
import {
  addSite,
  addUser,
  readSitePolicy,
  removeUser,
  setSite,
  setUser,
} from "../../steering/security/admin.ts";
import {
  checkSubmitSites,
  SitePolicy,
  SitePolicyFile,
  siteAccepts,
  sitesOf,
} from "../../steering/security/sitePolicy.ts";

const policy: SitePolicy = {
  version: 1,
  sites: {
    cern: { users: ["alice"], groups: ["atlas"], all: false, runtimes: ["docker", "process"] },
    cloud: { users: [], groups: [], all: true, runtimes: ["docker"] },
    closed: { users: [], groups: [], all: false, runtimes: ["docker"] },
  },
  users: { bob: { groups: ["atlas"] }, carol: { groups: ["cms"] } },
};

const refused = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof GridtuneError);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
  return true;
};

void describe("site policy", () => {
  void it("a site accepts its users, its groups' members, or everyone with all; unknown sites nobody", () => {
    assert.ok(siteAccepts(policy, "cern", "alice"));
    assert.ok(siteAccepts(policy, "cern", "bob"), "bob is in group atlas");
    assert.ok(!siteAccepts(policy, "cern", "carol"));
    assert.ok(siteAccepts(policy, "cloud", "carol"));
    assert.ok(!siteAccepts(policy, "closed", "alice"));
    assert.ok(!siteAccepts(policy, "nowhere", "alice"));
    assert.ok(!siteAccepts(policy, "constructor", "alice"), "no prototype key is a site");
    assert.deepEqual(sitesOf(policy, "carol"), ["cloud"]);
  });

  void it("all together with the process runtime is refused", () => {
    const bad = structuredClone(policy);
    bad.sites.cloud!.runtimes = ["docker", "process"];
    const r = SitePolicy.safeParse(bad);
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error?.issues), /name the users it trusts/);
  });

  void it("the submit check: unknown site, a site that refuses the user, no agent (a warning)", () => {
    const live = new Set(["cern", "cloud"]);
    assert.throws(
      () => checkSubmitSites(policy, "carol", ["nowhere"], live),
      refused("INVALID_ARGUMENT", /^site: there is no site "nowhere"; sites you may use: cloud\./),
    );
    assert.throws(
      () => checkSubmitSites(policy, "carol", ["cern"], live),
      refused(
        "FORBIDDEN",
        /^site: site "cern" does not accept work from user carol; sites you may use: cloud/,
      ),
    );
    const nobody: SitePolicy = { ...policy, sites: { closed: policy.sites.closed! } };
    assert.throws(
      () => checkSubmitSites(nobody, "carol", undefined, live),
      refused("FORBIDDEN", /no site accepts/),
    );
    assert.deepEqual(checkSubmitSites(policy, "bob", ["cern"], live), []);
    assert.deepEqual(checkSubmitSites(policy, "bob", undefined, new Set()), [
      "site: no agent of sites cern, cloud is registered now; the task waits until one registers (check --site, or ask the site's operator)",
    ]);
  });

  void it("pickSite skips the sites that do not accept the task's user", () => {
    const capacity = new Map([
      ["cern", 8],
      ["closed", 100],
    ]);
    const accepts = (s: string) => siteAccepts(policy, s, "alice");
    assert.equal(pickSite(capacity, new Map(), undefined, accepts), "cern");
    assert.equal(
      pickSite(capacity, new Map(), undefined, (s) => siteAccepts(policy, s, "carol")),
      null,
    );
  });
});

void describe("admin site policy verbs", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "gridtune-policy-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  void it("add-site is closed by default; set-site and groups change it; remove-user cleans up", async () => {
    const r = await addSite(dir, "cern", ["a1"]);
    assert.deepEqual(r.sites?.cern, { users: [], groups: [], all: false, runtimes: ["docker"] });
    await addSite(dir, "hpc", ["a1"], { users: ["alice"], runtimes: ["process"] });
    await assert.rejects(
      setSite(dir, "hpc", { all: true }),
      (e: unknown) =>
        e instanceof GridtuneError && e.code === "INVALID_CONFIG" && /name the users/.test(e.message),
    );
    await setSite(dir, "cern", { groups: ["atlas"] });
    await addUser(dir, "bob", ["atlas"]);
    let p = await readSitePolicy(dir);
    assert.ok(siteAccepts(p, "cern", "bob"));
    await setUser(dir, "bob", []);
    p = await readSitePolicy(dir);
    assert.ok(!siteAccepts(p, "cern", "bob"));
    await addUser(dir, "alice");
    await removeUser(dir, "alice");
    p = await readSitePolicy(dir);
    assert.deepEqual(p.sites.hpc?.users, [], "a removed user is no longer on any site");
    await assert.rejects(
      setSite(dir, "nowhere", { all: true }),
      (e: unknown) => e instanceof GridtuneError && e.code === "NOT_FOUND",
    );
  });

  void it("steering's reader keeps the last good policy when the file turns invalid", async () => {
    const errors: Error[] = [];
    const f = new SitePolicyFile(join(dir, "sites.json"), (e) => errors.push(e));
    const first = await f.load();
    assert.ok(Object.hasOwn(first.sites, "cern"));
    await writeFile(join(dir, "sites.json"), "{ not json");
    const kept = await f.refresh();
    assert.equal(kept, first);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /not valid JSON/);
  });
});
