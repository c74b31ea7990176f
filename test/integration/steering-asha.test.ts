// The ASHA family end to end on the real stack (NATS, S3, steering, an agent running the curve
// payload with the process runtime): promotion pauses and resumes trials through checkpoints,
// stopping prunes running evaluations through the agent, the other types run to the end, and a
// steering SIGKILL mid-task ends with the same decisions as an undisturbed run of the same seed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TaskDetail, TaskSummary } from "../../protocol/api.ts";
import type { SchedulerConfigInput } from "../../protocol/scheduler.ts";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { FIXTURES, runBin, startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const CURVE = join(FIXTURES, "payloads", "curve.py");
const LADDER = { max_t: 9, grace_period: 1, reduction_factor: 3 };

function curveTask(
  scheduler: SchedulerConfigInput,
  over: Partial<TaskSpecInput> = {},
  delay = 0.03,
): TaskSpecInput {
  return {
    outDS: "user.test.curve/",
    evaluationContainer: "gridtune/python:1",
    evaluationExec: `/usr/bin/python3 ${CURVE}`,
    searchSpace: {
      x: { method: "uniform", dimension: { low: 0, high: 6 } },
      delay: { method: "categorical", dimension: { categories: [delay] } },
    } as never,
    checkPointToSave: ["checkpoint"],
    maxPoints: 6,
    nParallelEvaluation: 2,
    scheduler,
    sampler: { type: "random", seed: 11 },
    ...over,
  };
}

const FINAL = ["done", "paused", "stopped", "failed"];

async function logsOf(api: StackClient, taskId: string, pointId: number): Promise<string[]> {
  const { items } = await api.call("download", { taskId, kinds: ["log"] });
  const out: string[] = [];
  for (const it of items.filter((i) => i.pointId === pointId)) {
    const res = await fetch(it.url);
    assert.equal(res.status, 200);
    out.push(await res.text());
  }
  return out;
}

/** Every point is in exactly one state of the counts, and every trial that ended is evaluated. */
function addsUp(s: TaskSummary, what: string): void {
  const c = s.counts;
  const states = c.done + c.failed + c.stopped + c.paused + c.running + c.queued + c.cancelled;
  assert.equal(states, c.points, `${what}: counts add up: ${JSON.stringify(c)}`);
  assert.equal(c.evaluated, c.done + c.failed + c.stopped + c.paused, what);
  if (s.state === "finished") assert.equal(c.evaluated + c.cancelled, c.points, `${what}: all evaluated`);
}

/** The best trial at the highest resource level any trial reached with a result. */
function bestAtTop(d: TaskDetail) {
  const withResult = d.points.filter((p) => (p.state === "done" || p.state === "paused") && p.loss !== null);
  const top = Math.max(...withResult.map((p) => p.resource ?? 0));
  return withResult
    .filter((p) => p.resource === top)
    .sort((a, b) => (a.loss as number) - (b.loss as number))[0];
}

/** The decisions of a run: which trial each point is, where it ended and with which loss. */
const decisions = (d: TaskDetail) =>
  d.points.map((p) => ({
    id: p.pointId,
    trial: p.trial,
    x: p.values.x,
    state: p.state,
    loss: p.loss,
    jobs: p.jobs,
    target: p.target,
  }));

describe("steering with the ASHA family", { timeout: 600_000 }, () => {
  let stack: TestStack;
  let api: StackClient;
  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 3 });
    api = await stack.connect();
  });
  after(() => stack?.cleanup());
  // phpo as the user runs it, against this stack (the user "demo" of the stack's client profile)
  const phpo = async (...args: string[]) => {
    const r = await runBin("phpo", args, { env: { HOME: stack.dir, GRIDTUNE_HOME: stack.dir } });
    assert.equal(r.code, 0, `phpo ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  it("asha-promotion pauses trials at their rung and resumes promoted ones from the checkpoint", async () => {
    const taskId = await api.submit(curveTask({ type: "asha-promotion", ...LADDER }));
    const d = await api.waitFinished(taskId, 180_000);
    assert.equal(d.state, "finished");
    assert.equal(d.points.length, 6);
    for (const p of d.points) assert.ok(FINAL.includes(p.state), `point ${p.pointId} is ${p.state}`);
    assert.ok(
      d.points.some((p) => p.state === "paused"),
      "losers stay paused",
    );
    const promoted = d.points.filter((p) => (p.jobs ?? 1) > 1);
    assert.ok(promoted.length > 0, "some trial was promoted");
    for (const p of promoted) {
      // a promotion is a new job, not an attempt: attempts count within a job (PanDA's ≤ 3)
      assert.equal(p.attempts, 1, `point ${p.pointId}: one attempt in each job`);
      assert.equal(p.dispatches, p.jobs, "one attempt per job");
      // the second job resumed from the checkpoint: every epoch reported once, in order
      const levels = p.reports.map((r) => r.resource);
      assert.deepEqual(
        levels,
        Array.from({ length: levels.length }, (_, i) => i + 1),
        `point ${p.pointId}`,
      );
      assert.ok((p.target ?? 0) >= 3);
    }
    const logs = await logsOf(api, taskId, promoted[0]!.pointId);
    assert.equal(logs.length, promoted[0]!.jobs);
    assert.ok(
      logs.some((l) => l.includes("starting")),
      "first job started from scratch",
    );
    assert.ok(
      logs.some((l) => l.includes("resuming at step 1")),
      `no resume in:\n${logs.join("\n---\n")}`,
    );
    assert.deepEqual(
      d.rungs?.map((r) => r.level),
      [1, 3],
    );
    assert.equal(d.rungs?.[0]?.values.length, 6);

    // the summaries: every trial that ended (done, or paused at its rung) is evaluated
    addsUp(d, "asha-promotion");
    assert.equal(d.counts.evaluated, 6);
    assert.equal(d.counts.pointJobs, 6 + promoted.reduce((n, p) => n + (p.jobs ?? 1) - 1, 0));
    assert.equal(d.best?.pointId, bestAtTop(d)?.pointId);
    const list = await phpo("list");
    assert.match(list, new RegExp(`^ *${taskId} +finished +user\\.test\\.curve/ +6/6 `, "m"));
    const show = await phpo("show", taskId);
    assert.match(show, /^id +state +loss +resource +last report +attempts +jobs +site +values$/m);
    const p = promoted[0]!;
    assert.match(show, new RegExp(`^ *${p.pointId} +\\w+ .* +1 +${p.jobs} +\\S+ +x=`, "m"));
    // one table per rung of the scheduler (1 and 3), not one per epoch reported
    assert.match(show, /^rung 0: epochs = 1, 6 trials$/m);
    assert.match(show, /^rung 1: epochs = 3, \d trials?$/m);
    assert.doesNotMatch(show, /^rung 2:/m);
    assert.match(show, /^trained \d+ epochs in all, against 54 to train all 6 trials to 9: \d+% saved$/m);
    // phpo logs --job: the promotion job's log, and the first job's
    const first = await runBin("phpo", ["logs", taskId, String(p.pointId), "--job", "1"], {
      env: { HOME: stack.dir, GRIDTUNE_HOME: stack.dir },
    });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^starting$/m);
    assert.match(first.stderr, /job 1 attempt 1/);
    const second = await phpo("logs", taskId, String(p.pointId), "--job", "2");
    assert.match(second, /resuming at step \d/);
  });

  it("asha-stopping stops bad trials mid-run through the agent", async () => {
    const taskId = await api.submit(
      curveTask({ type: "asha-stopping", ...LADDER }, { maxPoints: 6, nParallelEvaluation: 2 }, 0.3),
    );
    const d = await api.waitFinished(taskId, 180_000);
    const stopped = d.points.filter((p) => p.state === "stopped");
    assert.ok(stopped.length > 0, JSON.stringify(decisions(d)));
    for (const p of stopped) {
      assert.equal(p.attempts, 1);
      assert.ok((p.resource ?? 9) < 9, `point ${p.pointId} ran to ${p.resource}: not stopped mid-run`);
      assert.ok(p.loss !== null && p.loss < 1e29);
    }
    for (const p of d.points.filter((q) => q.state === "done")) assert.equal(p.resource, 9);

    // each pruned row against its reports: the loss and resource it was judged at (a rung level
    // of the ladder), and its last report beside them, however far the payload got meanwhile
    addsUp(d, "asha-stopping");
    assert.equal(d.counts.evaluated, 6);
    assert.equal(d.counts.stopped, stopped.length);
    const show = await phpo("show", taskId);
    for (const p of stopped) {
      const judged = p.judged;
      assert.ok(judged, `point ${p.pointId}: the decision's report`);
      assert.ok([1, 3].includes(judged.resource), `judged at a rung, not at ${judged.resource}`);
      const report = p.reports.find((r) => r.resource === judged.resource);
      assert.ok(report, `point ${p.pointId} reported at ${judged.resource}`);
      assert.equal(p.loss, report.loss);
      assert.equal(p.resource, judged.resource);
      const last = p.reports.at(-1)!;
      assert.ok(last.resource >= judged.resource);
      const num = (x: number) => String(Number(x.toPrecision(6))).replace(".", "\\.");
      assert.match(
        show,
        new RegExp(
          `^ *${p.pointId} +stopped +${num(report.loss)} +${judged.resource} +${num(last.loss)} @ ${last.resource} +1 +1 `,
          "m",
        ),
      );
    }
    assert.equal(d.best?.pointId, bestAtTop(d)?.pointId);
    assert.match(show, /^rung 1: epochs = 3, /m);
    assert.doesNotMatch(show, /^rung 2:/m);
  });

  it("FIFO (no scheduler): counts add up, no rung table", async () => {
    const { scheduler: _none, checkPointToSave: _ck, ...plain } = curveTask({ type: "fifo", max_t: 1 });
    const taskId = await api.submit({ ...plain, maxPoints: 3, nPointsPerIteration: 3 });
    const d = await api.waitFinished(taskId, 120_000);
    addsUp(d, "fifo");
    assert.equal(d.counts.done, 3);
    assert.equal(d.rungs, undefined);
    const show = await phpo("show", taskId);
    assert.doesNotMatch(show, /rung/);
    assert.match(show, /^id +state +loss +resource +attempts +site +values$/m);
    assert.match(
      await phpo("status", taskId),
      /3\/3 points: 3 done, 0 failed, 0 running, 0 queued; 3 attempts/,
    );
  });

  const others: Array<[string, SchedulerConfigInput]> = [
    ["hyperband", { type: "hyperband", ...LADDER, brackets: 2 }],
    [
      "adaptive-asha",
      {
        type: "adaptive-asha",
        max_trials: 6,
        max_time: 9,
        divisor: 3,
        max_rungs: 3,
        max_concurrent_trials: 2,
      },
    ],
    ["pasha", { type: "pasha", ...LADDER }],
    ["moasha", { type: "moasha", metrics: ["loss", "size"], ...LADDER }],
  ];
  it("hyperband, adaptive-asha, pasha and moasha run to the end (concurrently)", async () => {
    const ids = await Promise.all(others.map(([, cfg]) => api.submit(curveTask(cfg))));
    const details = await Promise.all(ids.map((id) => api.waitFinished(id, 300_000)));
    details.forEach((d, i) => {
      const name = others[i]![0];
      assert.equal(d.state, "finished", name);
      assert.ok(d.points.length > 0 && d.points.length <= 6, name);
      for (const p of d.points) {
        assert.ok(FINAL.includes(p.state), `${name}: point ${p.pointId} is ${p.state}`);
        assert.ok(p.state !== "failed", `${name}: point ${p.pointId} failed: ${p.error}`);
        assert.ok(p.trial, name);
      }
      // PASHA may keep its top rung below max_t: then trials stop growing at a promotion
      const went = d.points.some((p) => p.state === "done" || (p.jobs ?? 1) > 1);
      assert.ok(went, `${name}: no trial went past its first milestone`);
      assert.ok((d.rungs?.length ?? 0) > 0, `${name}: no rungs`);
      addsUp(d, name);
      // PASHA's answer (and any scheduler's): the best trial at the top level reached
      assert.ok(d.best, `${name}: a best trial`);
      assert.equal(d.best.pointId, bestAtTop(d)?.pointId, name);
    });
  });
});

