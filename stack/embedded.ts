// The embedded single-machine stack: nats-server (JetStream, TLS, nkey identities with
// least-privilege permissions), a local S3 server, the steering service and N evaluator agents,
// all generated and started by one call. Services run as child processes of their own bin
// scripts (as on a real deployment), or in this process ("inline", for fast tests).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { agentIdentity, steeringApiIdentity, steeringIdentity, userIdentity } from "../protocol/identity.ts";
import { createLogger, type Logger } from "../protocol/log.ts";
import { compileSteeringConfig } from "../steering/shell/config.ts";
import { limitsFilePath } from "../steering/security/adminLimits.ts";
import { IdentityStore } from "../steering/security/identities.ts";
import { NATS_CLUSTER_DIR, startNatsServer, type NatsServerHandle } from "../steering/security/natsServer.ts";
import { SitePolicyStore, type SiteAccess, type SitePolicy } from "../steering/security/sitePolicy.ts";
import { SteeringService } from "../steering/shell/service.ts";
import { dockerAnswers } from "./images.ts";
import { startNatsCluster, type NatsClusterHandle } from "./natsCluster.ts";
import { startS3Server, type S3ServerHandle } from "./s3Server.ts";
import { superviseAgent } from "./supervise.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
export const DEFAULT_STACK_DIR =
  process.env.GRIDTUNE_HOME ?? join(homedir(), ".local", "state", "gridtune", "stack");
export const DEFAULT_SITE = "local";
export const DEFAULT_BUCKET = "gridtune";

export interface StackOptions {
  dir?: string;
  agents?: number;
  slotsPerAgent?: number;
  site?: string;
  user?: string;
  runtime?: "auto" | "docker" | "process";
  /**
   * Who may use the site when it runs the process runtime (payloads unconfined on this host):
   * default only the stack's own user. A docker site is open to every user of the stack.
   */
  trustedUsers?: string[];
  allowedImages?: string[];
  /** "process": each service is a child process (default); "inline": steering runs in this process. */
  mode?: "process" | "inline";
  leaseMs?: number;
  heartbeatMs?: number;
  natsPort?: number;
  /**
   * A local NATS cluster of this many nodes instead of one server (stack/natsCluster.ts); steering
   * then keeps its streams and KV bucket in min(3, n) replicas. A restart reuses its ports where free.
   */
  natsCluster?: number;
  /**
   * The address NATS and S3 listen on (and the NATS certificate names): default 127.0.0.1, so a
   * user's stack is never reachable from elsewhere. Tests of sites on their own networks pass the
   * hub address of their network namespaces (test/harness/netns.ts).
   */
  listenHost?: string;
  /**
   * Start on the ports of the previous start in `dir` when they are free (kept in ports.json), so
   * that the URLs printed, and any agent or phpo configured by hand, stay valid across restarts.
   */
  stablePorts?: boolean;
  logger?: Logger;
  /** Extra environment for the service processes. */
  env?: Record<string, string>;
}

export interface ClientProfile {
  natsUrl: string;
  user: string;
  seedFile: string;
  caFile: string;
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** True once stop() or kill() was called: the exit was asked for, not a crash. */
  readonly stopping: boolean;
  /** SIGTERM (drain), then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once: a crash. */
  kill(): Promise<void>;
}

export interface EmbeddedStack {
  dir: string;
  /** The server, or the cluster (its url lists every node; reload and stop act on all). */
  nats: NatsServerHandle;
  /** The nodes of a cluster (kill/restart one), when started with natsCluster. */
  cluster: NatsClusterHandle | null;
  s3: S3ServerHandle;
  store: IdentityStore;
  client: ClientProfile;
  clientFile: string;
  site: string;
  /** The runtime the agents use ("auto" resolved at start). */
  runtime: "docker" | "process";
  steeringEnv: Record<string, string>;
  steering: ServiceProcess | SteeringService;
  agents: ServiceProcess[];
  /** Starts one more agent process (its identity is created and the server reloaded as needed). */
  startAgent(name: string, extraArgs?: string[]): Promise<ServiceProcess>;
  startSteering(): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

/** Starts a service process; resolves once its log shows `ready` (or rejects if it exits first). */
export async function startService(
  name: string,
  bin: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const log = createWriteStream(logFile, { flags: "a" });
  // GRIDTUNE_CPU_PROFILE_DIR=dir: each service writes a V8 CPU profile there when it exits
  // (docs/benchmarks.md, "Profiling").
  const profileDir = process.env.GRIDTUNE_CPU_PROFILE_DIR;
  const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, "bin", bin), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let stopping = false;
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    const timer = setTimeout(
      () => reject(new Error(`${name} did not become ready within ${timeoutMs} ms; see ${logFile}`)),
      timeoutMs,
    );
    const done = (err?: Error) => {
      clearTimeout(timer);
      rl.close();
      child.stderr?.resume(); // closing readline pauses the stream, which the log pipe still reads
      if (err) reject(err);
      else resolve();
    };
    rl.on("line", (line) => {
      if (ready.test(line)) done();
    });
    void exited.then((code) =>
      done(new Error(`${name} exited with code ${code} while starting; see ${logFile}`)),
    );
  });
  return {
    name,
    child,
    get stopping() {
      return stopping;
    },
    async stop(graceMs = 15_000) {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

const portsFile = (dir: string) => join(dir, "ports.json");

/** The client ports of the previous start in `dir` (none when it never started or the file is bad). */
async function lastPorts(dir: string): Promise<{ nats?: number; s3?: number }> {
  try {
    const v = JSON.parse(await readFile(portsFile(dir), "utf8")) as { nats?: unknown; s3?: unknown };
    const port = (x: unknown) =>
      Number.isInteger(x) && (x as number) > 0 && (x as number) < 65536 ? (x as number) : undefined;
    const nats = port(v.nats);
    const s3 = port(v.s3);
    return { ...(nats ? { nats } : {}), ...(s3 ? { s3 } : {}) };
  } catch {
    return {};
  }
}

/** `port` when nothing listens on it now, else 0 (any free port). */
function reusable(port: number | undefined): Promise<number> {
  if (!port) return Promise.resolve(0);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(0));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(port)));
  });
}

