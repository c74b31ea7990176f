// The stop-attempts effect's port (steering/shell/taskStops.ts): after a kill is durable, the agent
// of each claimed attempt of the task gets a stop on its control subject; an attempt nobody claimed
// gets none; a stop that cannot be sent is logged and does not fail the kill; a runner without the
// port says so.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { EffectRunner } from "../../steering/shell/effects.ts";
import { stopTaskAttempts } from "../../steering/shell/taskStops.ts";
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
  it("the claimed attempt's agent gets a stop; the unclaimed one and other tasks get nothing", async () => {
    const { kit, claimed } = twoAttempts();
    const sent: Array<{ subject: string; msg: ControlMessage }> = [];
    const nc = {
      publish: (subject: string, data: string) => {
        sent.push({ subject, msg: ControlMessage.parse(JSON.parse(data)) });
      },
    };
    const logger = createLogger("test", { level: "error" });
    assert.ok((await call(kit, "alice", { verb: "kill", taskId: "1" })).ok);
    assert.deepEqual(kit.stops, [{ taskId: "1", reason: "killed" }], "the kill ran the effect");
    assert.equal(stopTaskAttempts(nc, kit.state, logger, "1", "killed"), 1);
    assert.deepEqual(sent, [
      {
        subject: subjects.control("s", "a"),
        msg: { type: "stop", jobId: claimed.jobId, attempt: claimed.attempt, reason: "killed" },
      },
    ]);
    assert.equal(stopTaskAttempts(nc, kit.state, logger, "2", "killed"), 0, "no such task");
    assert.equal(sent.length, 1);
  });

  it("a publish that fails is logged, not thrown", () => {
    const { kit } = twoAttempts();
    const lines: string[] = [];
    const logger = createLogger("test", { level: "warn", sink: (l) => lines.push(l) });
    const down = {
      publish: () => {
        throw new Error("connection closed");
      },
    };
    assert.equal(stopTaskAttempts(down, kit.state, logger, "1", "killed"), 0);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /could not send a stop.*connection closed/);
  });

  it("an effect runner built without the port refuses the effect instead of dropping it", async () => {
    const runner = new EffectRunner({
      logger: createLogger("test", { level: "error" }),
      agents: new AgentRegistry(30_000),
      kick: () => undefined,
    });
    await assert.rejects(
      runner.run({ type: "stop-attempts", taskId: "1", reason: "killed" }),
      /built without a stopAttempts port/,
    );
  });
});
