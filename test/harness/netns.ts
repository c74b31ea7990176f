// Sites on their own networks, for integration tests: each site gets a Linux network namespace
// whose only link is a veth pair to a bridge on the host. The bridge carries the hub address that
// the test stack's NATS and S3 listen on (StackOptions.listenHost), so an agent started in a
// namespace reaches the hub over a real link, and `cut(site)` / `restore(site)` take that link down
// and up. Addresses come from 10.213.<n>.0/24 with <n> chosen per run among the unused ones; a
// namespace has no default route, so nothing it sends can leave the machine, and the host's
// replies to a cut site end at the bridge. Needs root and a kernel that allows namespaces
// (`netnsSupport` says why not, for a skip with a reason).
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { agentIdentity } from "../../protocol/identity.ts";
import { addSite } from "../../steering/security/admin.ts";
import { ROOT, type EmbeddedStack } from "../../stack/embedded.ts";

const run = promisify(execFile);

/** Runs `ip ...`; a failure names the command and what ip said. */
async function ip(...args: string[]): Promise<string> {
  try {
    return (await run("ip", args)).stdout;
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim() ?? String(e);
    throw new Error(`ip ${args.join(" ")} failed: ${stderr}`, { cause: e });
  }
}

/** Whether this machine lets the tests make namespaces; the reason when it does not. */
export async function netnsSupport(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (process.platform !== "linux") return { ok: false, reason: "network namespaces need Linux" };
  if (process.getuid?.() !== 0) return { ok: false, reason: "network namespaces need root (ip netns add)" };
  if (spawnSync("ip", ["-V"]).error)
    return {
      ok: false,
      reason: "the ip command is missing (Debian package iproute2; npm run setup installs it)",
    };
  const probe = `gridtune-probe-${randomBytes(3).toString("hex")}`;
  try {
    await ip("netns", "add", probe);
    await ip("link", "add", `${probe.slice(-6)}b`, "type", "bridge");
    await ip("link", "del", `${probe.slice(-6)}b`);
  } catch (e) {
    return { ok: false, reason: `the kernel refuses: ${(e as Error).message}` };
  } finally {
    spawnSync("ip", ["netns", "del", probe]);
  }
  return { ok: true };
}

export interface SiteNet {
  site: string;
  /** The namespace's name (`ip netns exec <ns> ...`). */
  ns: string;
  /** The host end of the veth pair (a bridge port): down while the site is cut. */
  hostVeth: string;
  /** The site's address inside its namespace. */
  address: string;
}

export interface NetnsLab {
  /** The address on the host's bridge: NATS and S3 of the test stack listen here. */
  hub: string;
  /** The host's bridge that carries the hub address and the sites' veth ends. */
  bridge: string;
  sites: ReadonlyMap<string, SiteNet>;
  /** Takes the site's link down: its packets go nowhere (nothing is refused, as on a broken WAN). */
  cut(site: string): Promise<void>;
  restore(site: string): Promise<void>;
  /** Kills what still runs in the namespaces and removes them, their links and the bridge. */
  teardown(): Promise<void>;
}

/** A third octet of 10.213.x.0/24 that no address or route of this host uses now. */
async function freeSubnet(): Promise<number> {
  const used = (await ip("-4", "-o", "addr", "show")) + (await ip("-4", "route", "show", "table", "all"));
  for (let i = 0; i < 64; i++) {
    const n = 16 + (randomBytes(1)[0]! % 232);
    if (!used.includes(`10.213.${n}.`)) return n;
  }
  throw new Error("no free 10.213.x.0/24 subnet for the test namespaces");
}

/**
 * Makes a bridge with the hub address and one namespace per site, each joined to the bridge by a
 * veth pair. Whatever was made is removed again if a step fails, and when the process exits
 * without teardown (a crashed test).
 */
