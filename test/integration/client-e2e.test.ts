// phpo as a subprocess (bin/phpo) against the real embedded stack (nats-server, s3rver, steering,
// an agent running evaluations as processes): submit with --wait, then show, status, results, logs
// and download; the metrics tarballs must be readable by tar. The payload is the quickstart's real
// training, sent in the sandbox phpo builds from the submitting directory.
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { listTarGz } from "../../client/sandbox.ts";
import { runBin, startTestStack, type TestStack } from "../harness/stack.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const QUICKSTART = join(ROOT, "examples", "quickstart");

const phpo = (args: string[], env: Record<string, string>, cwd: string) => runBin("phpo", args, { env, cwd });

describe("phpo end to end on the embedded stack", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let work: string;
  let env: Record<string, string>;

  before(async () => {
    stack = await startTestStack();
    work = await mkdtemp(join(tmpdir(), "phpo-e2e-"));
    await cp(QUICKSTART, work, { recursive: true });
    // A short training: epochs is a constant of the search space.
    const space = JSON.parse(
      await (await import("node:fs/promises")).readFile(join(QUICKSTART, "search_space.json"), "utf8"),
    ) as Record<string, unknown>;
    await writeFile(
      join(work, "search_space.json"),
      JSON.stringify({ ...space, epochs: { method: "categorical", dimension: { categories: [3] } } }),
    );
    await writeFile(
      join(work, "config.json"),
      `{"outDS": "user.demo.phpo", "evaluationContainer": "gridtune/python:1", "evaluationExec": "sh ./exec_in_container.sh",
        "evaluationMetrics": "metrics.tgz", "searchSpaceFile": "search_space.json", "maxPoints": "3", "nParallelEvaluation": 2,
        "sampler": {"type": "random", "seed": 3},}`,
    );
    env = { HOME: work, GRIDTUNE_HOME: stack.dir };
  });
  after(async () => {
    await stack?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("submits, waits, shows, exports and downloads", async () => {
    const sub = await phpo(["--loadJson", "config.json", "--wait", "--dumpJson", "dump.json"], env, work);
    assert.equal(sub.code, 0, sub.stderr + sub.stdout);
    const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
    assert.ok(taskId, sub.stdout);
    assert.match(sub.stdout, /task \d+ finished: 3\/3 points: 3 done, 0 failed/);

    const show = await phpo(["show", taskId], env, work);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`task ${taskId} {2}finished {2}outDS user\\.demo\\.phpo/`));
    assert.match(show.stdout, /best loss \d/);

    const status = await phpo(["--json", "status", taskId], env, work);
    assert.equal((JSON.parse(status.stdout) as { counts: { done: number } }).counts.done, 3);

    const results = await phpo(["results", taskId, "--csv"], env, work);
    assert.equal(results.code, 0, results.stderr);
    assert.match(
      results.stdout,
      /^task_id,point_id,segment,row,job,attempt,resource,loss,time,started_at,finished_at,attempts,state,site,/,
    );
    // Each report says which job and attempt sent it, and when; each final row when it ran.
    assert.match(results.stdout, /\n\d+,\d+,,report,1,1,\d+,[-0-9.e]+,\d{4}-\d\d-\d\dT[^,]+Z,,,/);
    assert.match(results.stdout, /\n\d+,\d+,,final,1,1,\d+,[-0-9.e]+,,\d{4}-[^,]+Z,\d{4}-[^,]+Z,1,done,/);
    assert.equal(
      results.stdout
        .trim()
        .split("\n")
        .filter((l) => l.includes(",final,")).length,
      3,
    );

    const logs = await phpo(["logs", taskId, "0"], env, work);
    assert.equal(logs.code, 0, logs.stderr);
    assert.ok(logs.stdout.length > 0);

    const dest = join(work, "out");
    const dl = await phpo(["download", taskId, "--dest", dest], env, work);
    assert.equal(dl.code, 0, dl.stderr + dl.stdout);
    const files = (await readdir(dest)).sort();
    assert.equal(files.length, 3, files.join(" "));
    for (const f of files) {
      assert.match(f, new RegExp(`^${taskId}\\.metrics\\.\\d+_a1\\.tgz$`));
      assert.ok((await listTarGz(join(dest, f))).length > 0, `${f} is empty`);
    }

    const missing = await phpo(["show", "999999"], env, work);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /task 999999 does not exist/);
  });

  it("exit 3 when steering is down", async () => {
    const r = await phpo(["list"], { HOME: work, GRIDTUNE_HOME: join(work, "no-stack") }, work);
    assert.equal(r.code, 3);
  });
});