export async function startEmbeddedStack(o: StackOptions = {}): Promise<EmbeddedStack> {
  const dir = o.dir ?? DEFAULT_STACK_DIR;
  const site = o.site ?? DEFAULT_SITE;
  const user = o.user ?? "demo";
  const logger = o.logger ?? createLogger("stack");
  await mkdir(join(dir, "logs"), { recursive: true, mode: 0o700 });
  // Identities and the nats-server files share the stack directory, the layout
  // `gridtune-steering admin --dir` works on, so the admin verbs manage a running embedded stack.
  const store = new IdentityStore(dir);
  const steeringSeed = (await store.ensure(steeringIdentity())).seedFile;
  const steeringApiSeed = (await store.ensure(steeringApiIdentity())).seedFile;
  const userSeed = (await store.ensure(userIdentity(user))).seedFile;
  const nAgents = o.agents ?? 1;
  for (let i = 1; i <= nAgents; i++) await store.ensure(agentIdentity(site, `a${i}`));
  const runtime = o.runtime === "docker" || o.runtime === "process" ? o.runtime : await resolveRuntime();
  const policy = await stackSitePolicy(dir, site, runtime, o.trustedUsers ?? [user]);
  const trusted = trustedUsersOf(policy, site);

  const last = o.stablePorts ? await lastPorts(dir) : {};
  let cluster: NatsClusterHandle | null = null;
  let nats: NatsServerHandle;
  if (o.natsCluster !== undefined && o.natsCluster > 1) {
    cluster = await startNatsCluster({
      dir: join(dir, NATS_CLUSTER_DIR),
      store,
      nodes: o.natsCluster,
      pkiDir: join(dir, "pki"),
    });
    nats = cluster;
    await cluster.waitForMetaLeader().catch(async (e: unknown) => {
      await nats.stop();
      throw e;
    });
  } else {
    const natsPort = o.natsPort || (await reusable(last.nats));
    const listen = o.listenHost ? { host: o.listenHost, tls: { hosts: [o.listenHost] } } : {};
    nats = await startNatsServer({ dir, store, port: natsPort, ...listen });
  }
  const s3Port = await reusable(last.s3);
  const s3 = await startS3Server({
    dir: join(dir, "s3", "data"),
    buckets: [DEFAULT_BUCKET],
    ...(s3Port ? { port: s3Port } : {}),
    ...(o.listenHost ? { host: o.listenHost } : {}),
  }).catch(async (e: unknown) => {
    await nats.stop();
    throw e;
  });
  if (o.stablePorts) await writeFile(portsFile(dir), JSON.stringify({ nats: nats.port, s3: s3.port }) + "\n");
  const client: ClientProfile = { natsUrl: nats.url, user, seedFile: userSeed, caFile: nats.caFile };
  const clientFile = join(dir, "client.json");
  await writeFile(clientFile, JSON.stringify(client, null, 2) + "\n", { mode: 0o600 });

  const steeringEnv: Record<string, string> = {
    NATS_URL: nats.url,
    GRIDTUNE_SEED_FILE: steeringSeed,
    GRIDTUNE_API_SEED_FILE: steeringApiSeed,
    GRIDTUNE_CA_FILE: nats.caFile,
    S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    GRIDTUNE_BUCKET: DEFAULT_BUCKET,
    GRIDTUNE_LEASE_MS: String(o.leaseMs ?? 30_000),
    GRIDTUNE_HEARTBEAT_MS: String(o.heartbeatMs ?? 5_000),
    // where `gridtune-steering admin set-limits --dir <stack dir>` writes the per-user limits
    GRIDTUNE_LIMITS_FILE: limitsFilePath(dir),
    ...(cluster ? { GRIDTUNE_NATS_REPLICAS: String(Math.min(3, cluster.nodes.length)) } : {}),
    ...o.env,
  };
  const startSteering = async () =>
    startService(
      "steering",
      "gridtune-steering",
      ["serve"],
      steeringEnv,
      join(dir, "logs", "steering.log"),
      /steering running/,
    );
  let steering: ServiceProcess | SteeringService;
  if (o.mode === "inline") {
    steering = new SteeringService(compileSteeringConfig({}, steeringEnv), logger.child("steering"));
    await steering.start();
  } else {
    steering = await startSteering();
  }

  const agents: ServiceProcess[] = [];
  let stopping: Promise<void> | null = null;
  const restarts = new Map<string, number[]>();
  /** Starts an agent process and watches it; a crashed one is replaced in `agents` in place. */
  const launchAgent = async (name: string, extraArgs: string[]): Promise<ServiceProcess> => {
    const created = await store.ensure(agentIdentity(site, name));
    if (created.created) await nats.reload();
    const args = [
      "--site",
      site,
      "--name",
      name,
      "--slots",
      String(o.slotsPerAgent ?? 2),
      "--runtime",
      runtime,
      "--work-dir",
      join(dir, "work", name),
      ...(runtime === "process" ? ["--trusted-users", trusted.join(",")] : []),
      ...extraArgs,
    ];
    if (o.allowedImages?.length) args.push("--allowed-images", o.allowedImages.join(","));
    else args.push("--allow-any-image");
    const env = {
      NATS_URL: nats.url,
      GRIDTUNE_SEED_FILE: created.seedFile,
      GRIDTUNE_CA_FILE: nats.caFile,
      ...o.env,
    };
    const p = await startService(
      `agent ${name}`,
      "gridtune-evaluator",
      args,
      env,
      join(dir, "logs", `agent-${name}.log`),
      /agent running/,
    );
    // A crashed agent (exit or kill -9) is noticed, reported and started again, at a bounded rate.
    const history = restarts.get(name) ?? [];
    restarts.set(name, history);
    superviseAgent(p, {
      logger,
      history,
      restart: () => launchAgent(name, extraArgs),
      replace: (next) => {
        const i = agents.indexOf(p);
        if (i >= 0) agents.splice(i, 1, next);
        else agents.push(next);
      },
      stopping: () => stopping !== null,
    });
    return p;
  };
  const startAgent = async (name: string, extraArgs: string[] = []) => {
    const p = await launchAgent(name, extraArgs);
    agents.push(p);
    return p;
  };
  for (let i = 1; i <= nAgents; i++) await startAgent(`a${i}`);

  const stack: EmbeddedStack = {
    dir,
    nats,
    cluster,
    s3,
    store,
    client,
    clientFile,
    site,
    runtime,
    steeringEnv,
    get steering() {
      return steering;
    },
    set steering(s) {
      steering = s;
    },
    agents,
    startAgent,
    startSteering,
    stop() {
      stopping ??= (async () => {
        await Promise.allSettled(agents.map((a) => a.stop(20_000)));
        await (steering instanceof SteeringService ? steering.close() : steering.stop());
        // The current handles: a test may have restarted a server in place.
        await stack.s3.stop();
        await stack.nats.stop();
      })();
      return stopping;
    },
  };
  return stack;
}

