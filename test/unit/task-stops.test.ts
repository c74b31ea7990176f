// A kill's stop-attempts effect (decided at the kill) is expanded when it runs, against the log's
// state as it is then, into one send-stop per claimed attempt (core/decide/reports.ts
// stopAllEffects, the dispatcher's stopsOf port): the claimed attempt's agent gets a stop on its own
// control subject, an attempt nobody claimed gets none, and a task that is gone gets nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { stopAllEffects } from "../../steering/core/decide/reports.ts";
import { EffectRunner } from "../../steering/shell/effects.ts";
import { quietPorts } from "./fixtures/agentKit.ts";
import { apiKit, call, createTask, record } from "./fixtures/apiKit.ts";

/** Task "1" of alice: one attempt claimed by s/a, one dispatched to s and not claimed. */
function twoAttempts() {
  const kit = apiKit();
  const e = createTask(kit, "1", "alice", { maxPoints: 2, nPointsPerIteration: 2, nParallelEvaluation: 2 });
  record(kit, e.proposeSampling(2)!);
  const claimed = e.nextDispatchable()!;
  const ref = { taskId: "1", jobId: claimed.jobId, attempt: claimed.attempt };
  record(
    kit,
    { type: "job-dispatched", ...ref, at: 3, site: "s" },
    { type: "job-claimed", ...ref, at: 4, site: "s", agent: "a" },
  );
  const waiting = e.nextDispatchable()!;
  record(kit, { type: "job-dispatched", taskId: "1", jobId: waiting.jobId, attempt: 1, at: 5, site: "s" });
  return { kit, claimed };
}

describe("stopping a killed task's attempts", () => {
  it("the kill asks for the task's stops; they go to the claimed attempt's agent only", async () => {
    const { kit, claimed } = twoAttempts();
    assert.ok((await call(kit, "alice", { verb: "kill", taskId: "1" })).ok);
    assert.deepEqual(kit.stops, [{ taskId: "1", reason: "killed" }], "the kill ran the effect");

    const sent: Array<{ subject: string; msg: ControlMessage }> = [];
    const runner = new EffectRunner({
      ...quietPorts(kit.world().agents, () => undefined),
      control: (site, agent, msg) =>
        sent.push({ subject: subjects.control(site, agent), msg: ControlMessage.parse(msg) }),
      stopsOf: (taskId, reason) => {
        const e = kit.state.engines.get(taskId);
        return e ? stopAllEffects(e, reason) : [];
      },
    });
    await runner.run({ type: "stop-attempts", taskId: "1", reason: "killed" });
    assert.deepEqual(sent, [
      {
        subject: subjects.control("s", "a"),
        msg: { type: "stop", jobId: claimed.jobId, attempt: claimed.attempt, reason: "killed" },
      },
    ]);
    await runner.run({ type: "stop-attempts", taskId: "2", reason: "killed" });
    assert.equal(sent.length, 1, "no such task: nothing sent");
  });
});
