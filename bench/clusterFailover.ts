// NATS cluster failover: how long JetStream publishes are unavailable when a stream's leader is
// killed. A local 3-node cluster (stack/natsCluster.ts: TLS, nkeys, route auth) with one R3
// stream; one publisher sends message after message (awaited ack, 1 s per try, each under its own
// msgID so a retry is stored once); each round SIGKILLs the node that leads the stream and
// measures from the kill to the first acknowledged publish, then restarts the node and waits
// until it is a current replica again. At the end the stream must hold exactly the messages
// acknowledged (nothing lost, nothing twice).
//   node --import tsx bench/clusterFailover.ts [--rounds 5]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { sleep } from "../protocol/async.ts";
import { steeringIdentity } from "../protocol/identity.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import { IdentityStore } from "../steering/security/identities.ts";
import { startNatsCluster } from "../stack/natsCluster.ts";
import { arg } from "./args.ts";

const STREAM = "BENCHFAIL";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function leaderOf(jsm: JetStreamManager): Promise<string | undefined> {
  try {
    return (await jsm.streams.info(STREAM)).cluster?.leader;
  } catch {
    return undefined;
  }
}

/** Until every replica of the stream is current (the restarted node caught up). */
async function waitCurrent(jsm: JetStreamManager, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await jsm.streams.info(STREAM).catch(() => null);
    const c = info?.cluster;
    if (
      c?.leader &&
      (c.replicas ?? []).length === 2 &&
      (c.replicas ?? []).every((r) => r.current && !r.offline)
    )
      return;
    await sleep(200);
  }
  throw new Error(`the stream's replicas were not current within ${timeoutMs} ms`);
}

export async function benchClusterFailover(): Promise<void> {
  const rounds = arg("rounds", 5);
  const dir = await mkdtemp(join(tmpdir(), "gt-bench-cluster-"));
  const store = new IdentityStore(dir);
  const seedFile = (await store.ensure(steeringIdentity())).seedFile;
  const cluster = await startNatsCluster({ dir: join(dir, "cluster"), store, pkiDir: join(dir, "pki") });
  let stop = false;
  try {
    const t0 = performance.now();
    await cluster.waitForMetaLeader();
    const upMs = performance.now() - t0;
    const nc = await connectNats({
      servers: cluster.url,
      seedFile,
      caFile: cluster.caFile,
      identity: steeringIdentity(),
      reconnectTimeWaitMs: 250,
      logger: () => undefined,
    });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: STREAM, subjects: ["bench.>"], num_replicas: 3 });

    // The publisher: one message at a time, each retried under its msgID until acknowledged.
    let acked = 0;
    let lastOk = 0;
    const okTimes: number[] = [];
    const publisher = (async () => {
      for (let i = 0; !stop; i++) {
        for (;;) {
          try {
            await js.publish("bench.x", String(i), { msgID: `m${i}`, timeout: 1000 });
            acked++;
            lastOk = performance.now();
            okTimes.push(lastOk);
            if (okTimes.length > 1000) okTimes.shift();
            break;
          } catch {
            if (stop) return;
            await sleep(50);
          }
        }
        await sleep(5);
      }
    })();

    const gaps: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      await sleep(1000);
      const leader = await leaderOf(jsm);
      if (!leader) throw new Error("the stream has no leader before the kill");
      const killedAt = performance.now();
      await cluster.kill(leader);
      while (!okTimes.some((t) => t > killedAt)) await sleep(10);
      const gap = okTimes.find((t) => t > killedAt)! - killedAt;
      gaps.push(gap);
      process.stdout.write(
        JSON.stringify({
          round: r,
          killed: leader,
          unavailableMs: Math.round(gap),
          newLeader: await leaderOf(jsm),
        }) + "\n",
      );
      await cluster.restart(leader);
      await waitCurrent(jsm);
    }
    stop = true;
    await publisher;
    const stored = (await jsm.streams.info(STREAM)).state.messages;
    await nc.close();
    process.stdout.write(
      JSON.stringify({
        bench: "cluster-failover",
        nodes: cluster.nodes.length,
        metaLeaderMs: Math.round(upMs),
        rounds,
        unavailableMs: {
          median: Math.round(median(gaps)),
          min: Math.round(Math.min(...gaps)),
          max: Math.round(Math.max(...gaps)),
        },
        acked,
        stored,
        lost: acked - stored,
      }) + "\n",
    );
    if (stored !== acked) throw new Error(`${acked} publishes acknowledged but ${stored} stored`);
  } finally {
    stop = true;
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  benchClusterFailover().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
