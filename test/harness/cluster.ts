// Cluster helpers for tests on a local NATS cluster (startTestStack({ natsCluster: 3 })): which
// node leads a stream (stream info's cluster.leader, a server_name), and waiting until a stream
// has a leader other than a killed one.
import type { JetStreamManager } from "@nats-io/jetstream";
import { sleep } from "../../protocol/async.ts";

/** The server_name of the stream's leader, or undefined while it has none (an election). */
export async function streamLeader(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  try {
    return (await jsm.streams.info(stream)).cluster?.leader || undefined;
  } catch {
    return undefined;
  }
}

/** Polls until the stream is led by a node other than `not`; returns it. */
export async function waitForLeader(
  jsm: JetStreamManager,
  stream: string,
  not: string | undefined,
  timeoutMs = 60_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leader = await streamLeader(jsm, stream);
    if (leader && leader !== not) return leader;
    if (Date.now() > deadline)
      throw new Error(`stream ${stream} has no leader other than ${not ?? "none"} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Polls until every replica of the stream is current (a restarted node has caught up). */
export async function waitForReplicasCurrent(
  jsm: JetStreamManager,
  stream: string,
  replicas: number,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = (await jsm.streams.info(stream).catch(() => null))?.cluster;
    const peers = c?.replicas ?? [];
    if (c?.leader && peers.length === replicas - 1 && peers.every((p) => p.current && !p.offline)) return;
    if (Date.now() > deadline)
      throw new Error(`stream ${stream}: replicas not current after ${timeoutMs} ms: ${JSON.stringify(c)}`);
    await sleep(200);
  }
}
