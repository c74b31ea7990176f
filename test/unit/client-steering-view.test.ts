// phpo's views of a task's steering program (client/steeringView.ts): show's table and each
// failure's full reason, the failure line of show/list/watch/--wait naming the iteration to read,
// and watch's line per run; nothing for a task without steeringExec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SteeringIterationView, TaskDetail } from "../../protocol/api.ts";
import { renderShow } from "../../client/render.ts";
import { renderSteering, steeringFailureLine, steeringIterationLine } from "../../client/steeringView.ts";
import { sampleDetail } from "../harness/fakeSteering.ts";

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
const run = (
  over: Partial<SteeringIterationView> & Pick<SteeringIterationView, "iteration">,
): SteeringIterationView => ({
  segment: null,
  startedAt: T0,
  endedAt: T0 + 1500,
  outcome: "points",
  added: 2,
  exitCode: 0,
  reason: null,
  retryAt: null,
  hasLog: true,
  ...over,
});

function withSteering(its: SteeringIterationView[], failure: string | null): TaskDetail {
  const d = sampleDetail("12");
  return {
    ...d,
    spec: { ...d.spec, scheduler: undefined, steeringExec: "python3 my_opt.py %IN %OUT" },
    steering: {
      iterations: its.length,
      failed: its.filter((i) => i.outcome === "failed").length,
      last: its.at(-1) ?? null,
      failure,
    },
    steeringIterations: its,
  };
}

void describe("phpo: the steering program's runs", () => {
  void it("show lists every run and each failure's full reason; the failure line names the run to read", () => {
    const boom =
      "the steering process exited with code 2 (python3 my_opt.py …); its output ends with:\nTraceback: boom";
    const d = withSteering(
      [
        run({ iteration: 1 }),
        run({ iteration: 2, outcome: "failed", added: 0, exitCode: 2, reason: boom, retryAt: T0 + 5000 }),
        run({ iteration: 3, outcome: "failed", added: 0, exitCode: 2, reason: boom }),
      ],
      `iteration 3 failed: ${boom}`,
    );
    const text = renderShow(d);
    assert.match(text, /steering program: 3 iterations, 2 failed/);
    assert.match(text, /failed, retried/);
    assert.match(text, /FAILED/);
    assert.match(text, /iteration 3: the steering process exited with code 2 .*\nTraceback: boom/);
    assert.match(
      text,
      /steering program failed, generation ended: iteration 3 failed: .*; its output: phpo logs 12 --steering --iteration 3/s,
    );
    assert.equal(steeringFailureLine(withSteering([run({ iteration: 1 })], null)), null);
  });

  void it("watch prints one line per run, a failure's first line of reason and its retry", () => {
    assert.equal(
      steeringIterationLine("12", run({ iteration: 1, segment: "seg-a" })),
      "task 12 steering iteration 1 (segment seg-a): points, 2 points added, exit 0",
    );
    const line = steeringIterationLine(
      "12",
      run({
        iteration: 2,
        outcome: "failed",
        added: 0,
        exitCode: null,
        reason: "ran past its deadline\nmore",
        retryAt: T0 + 5000,
      }),
    );
    assert.match(
      line,
      /^task 12 steering iteration 2: failed, retried, 0 points added: ran past its deadline; runs again at .*\(phpo logs 12 --steering --iteration 2\)$/,
    );
  });

  void it("a task without steeringExec shows no steering section", () => {
    assert.deepEqual(renderSteering(sampleDetail("7")), []);
    assert.doesNotMatch(renderShow(sampleDetail("7")), /steering program/);
  });
});
