// The agent holds a docker payload at a judged level until steering's verdict: the real job runner
// and DockerRuntime on the real dockerd, a payload in the python image that appends an epoch to
// progress.jsonl every 100 ms, and a stand-in steering that answers each report 400 ms later (a
// slow steering, or a far site) with a literal verdict: stop at epoch 3, continue a held report
// below it. Held, the container trains no further than one epoch past the report that got it
// stopped; without the hold (the docker runtime before it) it trained on for the whole 400 ms.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runJob } from "../../evaluator/jobRunner.ts";
import { Verdicts } from "../../evaluator/judgeGate.ts";
import type { SteeringLink, StopReason } from "../../evaluator/link.ts";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";
import { createLogger } from "../../protocol/log.ts";
import type { AgentReport } from "../../protocol/messages.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import { dockerAvailable, ensureTestImages, PYTHON_IMAGE } from "../harness/images.ts";
import { Driver, spec } from "../unit/fixtures/engineKit.ts";
import { TEST_SITE_POLICY } from "../unit/fixtures/sitePolicy.ts";

const available = await dockerAvailable();
const skip = available ? false : "no Docker daemon answers (start dockerd or set DOCKER_HOST)";
const logger = createLogger("test", { level: "error", sink: () => undefined });

/** An epoch every 100 ms up to 30, one progress line each; output.json at the end. */
const PAYLOAD = `
import json, time
for e in range(1, 31):
    time.sleep(0.1)
    with open("progress.jsonl", "a") as f:
        f.write(json.dumps({"epoch": e, "loss": 1.0 / e}) + "\\n")
json.dump({"status": 0, "loss": 1.0 / 30}, open("output.json", "w"))
`;
const STEERING_MS = 400;

describe(
  "agent: a docker payload held at a judged level until its verdict",
  { skip, timeout: 120_000 },
  () => {
    const runtime = new DockerRuntime();
    let workRoot = "";
    before(async () => {
      await ensureTestImages();
      workRoot = await mkdtemp(join(tmpdir(), "gt-judge-docker-"));
    });
    after(async () => {
      await runtime.close();
      if (workRoot) await rm(workRoot, { recursive: true, force: true });
    });

    it("trains at most one epoch past the report that got it stopped", async (t) => {
      const d = new Driver(spec({ maxPoints: 1 }), "7");
      d.sampleAll();
      const built = buildJob(d.engine, d.dispatch("s")!.jobId);
      const job = {
        ...built,
        judgeAt: [1, 3, 9],
        evaluation: { ...built.evaluation, container: PYTHON_IMAGE, argv: ["python3", "-c", PAYLOAD] },
      };
      const controller = new AbortController();
      const verdicts = new Verdicts();
      const reports: AgentReport[] = [];
      const link: SteeringLink = {
        request: (req) => Promise.reject(new Error(`unexpected ${req.type}`)),
        report: (r) => {
          reports.push(r);
          if (r.type === "progress")
            setTimeout(() => {
              if (r.resource >= 3) controller.abort("pruned" satisfies StopReason);
              else if (r.held) verdicts.continued(r.resource);
            }, STEERING_MS);
          return Promise.resolve();
        },
      };
      await runJob({
        job,
        grant: { sandbox: null, trainingData: [], checkpoint: null },
        link,
        runtime,
        workRoot,
        gpus: [],
        policy: { ...TEST_SITE_POLICY, stopGraceMs: 5000 },
        logger,
        signal: controller.signal,
        instance: "judge-docker",
        trustedUsers: [],
        verdicts,
        verdictWaitMs: 5000,
      });
      const progress = reports.flatMap((r) => (r.type === "progress" ? [r.resource] : []));
      const held = reports.flatMap((r) => (r.type === "progress" && r.held ? [r.resource] : []));
      t.diagnostic(`reports: ${progress.join(", ")}; held at ${held.join(", ")}`);
      const result = reports.find((r) => r.type === "result");
      assert.equal(result?.type === "result" && result.status, "stopped");
      assert.deepEqual(held, [1, 3], "held at each judged level it reached");
      const last = progress.at(-1) ?? 0;
      assert.ok(
        last <= 4,
        `judged at 3, trained to ${last}: the stop came ${STEERING_MS} ms after the report`,
      );
    });
  },
);
