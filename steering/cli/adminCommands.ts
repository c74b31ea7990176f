// `gridtune-steering admin …`: onboarding and removal of sites, agents and users (docs/security.md).
// Callers must use `program.parseAsync()`: the actions are async.
import type { Command } from "commander";
import { homedir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "../../protocol/errors.ts";
import { agentIdentity, userIdentity } from "../../protocol/identity.ts";
import {
  type AdminIdentity,
  type AdminResult,
  addAgent,
  addSite,
  addSteering,
  addUser,
  listIdentities,
  parseAgentList,
  removeAgent,
  removeSite,
  readSitePolicy,
  removeUser,
  rotateIdentity,
  setSite,
  setUser,
  type SiteAccessChange,
} from "../security/admin.ts";
import { registerAdminDatasetCommands } from "./adminDatasets.ts";
import { readLimitsFile, setLimits, limitsFilePath } from "../security/adminLimits.ts";
import { parseNameList, parseRuntimes, type SitePolicy } from "../security/sitePolicy.ts";

export function defaultStackDir(): string {
  return process.env.GRIDTUNE_HOME || join(homedir(), ".local", "state", "gridtune", "stack");
}

interface AdminOpts {
  dir: string;
  json?: boolean;
}

function formatResult(r: AdminResult): string {
  const lines: string[] = [];
  for (const i of r.identities) {
    if (i.created) {
      lines.push(`created ${i.name} (${i.publicKey})`);
      lines.push(
        `  seed file to hand over: ${i.seedFile ?? "?"} (mode 0600; the only secret; delete it here once delivered)`,
      );
    } else {
      lines.push(`exists ${i.name} (${i.publicKey})${i.seedFile ? `; seed file ${i.seedFile}` : ""}`);
    }
  }
  for (const i of r.removed) lines.push(`removed ${i.name} (${i.publicKey})`);
  for (const [site, a] of Object.entries(r.sites ?? {})) lines.push(describeSite(site, a));
  for (const [user, u] of Object.entries(r.users ?? {}))
    lines.push(`user ${user}: groups ${u.groups.join(", ") || "(none)"}`);
  if (r.action === "set-site" || r.action === "set-user") {
    lines.push("sites.json written: steering applies it at its next check (within seconds)");
    return lines.join("\n");
  }
  lines.push(
    r.reloaded
      ? `nats-server reloaded ${r.configFile ?? ""}: changes are in force, removed identities are disconnected`
      : r.configFile
        ? `config rewritten (${r.configFile}); no running nats-server: it applies at the next start`
        : "no stack set up in this directory yet: the configuration is written at its first start",
  );
  return lines.join("\n");
}

function describeSite(site: string, a: SitePolicy["sites"][string]): string {
  const who = a.all
    ? "all users"
    : [...a.users.map((u) => `user ${u}`), ...a.groups.map((g) => `group ${g}`)].join(", ") || "nobody";
  return `site ${site}: accepts ${who}; runtimes ${a.runtimes.join(", ")}`;
}

function formatPolicy(p: SitePolicy): string {
  const lines = Object.entries(p.sites).map(([s, a]) => describeSite(s, a));
  for (const [user, u] of Object.entries(p.users)) lines.push(`user ${user}: groups ${u.groups.join(", ")}`);
  return lines.length > 0 ? lines.join("\n") : "no site policy yet (no site accepts any work)";
}

interface AccessFlags {
  users?: string;
  groups?: string;
  all?: boolean;
  runtimes?: string;
}

/** --users/--groups/--all/--runtimes as a policy change; --all with a list is contradictory. */
function accessChange(o: AccessFlags): SiteAccessChange {
  if (o.all === true && (o.users !== undefined || o.groups !== undefined))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      "--all accepts every user: pass it without --users/--groups (or drop it to name them)",
    );
  return {
    ...(o.users !== undefined ? { users: parseNameList(o.users, "--users") } : {}),
    ...(o.groups !== undefined ? { groups: parseNameList(o.groups, "--groups") } : {}),
    ...(o.all !== undefined ? { all: o.all } : {}),
    ...(o.runtimes !== undefined ? { runtimes: parseRuntimes(o.runtimes) } : {}),
  };
}

