// Issue 14 item 9b: after nats-server was restarted by hand (new pid; the stack's nats.pid stale or
// gone), `admin add-user` said no server was running and reloaded nothing, so the new user could
// not connect. The admin verbs now find the server that runs this directory's nats.conf (the pid
// file the server writes itself, else the process table), and when something else answers on the
// port they fail loudly with the fix instead of reporting success.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { userIdentity } from "../../protocol/identity.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { addUser } from "../../steering/security/admin.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import {
  findNatsServer,
  natsFiles,
  readServerSettings,
  runningServerPid,
  startNatsServer,
} from "../../steering/security/natsServer.ts";
import { runBin } from "../harness/stack.ts";

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("admin reloads a nats-server restarted by hand", { timeout: 120_000 }, () => {
  let dir: string;
  let hand: ChildProcess | undefined;
  const exited = new Set<ChildProcess>();

  /** `cd <dir> && nats-server -c nats.conf`, as an operator would; resolves once it is healthy. */
  async function restartByHand(): Promise<ChildProcess> {
    const child = spawn(findNatsServer(), ["-c", "nats.conf"], { cwd: dir, stdio: "ignore" });
    child.once("exit", () => exited.add(child));
    const { monitorPort } = await readServerSettings(dir);
    await eventually("hand-started nats-server healthy", async () => {
      if (exited.has(child)) throw new Error("the hand-started nats-server exited");
      return fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`).then(
        (r) => r.ok,
        () => false,
      );
    });
    return child;
  }

  async function stopHand(): Promise<void> {
    const child = hand;
    hand = undefined;
    if (!child || exited.has(child)) return;
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await gone;
  }

  /** The new user's connection works (before the reload its unknown nkey would be refused). */
  async function connects(user: string): Promise<void> {
    const store = new IdentityStore(dir);
    const { url, caFile } = await readServerSettings(dir).then((s) => ({
      url: `nats://127.0.0.1:${s.port}`,
      caFile: s.tls.caFile,
    }));
    const nc = await connectNats({
      servers: url,
      seedFile: store.seedFile(userIdentity(user)),
      caFile,
      identity: userIdentity(user),
      maxReconnectAttempts: 0,
      logger: () => undefined,
    });
    await nc.flush();
    await nc.close();
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-admin-restart-"));
    const srv = await startNatsServer({ dir, store: new IdentityStore(dir) });
    // the operator's hand restart: the stack's server goes, one started from a shell takes over
    await srv.stop();
    hand = await restartByHand();
  });
  after(async () => {
    await stopHand();
    await rm(dir, { recursive: true, force: true });
  });

  test("pid file naming a live process that is not nats-server: add-user reloads the real one", async () => {
    // a pid reused by another process (here: this test's own)
    await writeFile(natsFiles(dir).pidFile, `${process.pid}\n`);
    assert.equal(await runningServerPid(dir), hand?.pid);
    const r = await addUser(dir, "erin");
    assert.equal(r.reloaded, true);
    await connects("erin");
  });

  test("pid file missing: `gridtune-steering admin add-user` finds the server by its command line", async () => {
    await rm(natsFiles(dir).pidFile, { force: true });
    const r = await runBin("gridtune-steering", ["admin", "--dir", dir, "--json", "add-user", "frank"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { reloaded: boolean }).reloaded, true, r.stdout);
    await connects("frank");
  });

  test("something else on the port and no server of ours: add-user fails loudly with the fix", async () => {
    await stopHand();
    const { port, host } = await readServerSettings(dir);
    const squatter = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => squatter.listen(port, host, resolve));
    try {
      await assert.rejects(addUser(dir, "gina"), (e: unknown) => {
        assert.ok(e instanceof GridtuneError, String(e));
        assert.equal(e.code, "UNAVAILABLE");
        assert.match(e.message, /NOT reloaded/);
        assert.match(e.message, /nats-server --signal reload=<pid>/);
        assert.match(e.message, new RegExp(`nats-server -c ${natsFiles(dir).configFile}`));
        return true;
      });
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    // nothing listens any more: the rewritten config simply applies at the next start
    assert.equal((await addUser(dir, "hana")).reloaded, false);
  });
});
