// Standby steering on the real stack: two (then three) `gridtune-steering serve` processes, one
// leading through the KV lease. (a) The leader SIGKILLed mid-task: the standby takes over,
// rebuilds from the log and finishes the task with the results of an undisturbed run of the same
// seed. (b) A leader SIGSTOPped past its lease: the standby takes over; on SIGCONT the old leader
// answers none of the requests the server had routed to it, appends nothing to the log, publishes
// no job, and steps down.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { inboxPrefix, userIdentity } from "../../protocol/identity.ts";
import { STREAM_JOBS, STREAM_LOG, subjects } from "../../protocol/subjects.ts";
import type { ServiceProcess } from "../../stack/embedded.ts";
import {
  connectAsSteering,
  startTestStack,
  outcomeOf,
  seededStepsTask,
  type TestStack,
} from "../harness/stack.ts";
import { startSteeringProcess, steeringProcessOf, type SteeringProcess } from "../harness/standby.ts";

const task = seededStepsTask;
const outcome = outcomeOf;

describe("standby steering", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let steeringNc: NatsConnection;
  let a: SteeringProcess;
  let b: SteeringProcess;
  before(async () => {
    stack = await startTestStack({
      agents: 1,
      slotsPerAgent: 2,
      mode: "process",
      env: { GRIDTUNE_LEADER_TTL_MS: "3000" },
    });
    a = steeringProcessOf(stack.steering as ServiceProcess, `${stack.dir}/logs/steering.log`);
    b = await startSteeringProcess(stack, "b");
    steeringNc = await connectAsSteering(stack);
  });
  after(async () => {
    await steeringNc?.close();
    await b?.stop();
    await stack?.cleanup();
  });
  const lastSeq = async (stream: string) =>
    (await (await jetstreamManager(steeringNc)).streams.info(stream)).state.last_seq;

  it("(a) the leader killed mid-task: the standby finishes it with an undisturbed run's results", async () => {
    await b.waitLog(/standing by/);
    const api = await stack.connect();
    const reference = outcome(await api.waitFinished(await api.submit(task()), 90_000));
    assert.equal(reference.length, 6);

    const taskId = await api.submit(task());
    await api.waitFor(taskId, (d) => d.counts.done >= 2 && d.counts.running > 0, 60_000);
    await a.kill();
    await b.waitLog(/took over as the steering leader/, 30_000);
    const d = await api.waitFinished(taskId, 90_000);
    assert.deepEqual(outcome(d), reference);
    for (const p of d.points) assert.equal(p.attempts, 1, `point ${p.pointId} ran ${p.attempts} times`);
  });

  it("(b) a stopped leader whose lease lapsed answers nothing, writes nothing and steps down on SIGCONT", async () => {
    const c = await startSteeringProcess(stack, "c");
    try {
      await c.waitLog(/standing by/);
      const api = await stack.connect();
      // the user's own inbox: every answer to these requests lands here, whoever sends it
      const inbox = `${inboxPrefix(userIdentity("demo"))}.standby`;
      const answers = new Map<number, number>();
      const sub = api.nc.subscribe(`${inbox}.>`, {
        callback: (_e, m) => {
          const i = Number(m.subject.split(".").at(-1));
          answers.set(i, (answers.get(i) ?? 0) + 1);
        },
      });
      b.child.kill("SIGSTOP");
      await c.waitLog(/took over as the steering leader/, 30_000);
      const logSeq = await lastSeq(STREAM_LOG);
      const jobsSeq = await lastSeq(STREAM_JOBS);
      // the server still routes part of the queue group's requests to the stopped process
      const n = 20;
      for (let i = 0; i < n; i++)
        api.nc.publish(subjects.api("demo", "list"), JSON.stringify({ verb: "list" }), {
          reply: `${inbox}.${i}`,
        });
      await api.nc.flush();
      const deadline = Date.now() + 10_000;
      while (answers.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const answeredByC = answers.size;
      assert.ok(answeredByC > 0 && answeredByC < n, `the new leader answered ${answeredByC} of ${n}`);

      b.child.kill("SIGCONT");
      await b.waitLog(/stepping down: this process no longer leads/, 30_000);
      // what the old leader took while stopped it drops and says so (or, were it to answer, its
      // answers arrive): wait for either
      const until = Date.now() + 15_000;
      const dropped = () =>
        b.log().then((t) => t.includes("request not answered: this process no longer leads"));
      while (answers.size < n && !(await dropped()) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      await api.nc.flush();
      assert.equal(answers.size, answeredByC, "the old leader answered none of its requests");
      assert.ok(await dropped(), "the old leader logs the requests it did not answer");
      for (const [i, k] of answers) assert.equal(k, 1, `request ${i} answered ${k} times`);
      assert.equal(await lastSeq(STREAM_LOG), logSeq, "nothing appended to the log");
      assert.equal(await lastSeq(STREAM_JOBS), jobsSeq, "no job published");
      sub.unsubscribe();

      // the new leader serves, and the old one stands by behind it
      assert.ok(Array.isArray((await api.call("list", {})).tasks));
      const deadline2 = Date.now() + 10_000;
      while ((await b.log()).split("standing by: another steering process leads").length < 3)
        if (Date.now() > deadline2) assert.fail("the old leader does not stand by behind the new one");
        else await new Promise((r) => setTimeout(r, 100));
    } finally {
      await c.stop();
    }
  });
});