/** "auto": docker when a daemon answers, else the process runtime (as gridtune-stack decides). */
async function resolveRuntime(): Promise<"docker" | "process"> {
  return (await dockerAnswers()) ? "docker" : "process";
}

/**
 * The stack's site in sites.json: a docker site is open to every user of the stack; a process
 * site (payloads unconfined on this host) accepts only `trusted`, set at each start. A docker
 * entry the operator changed (admin set-site) is kept as long as it offers docker.
 */
async function stackSitePolicy(
  dir: string,
  site: string,
  runtime: "docker" | "process",
  trusted: string[],
): Promise<SitePolicy> {
  const wanted: SiteAccess =
    runtime === "docker"
      ? { users: [], groups: [], all: true, runtimes: ["docker"] }
      : { users: [...trusted], groups: [], all: false, runtimes: ["process"] };
  const { policy } = await new SitePolicyStore(dir).update((p) => {
    const now = Object.hasOwn(p.sites, site) ? p.sites[site] : undefined;
    if (!(runtime === "docker" && now?.runtimes.includes("docker"))) p.sites[site] = wanted;
  });
  return policy;
}

/** The users a site accepts (its users and its groups' members): the agents' --trusted-users. */
function trustedUsersOf(p: SitePolicy, site: string): string[] {
  const a = p.sites[site];
  if (!a) return [];
  const members = Object.entries(p.users)
    .filter(([, u]) => u.groups.some((g) => a.groups.includes(g)))
    .map(([name]) => name);
  return [...new Set([...a.users, ...members])];
}
