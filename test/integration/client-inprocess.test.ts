// phpo's verbs run in-process (client/main.ts's main(), as the bin script calls it) against the
// real embedded stack: submit from options alone, list, status, pause and resume, watch to the end,
// retry, kill, results, plot and preview. (client-e2e.test.ts runs bin/phpo as a subprocess.)
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runPhpo } from "../harness/fakeSteering.ts";
import { STEPS_PAYLOAD, startTestStack, type TestStack } from "../harness/stack.ts";

describe("phpo in-process against the real stack", { timeout: 240_000 }, () => {
  let stack: TestStack;
  let work: string;
  let env: Record<string, string>;

  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 2 });
    work = await mkdtemp(join(tmpdir(), "gt-phpo-inproc-"));
    await writeFile(
      join(work, "space.json"),
      JSON.stringify({
        x: { method: "uniform", dimension: { low: 0, high: 6 } },
        steps: { method: "categorical", dimension: { categories: [12] } },
        delay: { method: "categorical", dimension: { categories: [0.15] } },
      }),
    );
    env = { GRIDTUNE_CONFIG: stack.clientFile };
  });
  after(async () => {
    await stack?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it("submits, pauses, resumes, watches to the end, and exports", async () => {
    const sub = await runPhpo(
      [
        "submit",
        "--outDS",
        "user.demo.inproc",
        "--evaluationContainer",
        "gridtune/python:1",
        "--evaluationExec",
        `/usr/bin/python3 ${STEPS_PAYLOAD}`,
        "--searchSpaceFile",
        join(work, "space.json"),
        "--sandboxDir",
        work,
        "--maxPoints",
        "4",
        "--nParallelEvaluation",
        "2",
        "--nPointsPerIteration",
        "2",
        "--dumpJson",
        join(work, "dump.json"),
      ],
      env,
    );
    assert.equal(sub.code, 0, sub.stderr);
    const taskId = String(
      (JSON.parse(await readFile(join(work, "dump.json"), "utf8")) as { jediTaskID: string }).jediTaskID,
    );

    const paused = await runPhpo(["pause", taskId, "--json"], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal((JSON.parse(paused.stdout) as { state: string }).state, "paused");
    const status = await runPhpo(["status", taskId], env);
    assert.match(status.stdout, /paused/);
    const resumed = await runPhpo(["resume", taskId, "--json"], env);
    assert.equal((JSON.parse(resumed.stdout) as { state: string }).state, "running");

    const watch = await runPhpo(["watch", taskId], env);
    assert.equal(watch.code, 0, watch.stderr);
    assert.match(watch.stdout, /finished/);

    const list = await runPhpo(["list", "--json"], env);
    const tasks = JSON.parse(list.stdout) as
      | { tasks?: Array<{ taskId: string; counts: { done: number } }> }
      | Array<{ taskId: string; counts: { done: number } }>;
    const rows = Array.isArray(tasks) ? tasks : (tasks.tasks ?? []);
    assert.equal(rows.find((t) => t.taskId === taskId)?.counts.done, 4);

    const retry = await runPhpo(["retry", taskId, "--failed", "--json"], env);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal((JSON.parse(retry.stdout) as { requeued: number }).requeued, 0);

    const results = await runPhpo(["results", taskId, "--json"], env);
    const resultRows = JSON.parse(results.stdout) as Array<{
      row: string;
      attempt: number | null;
      loss: number | null;
    }>;
    assert.equal(resultRows.filter((r) => r.row === "final").length, 4);
    assert.equal(resultRows.filter((r) => r.row === "report").length, 4 * 12);
    assert.ok(resultRows.every((r) => r.row !== "report" || r.attempt === 1));

    const svg = join(work, "curves.svg");
    const plot = await runPhpo(["plot", taskId, "--out", svg], env);
    assert.equal(plot.code, 0, plot.stderr);
    assert.match(await readFile(svg, "utf8"), /<svg[\s\S]*<\/svg>/);

    // Killing a finished task changes nothing; an unknown task is a remote error (exit 1).
    const kill = await runPhpo(["kill", taskId, "--json"], env);
    assert.equal((JSON.parse(kill.stdout) as { state: string }).state, "finished");
    assert.equal((await runPhpo(["kill", "999999"], env)).code, 1);
  });

  it("previews the plan of an ASHA config without submitting", async () => {
    const cfg = join(work, "asha.json");
    await writeFile(
      cfg,
      JSON.stringify({
        outDS: "user.demo.plan",
        evaluationContainer: "gridtune/python:1",
        evaluationExec: "python3 train.py",
        searchSpaceFile: join(work, "space.json"),
        maxPoints: 27,
        scheduler: { type: "asha-stopping", grace_period: 1, reduction_factor: 3, max_t: 27 },
      }),
    );
    const r = await runPhpo(["preview", cfg, "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { trials: number; rows: Array<{ resource: number }> };
    assert.equal(plan.trials, 27);
    assert.deepEqual(
      plan.rows.map((x) => x.resource),
      [1, 3, 9, 27],
    );
    const before = JSON.parse((await runPhpo(["list", "--json"], env)).stdout) as
      unknown[] | { tasks: unknown[] };
    assert.equal(Array.isArray(before) ? before.length : before.tasks.length, 1, "preview submitted nothing");
  });

  it("show, status and results of a task with 4,000 points: replies are paged under NATS's 1 MiB limit", async () => {
    const api = await stack.connect();
    // long parameter names make each point's view large: unpaged, the reply would exceed 1 MiB
    const space = Object.fromEntries(
      Array.from({ length: 8 }, (_, i) => [
        `a_parameter_with_a_rather_long_name_${i}`,
        { method: "uniform", dimension: { low: 0, high: 1 } },
      ]),
    );
    const taskId = await api.submit({
      outDS: "user.demo.many",
      evaluationContainer: "none",
      evaluationExec: "sleep 60",
      searchSpace: space as never,
      maxPoints: 4000,
      nParallelEvaluation: 1,
      nPointsPerIteration: 4000,
    });
    for (let i = 0; ; i++) {
      const s = await api.call("show", { taskId, pointsFrom: 0, pointsLimit: 0 });
      if (s.counts.points === 4000) break;
      assert.ok(i < 100, "4,000 points are sampled at once");
      await new Promise((r) => setTimeout(r, 100));
    }
    const first = await api.call("show", { taskId, pointsFrom: 0, pointsLimit: 100_000 });
    assert.ok(first.pointsNext !== null && first.points.length < 4000, "more than one page");
    const show = await runPhpo(["--json", "show", taskId], env);
    assert.equal(show.code, 0, show.stderr);
    const d = JSON.parse(show.stdout) as { points: Array<{ pointId: number }> };
    assert.deepEqual(
      d.points.map((p) => p.pointId),
      Array.from({ length: 4000 }, (_, i) => i),
    );
    const status = await runPhpo(["--json", "status", taskId], env);
    assert.equal((JSON.parse(status.stdout) as { counts: { points: number } }).counts.points, 4000);
    const csv = await runPhpo(["results", taskId, "--csv"], env);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout.trimEnd().split("\n").length, 1 + 4000, "a header and a row per point");
    assert.equal((await runPhpo(["kill", taskId], env)).code, 0);
  });
});
