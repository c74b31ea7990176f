// A task on a 3-node NATS cluster while the JetStream leader of GTLOG, then JOBS, then RESULTS is
// killed with SIGKILL (and started again later): steering, the agent and the client ride through
// each election, and every point is counted exactly once: one result per point, no event twice
// in the log. Real servers: three nats-servers with TLS, nkeys and route authentication.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { KV_STATE, STREAM_JOBS, STREAM_LOG, STREAM_RESULTS } from "../../protocol/subjects.ts";
import { readTaskLog } from "../../steering/shell/taskLog.ts";
import { waitForLeader, waitForReplicasCurrent } from "../harness/cluster.ts";
import { connectAsSteering, startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const POINTS = 16;

describe("a task on a 3-node NATS cluster", { timeout: 400_000 }, () => {
  let stack: TestStack;
  let nc: NatsConnection;
  before(async () => {
    // a lease longer than an election: this test is about JetStream, not about lost agents
    stack = await startTestStack({ natsCluster: 3, agents: 1, slotsPerAgent: 2, leaseMs: 20_000 });
    nc = await connectAsSteering(stack);
  });
  after(async () => {
    await nc?.close();
    await stack?.cleanup();
  });

  it("streams and the KV bucket are kept in 3 replicas", async () => {
    const jsm = await jetstreamManager(nc);
    for (const name of [STREAM_LOG, STREAM_JOBS, STREAM_RESULTS, `KV_${KV_STATE}`]) {
      const info = await jsm.streams.info(name);
      assert.equal(info.config.num_replicas, 3, name);
      assert.ok(info.cluster?.leader, `${name} has a leader`);
    }
  });

  it("loses and doubles nothing while each stream's leader is killed in turn", async () => {
    const cluster = stack.cluster;
    assert.ok(cluster);
    const api = await stack.connect();
    const jsm = await jetstreamManager(nc);
    const taskId = await api.submit(
      stepsTask(
        { maxPoints: POINTS, nParallelEvaluation: 2, sampler: { type: "random", seed: 7 } },
        { steps: 25, delay: 0.1 },
      ),
    );
    await api.waitFor(taskId, (d) => d.counts.running > 0, 60_000);
    for (const stream of [STREAM_LOG, STREAM_JOBS, STREAM_RESULTS]) {
      const before = await api.show(taskId);
      assert.notEqual(before.state, "finished", `the task finished before ${stream}'s leader was killed`);
      const leader = await waitForLeader(jsm, stream, undefined);
      await cluster.kill(leader);
      const next = await waitForLeader(jsm, stream, leader);
      assert.notEqual(next, leader);
      // the task goes on on two nodes: at least one more point is done before the node returns
      await api.waitFor(taskId, (d) => d.counts.done > before.counts.done || d.state === "finished", 120_000);
      await cluster.restart(leader);
      await cluster.waitForMetaLeader();
      await waitForReplicasCurrent(jsm, stream, 3);
    }
    const d = await api.waitFinished(taskId, 240_000);
    assert.equal(d.state, "finished");
    assert.equal(d.counts.done, POINTS);
    assert.equal(d.points.length, POINTS);
    for (const p of d.points) {
      assert.equal(p.state, "done", `point ${p.pointId}`);
      assert.equal(typeof p.loss, "number", `point ${p.pointId} has its result`);
      // each election is shorter than a lease: no attempt was given up for lost
      assert.equal(p.attempts, 1, `point ${p.pointId} ran ${p.attempts} times`);
    }

    // The log: no event twice (a retried append is dropped by its msgID), one success per point.
    const events = await readTaskLog(jetstream(nc), jsm, taskId);
    const seen = new Set<string>();
    for (const e of events) {
      const text = JSON.stringify(e);
      assert.ok(!seen.has(text), `an event is in the log twice: ${text}`);
      seen.add(text);
    }
    const finished = events.filter((e) => e.type === "job-finished");
    const perAttempt = new Set(finished.map((e) => `${e.jobId}.${e.attempt}`));
    assert.equal(perAttempt.size, finished.length, "one job-finished per attempt");
    assert.equal(new Set(d.points.map((p) => p.pointId)).size, POINTS);
  });
});
