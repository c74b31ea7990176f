// A retry prefers another agent (issue 14, item 7): an agent named in a job's avoidAgents (it
// already failed the job) puts the message back for another agent of the site, a bounded number of
// times, then runs the job after all. Steering, NATS and the runtime are stand-ins.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { JsMsg } from "@nats-io/jetstream";
import { Agent } from "../../evaluator/agent.ts";
import type { Runtime, RunOutcome } from "../../evaluator/runtime/types.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentRequest, Job } from "../../protocol/messages.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

/** A runtime whose payloads end at once with exit code 1 (nothing here depends on the run). */
const runtime: Runtime = {
  kind: "process",
  run: (): Promise<RunOutcome> =>
    Promise.resolve({
      exitCode: 1,
      timedOut: false,
      oomKilled: false,
      stopped: false,
      durationMs: 1,
      logBytes: 0,
      logTruncated: false,
    }),
  close: () => Promise.resolve(),
};

function jobMsg(job: Job, deliveryCount: number) {
  const m = {
    seq: deliveryCount,
    info: { deliveryCount },
    done: [] as string[],
    json: () => job,
    ack: () => void m.done.push("ack"),
    nak: (ms?: number) => void m.done.push(`nak ${ms ?? 0}`),
    term: () => void m.done.push("term"),
  };
  return m;
}

void describe("agent: the retry of a job it already failed", () => {
  void it("is put back for another agent three times, then run here", async (t) => {
    const d = new Driver(spec({ maxPoints: 1 }), "7");
    d.sampleAll();
    const ref = d.dispatch("s")!;
    const job = { ...buildJob(d.engine, ref.jobId), avoidAgents: ["a"] };
    const workRoot = await mkdtemp(join(tmpdir(), "gt-avoid-"));
    t.after(() => rm(workRoot, { recursive: true, force: true }));
    const agent = new Agent({
      site: "s",
      agent: "a",
      natsUrl: "nats://unused",
      seedFile: "unused",
      trustedUsers: [],
      slots: [[]],
      runtime,
      workRoot,
      policy: {
        allowNetwork: false,
        maxMemoryBytes: 1024 ** 3,
        maxNanoCpus: 1e9,
        pidsLimit: 64,
        maxLogBytes: 1024,
        maxWallClockMs: 60_000,
        stopGraceMs: 100,
        maxInputBytes: 1024,
      },
      logger: createLogger("test", { level: "error" }),
    });
    const claims: AgentRequest[] = [];
    agent.request = (req) => {
      claims.push(req);
      return Promise.resolve({
        type: "claimed",
        grant: { sandbox: null, trainingData: [], checkpoint: null },
      });
    };
    agent.report = () => Promise.resolve();
    const inner = agent as unknown as { state: string; take(m: JsMsg, slot: number): Promise<void> };
    inner.state = "running";
    for (const n of [1, 2, 3]) {
      const m = jobMsg(job, n);
      await inner.take(m as unknown as JsMsg, 0);
      assert.deepEqual(m.done, ["nak 1000"], `delivery ${n} is put back`);
    }
    assert.equal(claims.length, 0, "not claimed while another agent may take it");
    const last = jobMsg(job, 4);
    await inner.take(last as unknown as JsMsg, 0);
    assert.deepEqual(last.done, ["ack"], "the fourth delivery is run here");
    assert.equal(claims.length, 1);
    const other = jobMsg({ ...job, avoidAgents: ["b"] }, 1);
    for (let i = 0; i < 100 && agent.runningJobs().length > 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    await inner.take(other as unknown as JsMsg, 0);
    assert.notDeepEqual(other.done, ["nak 1000"], "an agent not named takes the job at once");
  });
});