function accessOptions(cmd: Command): Command {
  return cmd
    .option("--users <list>", "users who may send the site work, e.g. alice,bob (replaces the list)")
    .option("--groups <list>", "groups whose users may send the site work (replaces the list)")
    .option("--all", "every user may send the site work (refused with the process runtime)")
    .option("--no-all", "only the named users and groups")
    .option("--runtimes <list>", "runtimes the site's agents may use: docker, process (default docker)");
}

function formatList(ids: AdminIdentity[]): string {
  if (ids.length === 0) return "no identities";
  return ids
    .map((i) => `${i.name.padEnd(40)} ${i.publicKey}${i.seedFile ? `  seed: ${i.seedFile}` : ""}`)
    .join("\n");
}

export interface AdminCommandsOptions {
  /** Where results go; default stdout. */
  write?: (text: string) => void;
  /** The environment `admin dataset` reads S3 settings from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export function registerAdminCommands(program: Command, options: AdminCommandsOptions = {}): Command {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const admin = program
    .command("admin")
    .description("manage NATS identities: sites, agents and users (nkey users, reloaded without restart)")
    .option("--dir <dir>", "stack state directory (env GRIDTUNE_HOME)", defaultStackDir())
    .option("--json", "print JSON");

  const run =
    (cmd: Command, fn: (dir: string) => Promise<AdminResult | AdminIdentity[] | SitePolicy>) => async () => {
      const opts = cmd.optsWithGlobals<AdminOpts>();
      const result = await fn(opts.dir);
      const text = opts.json
        ? JSON.stringify(result, null, 2)
        : Array.isArray(result)
          ? formatList(result)
          : "version" in result
            ? formatPolicy(result)
            : formatResult(result);
      write(text + "\n");
    };

  const addSiteCmd = accessOptions(
    admin
      .command("add-site <site>")
      .description("add a site with its agents (default one agent: a1) and who may send it work")
      .option("--agents <list>", "comma-separated agent names, e.g. a1,a2"),
  );
  addSiteCmd.action((site: string, o: AccessFlags & { agents?: string }) =>
    run(addSiteCmd, (dir) =>
      addSite(dir, site, o.agents === undefined ? undefined : parseAgentList(o.agents), accessChange(o)),
    )(),
  );
  const setSiteCmd = accessOptions(
    admin.command("set-site <site>").description("change who may send a site work and its runtimes"),
  );
  setSiteCmd.action((site: string, o: AccessFlags) =>
    run(setSiteCmd, (dir) => setSite(dir, site, accessChange(o)))(),
  );
  const sitesCmd = admin.command("sites").description("show the site policy: who may use each site");
  sitesCmd.action(() => run(sitesCmd, (dir) => readSitePolicy(dir))());
  const addAgentCmd = admin.command("add-agent <site> <agent>").description("add an agent to a site");
  addAgentCmd.action((site: string, agent: string) =>
    run(addAgentCmd, (dir) => addAgent(dir, site, agent))(),
  );
  const rmAgentCmd = admin
    .command("remove-agent <site> <agent>")
    .description("remove an agent; it is disconnected");
  rmAgentCmd.action((site: string, agent: string) =>
    run(rmAgentCmd, (dir) => removeAgent(dir, site, agent))(),
  );
  const rmSiteCmd = admin.command("remove-site <site>").description("remove every agent of a site");
  rmSiteCmd.action((site: string) => run(rmSiteCmd, (dir) => removeSite(dir, site))());
  const addUserCmd = admin
    .command("add-user <user>")
    .description("add a phpo user")
    .option("--groups <list>", "the user's groups, e.g. atlas,hpo");
  addUserCmd.action((user: string, o: { groups?: string }) =>
    run(addUserCmd, (dir) =>
      addUser(dir, user, o.groups === undefined ? undefined : parseNameList(o.groups, "--groups")),
    )(),
  );
  const setUserCmd = admin
    .command("set-user <user>")
    .description("replace a user's groups")
    .requiredOption("--groups <list>", "the user's groups (empty string: none)");
  setUserCmd.action((user: string, o: { groups: string }) =>
    run(setUserCmd, (dir) => setUser(dir, user, parseNameList(o.groups, "--groups")))(),
  );
  const rmUserCmd = admin
    .command("remove-user <user>")
    .description("remove a user; their connections are closed");
  rmUserCmd.action((user: string) => run(rmUserCmd, (dir) => removeUser(dir, user))());
  const rotAgentCmd = admin.command("rotate-agent <site> <agent>").description("new key pair for an agent");
  rotAgentCmd.action((site: string, agent: string) =>
    run(rotAgentCmd, (dir) => rotateIdentity(dir, agentIdentity(site, agent)))(),
  );
  const rotUserCmd = admin.command("rotate-user <user>").description("new key pair for a user");
  rotUserCmd.action((user: string) => run(rotUserCmd, (dir) => rotateIdentity(dir, userIdentity(user)))());
  const addSteeringCmd = admin
    .command("add-steering")
    .description("make steering's identities: steering (JetStream) and steering-api (serves requests)");
  addSteeringCmd.action(() => run(addSteeringCmd, (dir) => addSteering(dir))());
  const listCmd = admin.command("list").description("list identities and their public keys");
  listCmd.action(() => run(listCmd, (dir) => listIdentities(dir))());

  const setLimitsCmd = admin
    .command("set-limits <user>")
    .description("override a user's limits (steering reads them at once; see docs/steering.md)")
    .option("--active-tasks <n>", "tasks running or paused at once")
    .option("--max-points <n>", "points of one task")
    .option("--spec-bytes <n>", "bytes of a submitted spec")
    .option("--submits-per-minute <n>", "submissions in any minute")
    .option("--dataset-bytes <n>", "bytes of all the user's datasets (phpo dataset put)")
    .option("--dataset-files <n>", "files of all the user's datasets")
    .option("--clear", "drop the user's overrides first (back to steering's defaults)");
  setLimitsCmd.action(async (user: string, o: Record<string, string | boolean | undefined>) => {
    const opts = setLimitsCmd.optsWithGlobals<AdminOpts>();
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const r = await setLimits(
      opts.dir,
      user,
      {
        activeTasks: str(o.activeTasks),
        maxPoints: str(o.maxPoints),
        specBytes: str(o.specBytes),
        submitsPerMinute: str(o.submitsPerMinute),
        datasetBytes: str(o.datasetBytes),
        datasetFiles: str(o.datasetFiles),
      },
      o.clear === true,
    );
    write(
      opts.json
        ? JSON.stringify(r, null, 2) + "\n"
        : `limits of ${r.user}: ${JSON.stringify(r.overrides)} (others: steering's defaults) in ${r.file}\n`,
    );
  });
  const limitsCmd = admin.command("limits").description("list the users' limit overrides");
  limitsCmd.action(async () => {
    const opts = limitsCmd.optsWithGlobals<AdminOpts>();
    const limits = await readLimitsFile(opts.dir);
    const users = Object.entries(limits.users);
    write(
      opts.json
        ? JSON.stringify(limits, null, 2) + "\n"
        : users.length === 0
          ? `no overrides in ${limitsFilePath(opts.dir)}: every user has steering's defaults\n`
          : users.map(([u, l]) => `${u.padEnd(32)} ${JSON.stringify(l)}`).join("\n") + "\n",
    );
  });
  registerAdminDatasetCommands(admin, write, options.env);
  return admin;
}
