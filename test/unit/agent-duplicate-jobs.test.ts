// The agent's take() with two JOBS messages for one attempt (a republish past the 120 s msgID
// window, a redelivery after a lost ack): the attempt runs once. A copy of an attempt running here
// is acked and dropped without a claim; a copy that arrives while the attempt's claim is in flight
// goes back to the queue. Steering, NATS and the runtime are stand-ins; the job runner is real.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { JsMsg } from "@nats-io/jetstream";
import { Agent } from "../../evaluator/agent.ts";
import type { Runtime, RunOutcome, RunSpec, RunHooks } from "../../evaluator/runtime/types.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReply, AgentRequest, Job } from "../../protocol/messages.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { TEST_SITE_POLICY } from "./fixtures/sitePolicy.ts";

const policy = TEST_SITE_POLICY;

/** A runtime whose payloads run until they are stopped. */
class WaitingRuntime implements Runtime {
  readonly kind = "process" as const;
  readonly started: string[] = [];
  private readonly stops: Array<() => void> = [];
  run(s: RunSpec, hooks: RunHooks): Promise<RunOutcome> {
    this.started.push(s.key);
    return new Promise((resolve) => {
      const stopped = () =>
        resolve({
          exitCode: 143,
          timedOut: false,
          oomKilled: false,
          stopped: true,
          durationMs: 1,
          logBytes: 0,
          logTruncated: false,
        });
      this.stops.push(stopped);
      if (hooks.signal.aborted) stopped();
      else hooks.signal.addEventListener("abort", stopped, { once: true });
    });
  }
  /** Ends every payload, also one the agent lost track of (a second run of one attempt). */
  stopAll(): void {
    for (const s of this.stops.splice(0)) s();
  }
  get active(): number {
    return this.stops.length;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A JOBS message as the agent sees it; records what the agent did with it. */
function jobMsg(job: Job, seq: number) {
  const m = {
    seq,
    done: [] as string[],
    json: () => job,
    ack: () => void m.done.push("ack"),
    nak: (ms?: number) => void m.done.push(`nak ${ms ?? 0}`),
    term: () => void m.done.push("term"),
  };
  return m;
}

interface AgentInternals {
  state: Agent["state"];
  take(m: JsMsg, slot: number): Promise<void>;
  stop(jobId: string, attempt: number, reason: "stale"): void;
}

const pause = () => new Promise((r) => setTimeout(r, 5));

async function setup() {
  const d = new Driver(spec({ maxPoints: 1 }), "7");
  d.sampleAll();
  const ref = d.dispatch("s")!;
  const job = buildJob(d.engine, ref.jobId);
  const workRoot = await mkdtemp(join(tmpdir(), "gt-dup-"));
  const runtime = new WaitingRuntime();
  const agent = new Agent({
    site: "s",
    agent: "a",
    natsUrl: "nats://unused",
    seedFile: "unused",
    slots: [[], []],
    runtime,
    workRoot,
    policy,
    logger: createLogger("test", { level: "error" }),
    trustedUsers: [job.user],
  });
  const claims: AgentRequest[] = [];
  let answer: () => Promise<AgentReply> = () =>
    Promise.resolve({ type: "claimed", grant: { sandbox: null, trainingData: [], checkpoint: null } });
  agent.request = (req) => {
    claims.push(req);
    return answer();
  };
  agent.report = () => Promise.resolve();
  const inner = agent as unknown as AgentInternals;
  inner.state = "running";
  return {
    job,
    agent,
    inner,
    runtime,
    claims,
    setAnswer: (f: () => Promise<AgentReply>) => (answer = f),
    cleanup: async () => {
      // every run ends, a second run of the attempt too (the agent keeps one per attempt)
      for (
        let i = 0;
        i < 200 && (runtime.started.length === 0 || runtime.active > 0 || agent.runningJobs().length > 0);
        i++
      ) {
        inner.stop(job.jobId, job.attempt, "stale");
        runtime.stopAll();
        await pause();
      }
      await rm(workRoot, { recursive: true, force: true });
    },
  };
}

void describe("agent: duplicate job messages", () => {
  void it("a second message for an attempt running here is acked and dropped, unclaimed", async (t) => {
    const { job, agent, inner, runtime, claims, cleanup } = await setup();
    t.after(cleanup);
    const first = jobMsg(job, 1);
    const second = jobMsg(job, 2);
    await inner.take(first as unknown as JsMsg, 0);
    await inner.take(second as unknown as JsMsg, 1);
    assert.deepEqual(first.done, ["ack"]);
    assert.deepEqual(second.done, ["ack"], "the duplicate is done with");
    assert.equal(claims.length, 1, "the duplicate is not claimed");
    assert.equal(agent.runningJobs().length, 1);
    for (let i = 0; i < 100 && runtime.started.length === 0; i++) await pause();
    for (let i = 0; i < 10; i++) await pause(); // time for a second run to start, were there one
    assert.deepEqual(
      runtime.started,
      [`${agent.instance}-${job.jobId}-a${job.attempt}`],
      "the attempt runs once",
    );
  });

  void it("a second message that arrives while the attempt is claimed goes back to the queue", async (t) => {
    const { job, agent, inner, claims, setAnswer, cleanup } = await setup();
    const held: Array<() => void> = [];
    const grant = () => {
      for (const g of held.splice(0)) g();
    };
    setAnswer(
      () =>
        new Promise((resolve) =>
          held.push(() =>
            resolve({ type: "claimed", grant: { sandbox: null, trainingData: [], checkpoint: null } }),
          ),
        ),
    );
    t.after(async () => {
      grant();
      await cleanup();
    });
    const first = jobMsg(job, 1);
    const second = jobMsg(job, 2);
    const taking = [inner.take(first as unknown as JsMsg, 0), inner.take(second as unknown as JsMsg, 1)];
    for (let i = 0; i < 10; i++) await pause();
    assert.deepEqual(second.done, ["nak 5000"], "put back: the claim in flight may still fail");
    assert.equal(claims.length, 1);
    grant();
    await Promise.all(taking);
    assert.deepEqual(first.done, ["ack"]);
    assert.equal(agent.runningJobs().length, 1);
  });
});
