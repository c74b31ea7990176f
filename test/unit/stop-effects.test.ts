// The one path for stop requests and continue verdicts: the send-stop and send-continue effects,
// run by the EffectRunner (steering/shell/effects.ts), go to the agent's own control subject as a
// schema-valid ControlMessage; a failed publish is logged, never thrown (the stop is decided again
// on the attempt's next report and after a restart), and so is a missing connection.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { createLogger, type Logger } from "../../protocol/log.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { EffectRunner } from "../../steering/shell/effects.ts";

function runner(control: ((site: string, agent: string, msg: ControlMessage) => void) | null) {
  const warnings: string[] = [];
  const logger: Logger = {
    ...createLogger("test", { level: "error" }),
    warn: (message: string) => void warnings.push(message),
  };
  const r = new EffectRunner({
    logger,
    agents: new AgentRegistry(1000),
    kick: () => undefined,
    publishJob: () => Promise.resolve(),
    control,
    wakeAt: () => undefined,
    startProgramIteration: () => undefined,
    stopsOf: () => [],
    abortUpload: () => Promise.resolve(),
  });
  return { r, warnings };
}

void describe("send-stop and send-continue", () => {
  void it("publish a valid control message on the agent's own subject", async () => {
    const sent: Array<[string, ControlMessage]> = [];
    const { r } = runner((site, agent, msg) => sent.push([subjects.control(site, agent), msg]));
    await r.run({
      type: "send-stop",
      site: "s",
      agent: "a",
      jobId: "t1-p0-j1",
      attempt: 2,
      reason: "killed",
    });
    await r.run({ type: "send-continue", site: "s", agent: "b", jobId: "t1-p1-j1", attempt: 1, resource: 3 });
    assert.deepEqual(sent, [
      ["gt.ctl.s.a", { type: "stop", jobId: "t1-p0-j1", attempt: 2, reason: "killed" }],
      ["gt.ctl.s.b", { type: "continue", jobId: "t1-p1-j1", attempt: 1, resource: 3 }],
    ]);
    for (const [, msg] of sent) ControlMessage.parse(msg);
  });

  void it("a publish that throws (connection closed) is logged, not thrown", async () => {
    const { r, warnings } = runner(() => {
      throw new Error("connection closed");
    });
    await r.run({
      type: "send-stop",
      site: "s",
      agent: "a",
      jobId: "t1-p0-j1",
      attempt: 1,
      reason: "pruned",
    });
    assert.deepEqual(warnings, [
      "could not send a stop request; the attempt's next report or heartbeat repairs it",
    ]);
  });

  void it("without a connection the stop is logged as not sent", async () => {
    const { r, warnings } = runner(null);
    await r.run({
      type: "send-stop",
      site: "s",
      agent: "a",
      jobId: "t1-p0-j1",
      attempt: 1,
      reason: "paused",
    });
    assert.equal(warnings.length, 1);
  });
});
