// The agent classes each failed attempt on its result (docs/steering.md, "Failures"): the real job
// runner with a stand-in runtime that ends the way a real one reports (timed out, OOMKilled, exit
// code, or an error before the payload ran).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runJob } from "../../evaluator/jobRunner.ts";
import type { SteeringLink } from "../../evaluator/link.ts";
import type { Runtime, RunOutcome, RunSpec } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";
import type { FailureClass } from "../../protocol/failures.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReport } from "../../protocol/messages.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { TEST_SITE_POLICY } from "./fixtures/sitePolicy.ts";

const logger = createLogger("test", { level: "error" });
const policy = TEST_SITE_POLICY;

/** Ends as `end` says: an outcome (after writing output.json with `output`), or an error thrown. */
class StandIn implements Runtime {
  readonly kind = "process" as const;
  constructor(private readonly end: Partial<RunOutcome> | Error) {}
  async run(s: RunSpec): Promise<RunOutcome> {
    if (this.end instanceof Error) throw this.end;
    await writeFile(join(s.workDir, "output.json"), JSON.stringify({ status: 0, loss: 0.5 }));
    const o = { exitCode: 0, timedOut: false, oomKilled: false, stopped: false, durationMs: 1 };
    return { ...o, logBytes: 0, logTruncated: false, ...this.end };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function resultOf(end: Partial<RunOutcome> | Error): Promise<Extract<AgentReport, { type: "result" }>> {
  const d = new Driver(spec({ maxPoints: 1 }), "7");
  d.sampleAll();
  const job = buildJob(d.engine, d.dispatch("s")!.jobId);
  const workRoot = await mkdtemp(join(tmpdir(), "gt-class-"));
  const reports: AgentReport[] = [];
  const link: SteeringLink = {
    request: (req) => Promise.reject(new Error(`unexpected ${req.type}`)),
    report: (r) => (reports.push(r), Promise.resolve()),
  };
  try {
    await runJob({
      job,
      grant: { sandbox: null, trainingData: [], checkpoint: null },
      link,
      runtime: new StandIn(end),
      workRoot,
      gpus: [],
      policy,
      logger,
      signal: new AbortController().signal,
      instance: "test",
      trustedUsers: [job.user],
    });
  } finally {
    await rm(workRoot, { recursive: true, force: true });
  }
  const r = reports.find((x) => x.type === "result");
  assert.ok(r?.type === "result", JSON.stringify(reports));
  return r;
}

void describe("agent: the failure class on the result", () => {
  const cases: Array<[string, Partial<RunOutcome> | Error, FailureClass | null]> = [
    ["a clean run", {}, null],
    ["a non-zero exit", { exitCode: 1 }, "payload"],
    ["the wall-clock limit", { exitCode: 137, timedOut: true }, "timeout"],
    ["out of memory", { exitCode: 137, oomKilled: true }, "oom"],
    ["a missing image", new RuntimeError("IMAGE_MISSING", 'image "x:1" is not on this Docker host'), "image"],
    ["a refused image", new RuntimeError("IMAGE_NOT_ALLOWED", 'image "x:1" is not allowed here'), "image"],
    [
      "the daemon down",
      new RuntimeError("RUNTIME_UNAVAILABLE", "docker daemon unavailable"),
      "infrastructure",
    ],
  ];
  for (const [name, end, cls] of cases) {
    void it(`${name}: ${cls ?? "no class"}`, async () => {
      const r = await resultOf(end);
      assert.equal(r.failureClass, cls, JSON.stringify(r));
      assert.equal(r.status, cls === null ? "ok" : "failed");
      if (end instanceof Error) assert.equal(r.error?.message, end.message, "the reason travels with it");
    });
  }
});
