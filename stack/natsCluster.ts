// A local NATS cluster: N nats-server nodes on 127.0.0.1, each with its own server_name, state
// directory and JetStream store, explicit memory/disk limits (the defaults would let each node
// claim 75 % of the host), one cluster name, explicit routes to every node, and route
// authentication with a generated secret. Clients see the same server as on one node: TLS with
// the stack's CA, the same accounts, identities and permissions (rendered from the one identity
// store). Three replicas on one host survive a node's crash, not the host's: this is for the
// embedded stack, tests and benchmarks; production runs nodes on separate hosts.
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { UnavailableError } from "../protocol/errors.ts";
import { sleep } from "../protocol/async.ts";
import type { IdentityStore } from "../steering/security/identities.ts";
import type { NatsClusterSettings } from "../steering/security/natsConfig.ts";
import {
  freePort,
  readServerSettings,
  startNatsServer,
  type NatsServerHandle,
} from "../steering/security/natsServer.ts";

const HOST = "127.0.0.1";
export const CLUSTER_NAME = "gridtune";
/** Per node, as the verified set-up (docs/architecture.md, "NATS cluster"). */
export const DEFAULT_NODE_LIMITS = { maxMemBytes: 64 * 1024 ** 2, maxFileBytes: 1024 ** 3 };

export interface NatsNode {
  /** server_name: n1, n2, … (what stream info's cluster.leader names). */
  name: string;
  dir: string;
  url: string;
  /** The running server, or null while the node is down (kill). */
  handle: NatsServerHandle | null;
}

export interface NatsClusterOptions {
  /** Nodes' state goes under `<dir>/n1`, `<dir>/n2`, …; the PKI under pkiDir. */
  dir: string;
  store: IdentityStore;
  nodes?: number;
  /** Shared by every node: one CA, one server certificate (127.0.0.1). */
  pkiDir: string;
  limits?: { maxMemBytes: number; maxFileBytes: number };
  readyTimeoutMs?: number;
}

/**
 * The cluster, usable where one server's handle is: `url` lists every node (comma-separated, as
 * NATS_URL takes it), `reload` and `stop` act on every node. `kill`/`restart` take one node down
 * (SIGKILL) and up again on its own ports and store, for failover tests and benchmarks.
 */
