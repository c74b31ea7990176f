// Size limits that keep every report and event loggable: a report or event that could never be
// stored must not wedge its task (rebuild after rebuild) or its report (redelivered forever).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseProgressLine } from "../../evaluator/progress.ts";
import { MAX_ERROR_MESSAGE, WireError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentReport, MAX_METRICS } from "../../protocol/messages.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { EventLog, MAX_EVENT_BYTES } from "../../steering/shell/eventLog.ts";
import type { LogEventOf } from "../../steering/core/events.ts";
import { Driver, engineState, spec, throwsCode } from "./fixtures/engineKit.ts";

const logger = createLogger("test", { level: "error" });

void describe("limits", () => {
  void it("a progress line with too many numbers keeps loss, the resource and the first names", () => {
    const line = JSON.stringify({
      ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`m${i}`, i])),
      [`${"x".repeat(200)}`]: 1,
      epoch: 3,
      loss: 0.5,
    });
    const p = parseProgressLine(line, 1)!;
    assert.equal(Object.keys(p.metrics).length, MAX_METRICS);
    assert.equal(p.metrics.loss, 0.5);
    assert.equal(p.metrics.epoch, 3);
    assert.equal(p.resource, 3);
    assert.ok(Object.keys(p.metrics).every((k) => k.length <= 128));
  });

  void it("reports with too many metrics are refused; long error messages are cut", () => {
    const base = { type: "progress", jobId: "t1-p0-j1", attempt: 1, resource: 1 } as const;
    const many = Object.fromEntries(Array.from({ length: MAX_METRICS + 1 }, (_, i) => [`m${i}`, i]));
    assert.equal(AgentReport.safeParse({ ...base, metrics: many }).success, false);
    assert.equal(AgentReport.safeParse({ ...base, metrics: { loss: 1 } }).success, true);
    const e = WireError.parse({ code: "INTERNAL", message: "y".repeat(100_000), retryable: false });
    assert.equal(e.message.length, MAX_ERROR_MESSAGE + 1);
    assert.ok(e.message.endsWith("…"));
  });

  void it("an event too large for the log is refused before it is applied, with the size in the error", () => {
    const d = new Driver(spec({ maxPoints: 3 }));
    const state = new SteeringState();
    for (const ev of d.log) state.apply(ev);
    const sent: string[] = [];
    const js = {
      publish: (subject: string) => (
        sent.push(subject),
        Promise.resolve({ seq: sent.length, duplicate: false })
      ),
    };
    const log = new EventLog(js, logger);
    const c = new Committer(state, log, { publish: () => undefined }, logger);
    const before = engineState(state.engines.get("42")!);
    const huge: LogEventOf<"points-added"> = {
      type: "points-added",
      taskId: "42",
      at: d.tick(),
      segment: 0,
      points: [{ pointId: 0, values: { x: 0.5, n: 1, note: "z".repeat(MAX_EVENT_BYTES) } }],
      sampler: null,
      exhausted: false,
      more: 0,
    };
    throwsCode(() => c.stage(huge), "TOO_LARGE", "points-added event of", "does not fit in the log");
    assert.deepEqual(engineState(state.engines.get("42")!), before, "nothing applied");
    assert.equal(c.isDiverged("42"), false, "the task goes on");
    assert.deepEqual(sent, []);
  });
});