export async function createNetnsLab(siteNames: string[]): Promise<NetnsLab> {
  const id = randomBytes(2).toString("hex");
  const n = await freeSubnet();
  const bridge = `gt${id}br`;
  const hub = `10.213.${n}.1`;
  const sites = new Map<string, SiteNet>(
    siteNames.map((site, i) => [
      site,
      { site, ns: `gridtune-${id}-s${i}`, hostVeth: `gt${id}h${i}`, address: `10.213.${n}.${10 + i}` },
    ]),
  );
  const nsVeth = (s: SiteNet) => s.hostVeth.replace(/h(\d+)$/, "n$1");
  // Synchronous, so that it also runs from process.on("exit").
  const removeAll = () => {
    for (const s of sites.values()) {
      killAllIn(s.ns);
      spawnSync("ip", ["netns", "del", s.ns]); // removes its veth end, and with it the pair
      spawnSync("ip", ["link", "del", s.hostVeth]);
    }
    spawnSync("ip", ["link", "del", bridge]);
  };
  process.once("exit", removeAll);
  try {
    await ip("link", "add", bridge, "type", "bridge");
    await ip("addr", "add", `${hub}/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (const s of sites.values()) {
      await ip("netns", "add", s.ns);
      await ip("link", "add", s.hostVeth, "type", "veth", "peer", "name", nsVeth(s));
      await ip("link", "set", nsVeth(s), "netns", s.ns);
      await ip("link", "set", s.hostVeth, "master", bridge);
      await ip("link", "set", s.hostVeth, "up");
      await ip("-n", s.ns, "addr", "add", `${s.address}/24`, "dev", nsVeth(s));
      await ip("-n", s.ns, "link", "set", nsVeth(s), "up");
      await ip("-n", s.ns, "link", "set", "lo", "up");
    }
  } catch (e) {
    removeAll();
    process.removeListener("exit", removeAll);
    throw e;
  }
  const get = (site: string): SiteNet => {
    const s = sites.get(site);
    if (!s) throw new Error(`no namespace for site ${site}; sites: ${[...sites.keys()].join(", ")}`);
    return s;
  };
  return {
    hub,
    bridge,
    sites,
    cut: async (site) => void (await ip("link", "set", get(site).hostVeth, "down")),
    restore: async (site) => void (await ip("link", "set", get(site).hostVeth, "up")),
    teardown: () => {
      removeAll();
      process.removeListener("exit", removeAll);
      return Promise.resolve();
    },
  };
}

/** SIGKILLs each process in the namespace (the agents this harness started, and their payloads). */
function killAllIn(ns: string): void {
  const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "";
  for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export interface SiteAgent {
  site: string;
  name: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM (the agent drains), SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts an agent of `site` inside the site's namespace, with the process runtime (payloads run as
 * processes in the namespace too). The site is added to the stack's policy for `users` first, and
 * the agent's identity made (the server is reloaded). Resolves once the agent has registered.
 */
export async function startSiteAgent(
  stack: EmbeddedStack,
  lab: NetnsLab,
  site: string,
  name: string,
  o: { slots?: number; users: string[]; timeoutMs?: number },
): Promise<SiteAgent> {
  const net = lab.sites.get(site);
  if (!net) throw new Error(`no namespace for site ${site}`);
  await addSite(stack.dir, site, [name], { users: o.users, all: false, runtimes: ["process"] });
  const seedFile = stack.store.seedFile(agentIdentity(site, name));
  const logFile = join(stack.dir, "logs", `agent-${site}-${name}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  // `ip netns exec` execs the command itself, so the child's pid is the agent's.
  const child = spawn(
    "ip",
    [
      ...["netns", "exec", net.ns, process.execPath, join(ROOT, "bin", "gridtune-evaluator")],
      ...["--site", site, "--name", name, "--slots", String(o.slots ?? 1), "--runtime", "process"],
      ...["--work-dir", join(stack.dir, "work", `${site}-${name}`), "--trusted-users", o.users.join(",")],
      "--allow-any-image",
    ],
    {
      env: {
        ...process.env,
        NATS_URL: stack.nats.url,
        GRIDTUNE_SEED_FILE: seedFile,
        GRIDTUNE_CA_FILE: stack.nats.caFile,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  // both streams into one file, which is closed once the agent has exited (not at the first end)
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<void>((r) => child.once("close", () => (log.end(), r())));
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    const done = (err?: Error) => {
      clearTimeout(timer);
      rl.close();
      child.stderr.resume();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () =>
        done(
          new Error(`agent ${site}/${name} did not start within ${o.timeoutMs ?? 60_000} ms; see ${logFile}`),
        ),
      o.timeoutMs ?? 60_000,
    );
    rl.on("line", (line) => /agent running/.test(line) && done());
    void exited.then(() => done(new Error(`agent ${site}/${name} exited while starting; see ${logFile}`)));
  });
  return {
    site,
    name,
    child,
    logFile,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
