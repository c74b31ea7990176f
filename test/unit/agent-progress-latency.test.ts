// A stopping scheduler judges a trial from its progress reports, so a report must leave the agent
// soon after the payload writes it (docs/evaluator.md, "Progress lines"). The real job runner with
// a stand-in runtime that writes progress.jsonl in lockstep: each line only after the previous
// one's report arrived, as a payload that waits for its verdict would.
import assert from "node:assert/strict";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { runJob } from "../../evaluator/jobRunner.ts";
import type { SteeringLink } from "../../evaluator/link.ts";
import type { Runtime, RunOutcome, RunSpec } from "../../evaluator/runtime/types.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReport } from "../../protocol/messages.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { TEST_SITE_POLICY } from "./fixtures/sitePolicy.ts";

const logger = createLogger("test", { level: "error" });
const LINES = 30;

/** Appends one progress line, waits for its report, then the next; `burst` lines at once first. */
class LockstepPayload implements Runtime {
  readonly kind = "process" as const;
  constructor(
    private readonly reports: AgentReport[],
    private readonly burst: number,
  ) {}
  async run(s: RunSpec): Promise<RunOutcome> {
    const file = join(s.workDir, "progress.jsonl");
    const line = (epoch: number): string => `${JSON.stringify({ epoch, loss: 1 / epoch })}\n`;
    for (let e = 1; e <= this.burst; e++) await appendFile(file, line(e));
    for (let e = this.burst + 1; e <= LINES; e++) {
      await appendFile(file, line(e));
      while (!this.reports.some((r) => r.type === "progress" && r.resource === e)) await sleep(5);
    }
    await writeFile(join(s.workDir, "output.json"), JSON.stringify({ status: 0, loss: 0.5 }));
    const o = { exitCode: 0, timedOut: false, oomKilled: false, stopped: false, durationMs: 1 };
    return { ...o, logBytes: 0, logTruncated: false };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function run(burst: number): Promise<{ reports: AgentReport[]; ms: number }> {
  const d = new Driver(spec({ maxPoints: 1 }), "7");
  d.sampleAll();
  const job = buildJob(d.engine, d.dispatch("s")!.jobId);
  const workRoot = await mkdtemp(join(tmpdir(), "gt-progress-"));
  const reports: AgentReport[] = [];
  const link: SteeringLink = {
    request: (req) => Promise.reject(new Error(`unexpected ${req.type}`)),
    report: (r) => (reports.push(r), Promise.resolve()),
  };
  const t0 = performance.now();
  try {
    await runJob({
      job,
      grant: { sandbox: null, trainingData: [], checkpoint: null },
      link,
      runtime: new LockstepPayload(reports, burst),
      workRoot,
      gpus: [],
      policy: TEST_SITE_POLICY,
      logger,
      signal: new AbortController().signal,
      instance: "test",
      trustedUsers: [job.user],
    });
  } finally {
    await rm(workRoot, { recursive: true, force: true });
  }
  return { reports, ms: performance.now() - t0 };
}

const levels = (reports: AgentReport[]): number[] =>
  reports.flatMap((r) => (r.type === "progress" ? [r.resource] : []));

void describe("agent: progress-file reports while the payload runs", () => {
  void it("forwards each line well within a second of its write", async () => {
    const { reports, ms } = await run(0);
    assert.deepEqual(
      levels(reports),
      Array.from({ length: LINES }, (_, i) => i + 1),
    );
    // Read once a second (the old poll, no watch), 30 lockstep lines take at least 30 s; watched,
    // or polled every 100 ms where watching fails, at most about 3 s. The bound leaves a loaded
    // 2-core machine several times that.
    assert.ok(ms < 20_000, `${LINES} lockstep reports took ${Math.round(ms)} ms`);
  });
  void it("forwards a burst written between two reads once each, in order", async () => {
    const { reports } = await run(LINES - 1);
    assert.deepEqual(
      levels(reports),
      Array.from({ length: LINES }, (_, i) => i + 1),
    );
    assert.equal(reports.filter((r) => r.type === "result").length, 1);
  });
});
