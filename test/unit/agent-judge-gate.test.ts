// The agent pauses the payload at the levels a stopping scheduler judges (Job.judgeAt) until
// steering's verdict (docs/evaluator.md, "Progress lines"): the real job runner with a stand-in
// runtime whose "payload" reports an epoch every millisecond and a stand-in steering that answers
// each report 100 ms later, a literal verdict: stop at epoch 3, continue a held report below it.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { runJob } from "../../evaluator/jobRunner.ts";
import { Verdicts } from "../../evaluator/judgeGate.ts";
import type { SteeringLink, StopReason } from "../../evaluator/link.ts";
import type { Runtime, RunHooks, RunOutcome, RunSpec } from "../../evaluator/runtime/types.ts";
import { PROGRESS_STDOUT_MARKER } from "../../protocol/files.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReport } from "../../protocol/messages.ts";
import { buildJob, judgeLevels } from "../../steering/core/task/jobBuilder.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { LADDER, schedSpec } from "./fixtures/schedulerSim.ts";
import { TEST_SITE_POLICY } from "./fixtures/sitePolicy.ts";

const logger = createLogger("test", { level: "error" });
const EPOCHS = 60;

/** Prints one progress marker line an epoch (1 ms each) while not paused; ends when stopped. */
class EpochPayload implements Runtime {
  readonly kind = "process" as const;
  emitted: number[] = [];
  pauses = 0;
  private paused = false;
  async run(s: RunSpec, hooks: RunHooks): Promise<RunOutcome> {
    hooks.onStarted?.({
      pause: () => Promise.resolve(void ((this.paused = true), this.pauses++)),
      resume: () => Promise.resolve(void (this.paused = false)),
    });
    for (let e = 1; e <= EPOCHS && !hooks.signal.aborted; e++) {
      while (this.paused && !hooks.signal.aborted) await sleep(2);
      if (hooks.signal.aborted) break;
      this.emitted.push(e);
      hooks.onStdoutLine?.(`${PROGRESS_STDOUT_MARKER}${JSON.stringify({ epoch: e, loss: 1 / e })}`);
      await sleep(1);
    }
    const stopped = hooks.signal.aborted;
    if (!stopped) await writeFile(join(s.workDir, "output.json"), JSON.stringify({ status: 0, loss: 0.5 }));
    const o = { exitCode: stopped ? 143 : 0, timedOut: false, oomKilled: false, stopped, durationMs: 1 };
    return { ...o, logBytes: 0, logTruncated: false };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Runs a job judged at 1, 3 and 9 whose steering stops it at `stopAt` (null: never) and, when
 * `answers`, sends a continue for every other report; `gate`: whether the agent pauses at all.
 */
async function run(o: { stopAt: number | null; answers: boolean; gate: boolean }) {
  const d = new Driver(spec({ maxPoints: 1 }), "7");
  d.sampleAll();
  const job = { ...buildJob(d.engine, d.dispatch("s")!.jobId), judgeAt: [1, 3, 9] };
  const workRoot = await mkdtemp(join(tmpdir(), "gt-judge-"));
  const controller = new AbortController();
  const verdicts = new Verdicts();
  const payload = new EpochPayload();
  const reports: AgentReport[] = [];
  const link: SteeringLink = {
    request: (req) => Promise.reject(new Error(`unexpected ${req.type}`)),
    report: (r) => {
      reports.push(r);
      if (r.type === "progress")
        setTimeout(() => {
          if (o.stopAt !== null && r.resource >= o.stopAt) controller.abort("pruned" satisfies StopReason);
          else if (o.answers && r.held) verdicts.continued(r.resource);
        }, 100);
      return Promise.resolve();
    },
  };
  try {
    await runJob({
      job,
      grant: { sandbox: null, trainingData: [], checkpoint: null },
      link,
      runtime: payload,
      workRoot,
      gpus: [],
      policy: TEST_SITE_POLICY,
      logger,
      signal: controller.signal,
      instance: "test",
      trustedUsers: [job.user],
      ...(o.gate ? { verdicts, verdictWaitMs: 1000 } : {}),
    });
  } finally {
    await rm(workRoot, { recursive: true, force: true });
  }
  return { payload, reports };
}

void describe("agent: a payload paused at a judged level until its verdict", () => {
  void it("trains no further than the report that got it stopped", async () => {
    const { payload, reports } = await run({ stopAt: 3, answers: true, gate: true });
    assert.deepEqual(payload.emitted, [1, 2, 3]);
    assert.equal(payload.pauses, 2, "paused at 1 (continued) and at 3 (stopped)");
    const result = reports.find((r) => r.type === "result");
    assert.equal(result?.type === "result" && result.status, "stopped");
  });
  void it("without the pause, the same stop arrives many epochs late (what the gate is for)", async () => {
    const { payload } = await run({ stopAt: 3, answers: true, gate: false });
    assert.ok(payload.emitted.length > 4, `emitted ${payload.emitted.length} epochs`);
  });
  void it("resumes at once on a continue, and runs to its end when never stopped", async () => {
    const { payload, reports } = await run({ stopAt: null, answers: true, gate: true });
    assert.equal(payload.emitted.length, EPOCHS);
    assert.equal(payload.pauses, 3, "once at each of 1, 3 and 9");
    const held = reports.flatMap((r) => (r.type === "progress" && r.held ? [r.resource] : []));
    assert.deepEqual(held, [1, 3, 9], "the reports it waited at say so; steering answers only those");
    const result = reports.find((r) => r.type === "result");
    assert.equal(result?.type === "result" && result.status, "ok");
  });
  void it("resumes on its own after the bounded wait when steering never answers", async () => {
    const { payload, reports } = await run({ stopAt: null, answers: false, gate: true });
    assert.equal(payload.emitted.length, EPOCHS, "a silent steering never stalls training");
    assert.equal(payload.pauses, 3);
    const result = reports.find((r) => r.type === "result");
    assert.equal(result?.type === "result" && result.status, "ok");
  });
});

void describe("steering: the levels a job is judged at (Job.judgeAt)", () => {
  const levels = (scheduler: Parameters<typeof schedSpec>[0]) =>
    judgeLevels(new Driver(schedSpec(scheduler), "7").engine, 0);
  void it("a stopping scheduler's rungs below max_t", () => {
    assert.deepEqual(levels({ type: "asha-stopping", ...LADDER }), [1, 3]);
    assert.deepEqual(levels({ type: "hyperband", variant: "stopping", ...LADDER }), [1, 3]);
  });
  void it("none where the job ends where it is judged: pausing schedulers, FIFO, no scheduler", () => {
    assert.deepEqual(levels({ type: "asha-promotion", ...LADDER }), []);
    assert.deepEqual(levels({ type: "hyperband", variant: "promotion", ...LADDER }), []);
    assert.deepEqual(levels({ type: "fifo", max_t: 4 }), []);
    assert.deepEqual(judgeLevels(new Driver(spec({ maxPoints: 1 }), "7").engine, 0), []);
  });
});