export interface NatsClusterHandle extends NatsServerHandle {
  nodes: NatsNode[];
  urls: string[];
  kill(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** Resolves once the cluster has a JetStream meta leader and every node that is up is current in its group (streams can be placed). */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
}

export async function startNatsCluster(o: NatsClusterOptions): Promise<NatsClusterHandle> {
  const n = o.nodes ?? 3;
  if (!Number.isInteger(n) || n < 2 || n > 9)
    throw new UnavailableError(`a NATS cluster needs 2 to 9 nodes (3 for R3 streams), not ${n}`);
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  // The ports of the previous start are reused where free, so that the URLs printed (and agents
  // or phpo configured by hand) stay valid across restarts, as with one server.
  const previous = await Promise.all(
    names.map((name) => readServerSettings(join(o.dir, name)).catch(() => null)),
  );
  const reuse = async (port: number | undefined) =>
    port !== undefined && (await portFree(port)) ? port : freePort(HOST);
  const routePorts: number[] = [];
  for (const p of previous) routePorts.push(await reuse(p?.cluster?.port));
  const secret = previous[0]?.cluster?.password ?? randomBytes(24).toString("hex");
  const cluster = (i: number): NatsClusterSettings => ({
    name: CLUSTER_NAME,
    host: HOST,
    port: routePorts[i]!,
    routes: routePorts.map((port) => ({ host: HOST, port })),
    user: "route",
    password: secret,
  });
  const nodes: NatsNode[] = names.map((name) => ({ name, dir: join(o.dir, name), url: "", handle: null }));
  const ports = new Map<string, { port: number; monitorPort: number | undefined }>();
  for (const [i, p] of previous.entries()) {
    if (!p) continue;
    const port = await reuse(p.port);
    const monitorPort = await reuse(p.monitorPort);
    ports.set(names[i]!, { port, monitorPort });
  }

  const startNode = async (i: number): Promise<void> => {
    const node = nodes[i]!;
    const was = ports.get(node.name);
    const h = await startNatsServer({
      dir: node.dir,
      store: o.store,
      host: HOST,
      ...(was ? { port: was.port, ...(was.monitorPort ? { monitorPort: was.monitorPort } : {}) } : {}),
      tls: { pkiDir: o.pkiDir },
      serverName: node.name,
      jetstreamLimits: o.limits ?? DEFAULT_NODE_LIMITS,
      cluster: cluster(i),
      ...(o.readyTimeoutMs ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
    });
    const monitorPort = h.monitorUrl ? Number(new URL(h.monitorUrl).port) : undefined;
    ports.set(node.name, { port: h.port, monitorPort });
    node.handle = h;
    node.url = h.url;
  };

  try {
    // one after the other: they share the PKI directory, made by the first
    for (let i = 0; i < n; i++) await startNode(i);
  } catch (e) {
    await Promise.allSettled(nodes.flatMap((x) => (x.handle ? [x.handle.stop()] : [])));
    throw e;
  }
  const first = nodes[0]!.handle!;
  const byName = (name: string): [NatsNode, number] => {
    const i = nodes.findIndex((x) => x.name === name);
    if (i < 0) throw new UnavailableError(`no node ${name} in the cluster (${names.join(", ")})`);
    return [nodes[i]!, i];
  };
  const up = () => nodes.flatMap((x) => (x.handle ? [x.handle] : []));
  const handle: NatsClusterHandle = {
    nodes,
    urls: nodes.map((x) => x.url),
    url: nodes.map((x) => x.url).join(","),
    // a single server's fields are node 1's (its log, its config)
    port: first.port,
    monitorUrl: first.monitorUrl,
    pid: first.pid,
    configFile: first.configFile,
    logFile: first.logFile,
    pidFile: first.pidFile,
    caFile: first.caFile,
    async reload() {
      // a node that is down reads the new configuration when it starts again
      for (const h of up()) await h.reload();
    },
    async stop() {
      await Promise.allSettled(up().map((h) => h.stop()));
    },
    async kill(name) {
      const [node] = byName(name);
      const h = node.handle;
      if (!h) return;
      node.handle = null;
      process.kill(h.pid, "SIGKILL");
      await h.stop(); // waits for the exit and removes the pid file
    },
    async restart(name) {
      const [node, i] = byName(name);
      if (node.handle) return;
      await startNode(i);
    },
    async waitForMetaLeader(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      for (;;) {
        for (const h of up()) {
          if (!h.monitorUrl) continue;
          try {
            const jsz = (await (await fetch(`${h.monitorUrl}/jsz`)).json()) as {
              meta_cluster?: { leader?: string; replicas?: { name: string; current?: boolean }[] };
            };
            const meta = jsz.meta_cluster;
            // a leader alone is not enough: "no suitable peers for placement" until every node
            // that is up has joined the meta group and is current
            const current = new Set((meta?.replicas ?? []).filter((r) => r.current).map((r) => r.name));
            if (meta?.leader) current.add(meta.leader);
            const waiting = nodes.filter((x) => x.handle && !current.has(x.name)).map((x) => x.name);
            if (meta?.leader && waiting.length === 0) return meta.leader;
            last = meta?.leader ? `waiting for ${waiting.join(", ")} to join` : "no meta leader yet";
          } catch (e) {
            last = e instanceof Error ? e.message : String(e);
          }
        }
        if (Date.now() > deadline)
          throw new UnavailableError(
            `the NATS cluster has no JetStream meta leader after ${timeoutMs} ms: ${last}`,
          );
        await sleep(100);
      }
    },
  };
  return handle;
}

/** Whether nothing listens on 127.0.0.1:port now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}
