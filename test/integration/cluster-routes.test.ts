// Attack: a process on the host joins the stack's NATS cluster as one more server through a route
// port, and so would receive every message of every account (routes carry all of them, TLS and
// user permissions apply to clients only). Defence: routes authenticate with a generated secret
// (stack/natsCluster.ts, natsConfig.ts `cluster.authorization`). A rogue nats-server without it
// is refused; the same server given the secret joins, which shows the test would see a join.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sleep } from "../../protocol/async.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { findNatsServer, freePort, readServerSettings } from "../../steering/security/natsServer.ts";
import { type NatsClusterHandle, startNatsCluster } from "../../stack/natsCluster.ts";

async function numRoutes(monitorUrl: string): Promise<number> {
  const r = (await (await fetch(`${monitorUrl}/routez`)).json()) as { num_routes: number };
  return r.num_routes;
}

/** A plain nats-server that solicits a route to `route` (a nats-route:// URL). */
async function rogue(dir: string, route: string): Promise<{ child: ChildProcess; log: string }> {
  const log = join(dir, `rogue-${Date.now()}.log`);
  const child = spawn(
    findNatsServer(),
    [
      "-a",
      "127.0.0.1",
      "-p",
      String(await freePort("127.0.0.1")),
      "--cluster_name",
      "gridtune",
      "--cluster",
      `nats://127.0.0.1:${await freePort("127.0.0.1")}`,
      "--routes",
      route,
      "-l",
      log,
    ],
    { stdio: "ignore" },
  );
  return { child, log };
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe("NATS cluster routes", { timeout: 120_000 }, () => {
  let dir: string;
  let cluster: NatsClusterHandle;
  const rogues: ChildProcess[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-routes-"));
    cluster = await startNatsCluster({
      dir: join(dir, "cluster"),
      store: new IdentityStore(dir),
      pkiDir: join(dir, "pki"),
    });
    await cluster.waitForMetaLeader();
  });
  after(async () => {
    for (const c of rogues) c.kill("SIGKILL");
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a server without the route secret is refused; with it, it would join", async () => {
    const n1 = cluster.nodes[0]!;
    const monitor = n1.handle!.monitorUrl!;
    const settings = await readServerSettings(n1.dir);
    const port = settings.cluster!.port;
    assert.equal(await numRoutes(monitor), 2, "the three nodes are connected to each other");

    const bare = await rogue(dir, `nats-route://127.0.0.1:${port}`);
    rogues.push(bare.child);
    // the attempt ends either refused (an authorization error in the rogue's log) or joined
    await waitFor(
      "the rogue's attempt",
      async () =>
        /authorization|authentication/i.test(await readFile(bare.log, "utf8").catch(() => "")) ||
        (await numRoutes(monitor)) > 2,
    );
    assert.equal(await numRoutes(monitor), 2, "the rogue server without the secret joined the cluster");
    bare.child.kill("SIGKILL");

    // control: the same server with the secret is accepted, so a join would have been seen
    const { user, password } = settings.cluster!;
    const known = await rogue(dir, `nats-route://${user}:${password}@127.0.0.1:${port}`);
    rogues.push(known.child);
    await waitFor("the route with the secret", async () => (await numRoutes(monitor)) === 3);
  });
});