describe("steering SIGKILL mid-ASHA-task", { timeout: 600_000 }, () => {
  // nParallelEvaluation 1: the order of reports, and so every decision, depends on the seed only
  const task = () =>
    curveTask({ type: "asha-promotion", ...LADDER }, { maxPoints: 5, nParallelEvaluation: 1 }, 0.1);
  let reference: ReturnType<typeof decisions>;

  it("undisturbed reference run", async () => {
    const stack = await startTestStack({ agents: 1, slotsPerAgent: 1 });
    try {
      const api = await stack.connect();
      reference = decisions(await api.waitFinished(await api.submit(task()), 180_000));
      assert.ok(
        reference.some((p) => (p.jobs ?? 1) > 1),
        "the reference promotes",
      );
    } finally {
      await stack.cleanup();
    }
  });

  it("a killed and restarted steering ends with the same decisions", async () => {
    const stack = await startTestStack({ agents: 1, slotsPerAgent: 1, mode: "process" });
    try {
      const api = await stack.connect();
      const taskId = await api.submit(task());
      await api.waitFor(taskId, (d) => d.points.length >= 3 && d.counts.running > 0, 120_000);
      const steering = stack.steering;
      assert.ok(!("start" in steering));
      await steering.kill();
      await new Promise((r) => setTimeout(r, 1500)); // the agent goes on reporting meanwhile
      stack.steering = await stack.startSteering();
      const d = await api.waitFinished(taskId, 180_000);
      assert.deepEqual(decisions(d), reference, JSON.stringify(d.points.map((p) => [p.attempts, p.error])));
      // A result the killed steering had pulled but not acked comes back only after the consumer's
      // ack wait, so its lease may expire first and the job run once more (resuming from its
      // checkpoint, within maxAttempts); the decisions above are the same either way.
      for (const p of d.points) {
        const ran = p.dispatches ?? p.attempts;
        assert.ok(ran <= (p.jobs ?? 1) + 1, `point ${p.pointId} ran ${ran} attempts`);
        assert.ok(p.attempts <= 2, `point ${p.pointId}: ${p.attempts} attempts of one job`);
      }
    } finally {
      await stack.cleanup();
    }
  });
});
