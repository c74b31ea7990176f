// Replicas reach every stream and bucket, and an existing stream with another count is scaled or
// refused with the fix: on a real cluster an R1 stream (made while it was one server) becomes R3
// in place with its messages; on one server R3 is refused naming GRIDTUNE_NATS_REPLICAS. Also the
// embedded stack's --nats-cluster: client.json lists every node and phpo works through it.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { ValidationError } from "../../protocol/errors.ts";
import { steeringIdentity, userIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { addUser } from "../../steering/security/admin.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { startNatsServer } from "../../steering/security/natsServer.ts";
import { ensureStream } from "../../steering/shell/streams.ts";
import { startEmbeddedStack } from "../../stack/embedded.ts";
import { startNatsCluster } from "../../stack/natsCluster.ts";
import { runPhpo } from "../harness/fakeSteering.ts";
import { runBin } from "../harness/stack.ts";

const spec = (replicas: number) => ({ name: "RTEST", subjects: ["rtest.>"], num_replicas: replicas });

async function connectSteering(url: string, store: IdentityStore, caFile: string) {
  return connectNats({
    servers: url,
    seedFile: store.seedFile(steeringIdentity()),
    caFile,
    identity: steeringIdentity(),
    logger: () => undefined,
  });
}

describe("stream replicas", { timeout: 180_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-replicas-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("on a cluster: an R1 stream is scaled to R3 with its messages; R3 is then kept", async () => {
    const store = new IdentityStore(join(dir, "c"));
    const cluster = await startNatsCluster({
      dir: join(dir, "c", "nodes"),
      store,
      pkiDir: join(dir, "c", "pki"),
    });
    try {
      await cluster.waitForMetaLeader();
      const nc = await connectSteering(cluster.url, store, cluster.caFile);
      try {
        const jsm = await jetstreamManager(nc);
        assert.equal(await ensureStream(jsm, spec(1)), "created");
        await jetstream(nc).publish("rtest.a", "kept", { msgID: "one" });
        assert.equal(await ensureStream(jsm, spec(3)), "scaled");
        const info = await jsm.streams.info("RTEST");
        assert.equal(info.config.num_replicas, 3);
        assert.equal(info.state.messages, 1);
        assert.equal(await ensureStream(jsm, spec(3)), "kept");
      } finally {
        await nc.close();
      }
    } finally {
      await cluster.stop();
    }
  });

  it("on one server: R3 is refused with the fix, for a new and for an existing stream", async () => {
    const store = new IdentityStore(join(dir, "s"));
    const srv = await startNatsServer({ dir: join(dir, "s"), store });
    try {
      const nc = await connectSteering(srv.url, store, srv.caFile);
      try {
        const jsm = await jetstreamManager(nc);
        const refused = (e: unknown) => {
          assert.ok(e instanceof ValidationError, String(e));
          assert.equal(e.code, "INVALID_CONFIG");
          assert.match(e.message, /RTEST/);
          assert.match(e.message, /GRIDTUNE_NATS_REPLICAS=1/);
          return true;
        };
        await assert.rejects(ensureStream(jsm, spec(3)), refused);
        assert.equal(await ensureStream(jsm, spec(1)), "created");
        await assert.rejects(ensureStream(jsm, spec(3)), refused);
        assert.equal((await jsm.streams.info("RTEST")).config.num_replicas, 1, "left as it was");
      } finally {
        await nc.close();
      }
    } finally {
      await srv.stop();
    }
  });

  it("gridtune-stack --nats-cluster 3: client.json lists the nodes, phpo works through them; a restart keeps the URLs; admin reaches every node", async () => {
    const opts = {
      dir: join(dir, "stack"),
      agents: 0,
      runtime: "process",
      mode: "inline",
      natsCluster: 3,
      logger: createLogger("test-stack", { level: "warn" }),
    } as const;
    const first = await startEmbeddedStack(opts);
    const url = first.nats.url;
    await first.stop();
    const stack = await startEmbeddedStack(opts);
    try {
      assert.equal(stack.nats.url, url, "the same nodes' URLs after a restart");
      assert.equal(stack.cluster?.nodes.length, 3);
      assert.equal(stack.steeringEnv.GRIDTUNE_NATS_REPLICAS, "3");
      const client = JSON.parse(await readFile(stack.clientFile, "utf8")) as { natsUrl: string };
      const urls = client.natsUrl.split(",");
      assert.equal(urls.length, 3);
      for (const u of urls) assert.match(u, /^tls:\/\/127\.0\.0\.1:\d+$/);
      const r = await runPhpo(["--json", "list"], { GRIDTUNE_CONFIG: stack.clientFile });
      assert.equal(r.code, 0, r.stderr);

      // the admin verbs reach every node: a user added now connects to each of them
      const added = await addUser(stack.dir, "carol");
      assert.equal(added.reloaded, true);
      for (const url of urls) {
        const nc = await connectNats({
          servers: url,
          seedFile: stack.store.seedFile(userIdentity("carol")),
          caFile: stack.nats.caFile,
          identity: userIdentity("carol"),
          maxReconnectAttempts: 0,
          logger: () => undefined,
        });
        await nc.close();
      }
    } finally {
      await stack.stop();
    }
  });

  it("gridtune-stack refuses a cluster of fewer than 3 nodes, saying why", async () => {
    const r = await runBin("gridtune-stack", ["--dir", join(dir, "bad"), "--nats-cluster", "2"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--nats-cluster 2: give the number of nodes, 3 to 9/);
  });
});
