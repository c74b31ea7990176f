// The phpo verbs against a real nats-server (TLS, nkeys, generated permissions) with a fake
// steering responder: each verb sends the right request and renders the reply; a missing
// steering is exit 3, a remote error exit 1.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listTarGz } from "../../client/sandbox.ts";
import type { ApiRequest, TaskEvent } from "../../protocol/messages.ts";
import {
  type FakeSteering,
  runPhpo,
  samplePoints,
  sampleSummary,
  startFakeSteering,
} from "../harness/fakeSteering.ts";

describe("phpo against a fake steering on a real nats-server", () => {
  let fake: FakeSteering;
  let dir: string;
  const phpo = (...args: string[]) => runPhpo([...fake.flags(), ...args]);
  const last = (): ApiRequest => {
    const r = fake.requests[fake.requests.length - 1];
    assert.ok(r, "no request was received");
    return r.req;
  };

  before(async () => {
    fake = await startFakeSteering("alice");
    dir = await mkdtemp(join(tmpdir(), "phpo-api-"));
  });
  after(async () => {
    await fake?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("submit: uploads the sandbox with the presigned PUT, then submits the spec with its key", async () => {
    const work = join(dir, "work");
    await writeFile(
      join(dir, "space.json"),
      JSON.stringify({ x: { method: "uniform", dimension: { low: 0, high: 1 } } }),
    );
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(work, "lib"), { recursive: true });
    await writeFile(join(work, "train.py"), "print('hi')\n");
    await writeFile(join(work, "lib", "run.sh"), "echo\n");
    await writeFile(join(work, "notes.txt"), "not sent\n");
    const dump = join(dir, "dump.json");
    const r = await phpo(
      "--outDS",
      "user.alice.t1",
      "--evaluationContainer",
      "img",
      "--evaluationExec",
      "python train.py",
      "--searchSpaceFile",
      join(dir, "space.json"),
      "--sandboxDir",
      work,
      "--dumpJson",
      dump,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /succeeded\. new jediTaskID=7/);
    const verbs = fake.requests.slice(-2).map((x) => x.req.verb);
    assert.deepEqual(verbs, ["upload", "submit"]);
    const submit = last();
    assert.ok(submit.verb === "submit");
    assert.equal(submit.spec.sandboxKey, "uploads/alice/abc123");
    assert.equal(submit.spec.outDS, "user.alice.t1/");
    const body = fake.uploads.get("uploads/alice/abc123");
    assert.ok(body);
    const tgz = join(dir, "sandbox.tgz");
    await writeFile(tgz, body);
    assert.deepEqual((await listTarGz(tgz)).sort(), ["lib/run.sh", "train.py"]);
    const d = JSON.parse(await readFile(dump, "utf8")) as Record<string, unknown>;
    assert.equal(d.jediTaskID, 7);
    assert.equal(d.returnCode, 0);
  });

  test("list: a table of tasks, newest first; --json the reply", async () => {
    const r = await phpo("list");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(last().verb, "list");
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^task +state +outDS/);
    assert.match(lines[2] ?? "", /^ *8 +running/);
    // evaluated: done, failed and stopped (pruned) points have all reached their end
    assert.match(lines[3] ?? "", /^ *7 +finished +user\.alice\.test\/ +4\/4 +1 +0 +0\.25/);
    const j = await phpo("list", "--json");
    assert.deepEqual(
      (JSON.parse(j.stdout) as { tasks: { taskId: string }[] }).tasks.map((t) => t.taskId),
      ["8", "7"],
    );
  });

  test("show: header, points table, errors and rung tables sorted by loss", async () => {
    const r = await phpo("show", "7");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last(), { verb: "show", taskId: "7", pointsFrom: 0, pointsLimit: 100_000 });
    assert.match(r.stdout, /task 7 {2}finished {2}outDS user\.alice\.test\//);
    assert.match(r.stdout, /best loss 0\.25 at point 2 \(epochs 9\): lr=0\.05 act="relu"/);
    assert.match(
      r.stdout,
      /4\/4 points: 2 done, 1 failed, 1 stopped, 0 running, 0 queued; 7 attempts dispatched/,
    );
    assert.match(r.stdout, /trained 19 epochs in all, against 36 to train all 4 trials to 9: 47% saved/);
    assert.match(r.stdout, /scheduler asha-stopping/);
    assert.match(r.stdout, /^id +state +loss +resource +last report +attempts +jobs +site +values$/m);
    assert.match(r.stdout, /^ *1 +stopped +1\.2 +1 +1\.2 @ 1 +1 +1 +local +lr=0\.01/m);
    assert.match(r.stdout, /^ *3 +failed +1e\+30 +- +3 +1 +- +lr=0\.3/m);
    assert.match(r.stdout, /p3: exit code 1: CUDA out of memory/);
    // rung 0 (epochs = 1): p2 0.8, p0 0.9, p1 1.2 — best first; p1 was not continued.
    const rung0 = r.stdout.slice(r.stdout.indexOf("rung 0:"), r.stdout.indexOf("rung 1:"));
    assert.match(rung0, /rung 0: epochs = 1, 3 trials/);
    assert.deepEqual(
      [...rung0.matchAll(/ p(\d) /g)].map((m) => m[1]),
      ["2", "0", "1"],
    );
    assert.match(rung0, /3 +p1 +1\.2\s*$/m);
    // the scheduler's rungs only: 1 and 3, no table for max_t (9)
    assert.match(r.stdout, /rung 1: epochs = 3, 2 trials/);
    assert.doesNotMatch(r.stdout, /rung 2:/);
  });

  test("status: one line; a task that does not exist is a remote error, exit 1; a bad id exit 2", async () => {
    const r = await phpo("status", "7");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^task 7 finished: 4\/4 points: 2 done, 1 failed, 1 stopped, 0 running, 0 queued; 7 attempts dispatched; best loss 0\.25 at point 2/,
    );
    const missing = await phpo("status", "99");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /steering: task 99 does not exist/);
    const bad = await phpo("status", "t99");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /task ids are decimal numbers/);
  });

  test("kill, pause, resume and retry send their verb", async () => {
    for (const verb of ["kill", "pause", "resume"] as const) {
      const r = await phpo(verb, "7");
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(last(), { verb, taskId: "7" });
    }
    const k = await phpo("--json", "kill", "7");
    assert.equal((JSON.parse(k.stdout) as { state: string }).state, "killed");
    const r = await phpo("retry", "7", "--failed");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last(), { verb: "retry", taskId: "7", failedOnly: true });
    assert.match(r.stdout, /requeued 1 failed point/);
    await phpo("retry", "7");
    assert.deepEqual(last(), { verb: "retry", taskId: "7", failedOnly: false });
  });

  test("download: metrics by default, written under their names and checked with tar", async () => {
    const dest = join(dir, "dl");
    const r = await phpo("download", "7", "--dest", dest);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last(), { verb: "download", taskId: "7", kinds: ["metrics"], from: 0 });
    assert.deepEqual((await readdir(dest)).sort(), ["7.metrics.000000_a1.tgz", "7.metrics.000002_a2.tgz"]);
    assert.deepEqual(await listTarGz(join(dest, "7.metrics.000000_a1.tgz")), ["metrics.json"]);
    const both = await phpo("download", "7", "--logs", "--metrics", "--dest", dest);
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual(last(), { verb: "download", taskId: "7", kinds: ["metrics", "log"], from: 0 });
    // A metrics file that is not a tarball fails the command (exit 1) and is named.
    fake.files.set("7.metrics.000000_a1.tgz", Buffer.from("not a tarball"));
    const bad = await phpo("download", "7", "--dest", join(dir, "dl2"));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /7\.metrics\.000000_a1\.tgz: not a readable tar\.gz/);
  });

  test("logs: the last attempt by default, --attempt picks one, a point without logs exits 2", async () => {
    const r = await phpo("logs", "7", "2");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last(), { verb: "download", taskId: "7", kinds: ["log"], from: 0 });
    assert.equal(r.stdout, "attempt 2 of point 2\nloss=0.25\n");
    const a1 = await phpo("logs", "7", "2", "--attempt", "1");
    assert.equal(a1.stdout, "attempt 1 of point 2\nloss=0.3\n");
    const none = await phpo("logs", "7", "0");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no log for point 0/);
  });

  test("logs --job: a promotion job's logs are reachable; --attempt counts within the job", async () => {
    const url = (name: string) => `${fake.httpUrl}/get/${encodeURIComponent(name)}`;
    const logs = [
      { job: undefined, attempt: 1, name: "user.alice.test.7.000005_a1.log.txt", text: "j1 a1\n" },
      { job: undefined, attempt: 2, name: "user.alice.test.7.000005_a2.log.txt", text: "j1 a2\n" },
      // named by an older steering (no job field): the job comes from the name
      { job: undefined, attempt: 1, name: "user.alice.test.7.000005_j2_a1.log.txt", text: "j2 a1\n" },
      { job: 3, attempt: 1, name: "user.alice.test.7.000005_j3_a1.log.txt", text: "j3 a1\n" },
    ];
    for (const l of logs) fake.files.set(l.name, Buffer.from(l.text));
    const previous = fake.handler("download");
    fake.on("download", () => ({
      ok: true,
      data: {
        items: logs.map((l) => ({
          pointId: 5,
          ...(l.job === undefined ? {} : { job: l.job }),
          attempt: l.attempt,
          kind: "log",
          name: l.name,
          url: url(l.name),
        })),
        next: null,
      },
    }));
    try {
      assert.equal((await phpo("logs", "7", "5")).stdout, "j3 a1\n", "default: the last job's last attempt");
      assert.equal((await phpo("logs", "7", "5", "--job", "2")).stdout, "j2 a1\n");
      assert.equal((await phpo("logs", "7", "5", "--job", "1")).stdout, "j1 a2\n");
      assert.equal((await phpo("logs", "7", "5", "--job", "1", "--attempt", "1")).stdout, "j1 a1\n");
      const json = await phpo("--json", "logs", "7", "5", "--job", "2");
      assert.deepEqual(JSON.parse(json.stdout), {
        taskId: "7",
        pointId: 5,
        job: 2,
        attempt: 1,
        name: "user.alice.test.7.000005_j2_a1.log.txt",
        log: "j2 a1\n",
      });
      const noJob = await phpo("logs", "7", "5", "--job", "4");
      assert.equal(noJob.code, 2);
      assert.match(noJob.stderr, /no log of job 4; jobs with logs: 1, 2, 3 \(--job\)/);
      const noAttempt = await phpo("logs", "7", "5", "--job", "2", "--attempt", "2");
      assert.equal(noAttempt.code, 2);
      assert.match(noAttempt.stderr, /no log of attempt 2 in job 2; logs: job 1 attempt 1, job 1 attempt 2/);
      const bad = await phpo("logs", "7", "5", "--job", "0");
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--job/);
    } finally {
      fake.on("download", previous);
    }
  });

  test("download, logs and list follow steering's pages to the last one; the output is as from one reply", async () => {
    const before = fake.requests.length;
    const one = await phpo("--json", "download", "7", "--logs", "--dest", join(dir, "dl-one"));
    assert.equal(one.code, 0, one.stderr);
    // the same files, two points per page: pages end at a point, `next` says where the next starts
    const byPoint = samplePoints().map((p) => p.pointId);
    assert.equal(fake.requests.length - before, 1, "the fake answers all in one page");
    const unpaged = fake.handler("download");
    fake.on("download", async (req, user) => {
      assert.ok(req.verb === "download");
      const whole = await unpaged(req, user);
      assert.ok(whole.ok);
      const { items } = whole.data as { items: Array<{ pointId: number }> };
      const from = req.from ?? 0;
      const mine = byPoint.slice(from, from + 2);
      const next = from + 2 < byPoint.length ? from + 2 : null;
      return { ok: true, data: { items: items.filter((i) => mine.includes(i.pointId)), next } };
    });
    const paged = await phpo("--json", "download", "7", "--logs", "--dest", join(dir, "dl-one"));
    assert.equal(paged.code, 0, paged.stderr);
    assert.deepEqual(
      fake.requests.slice(-2).map((r) => r.req.verb === "download" && r.req.from),
      [0, 2],
    );
    assert.deepEqual(JSON.parse(paged.stdout), JSON.parse(one.stdout), "the --json output does not change");
    const log = await phpo("logs", "7", "2", "--attempt", "1");
    assert.equal(log.code, 0, log.stderr);
    assert.equal(log.stdout, "attempt 1 of point 2\nloss=0.3\n");
    const logReq = last();
    assert.equal(logReq.verb === "download" && logReq.from, 2, "the log of point 2 is on the second page");

    const listed = await phpo("--json", "list");
    fake.on("list", (req) => {
      assert.ok(req.verb === "list");
      const tasks = [sampleSummary("7"), sampleSummary("8", "running")];
      const from = req.from ?? 0;
      return {
        ok: true,
        data: { tasks: tasks.slice(from, from + 1), next: from + 1 < tasks.length ? from + 1 : null },
      };
    });
    const pagedList = await phpo("--json", "list");
    assert.equal(pagedList.code, 0, pagedList.stderr);
    assert.deepEqual(
      fake.requests.slice(-2).map((r) => r.req.verb === "list" && r.req.from),
      [0, 1],
    );
    assert.equal(pagedList.stdout, listed.stdout);
  });

  test("results: one CSV row per report and per final loss, with the hyperparameters", async () => {
    const r = await phpo("results", "7", "--csv");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(
      lines[0],
      "task_id,point_id,segment,row,job,attempt,resource,loss,time,started_at,finished_at,attempts,state,site,lr,act",
    );
    assert.equal(lines.length, 1 + (3 + 1) + (1 + 1) + (3 + 1) + (0 + 1));
    assert.ok(lines.includes("7,0,,report,,,3,0.7,,,,1,done,local,0.1,relu"));
    assert.ok(lines.includes("7,2,,final,,,9,0.25,,,,2,done,local,0.05,relu"));
    const j = await phpo("--json", "results", "7");
    assert.equal((JSON.parse(j.stdout) as unknown[]).length, lines.length - 1);
  });

  test("plot: an SVG with one learning curve per point with reports", async () => {
    const out = join(dir, "t7.svg");
    const r = await phpo("plot", "7", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const svg = await readFile(out, "utf8");
    assert.match(svg, /^<\?xml[^>]*>\n<svg /);
    assert.equal([...svg.matchAll(/<polyline /g)].length, 3 + 1, "3 learning curves + best-so-far");
    assert.match(svg, /<title>p2<\/title>/);
    assert.doesNotMatch(svg, /NaN|Infinity/);
  });

  test(
    "watch: follows events until the task finishes; plain lines without a TTY",
    { timeout: 20_000 },
    async () => {
      const running = {
        ...sampleSummary("7", "running"),
        counts: {
          ...sampleSummary().counts,
          points: 2,
          done: 1,
          failed: 0,
          running: 1,
          stopped: 0,
          evaluated: 1,
          jobs: 2,
          pointJobs: 2,
        },
      };
      fake.on("show", () => ({ ok: true, data: detailWith(running) }));
      const before = fake.requests.length;
      const p = phpo("watch", "7");
      // phpo subscribes before it asks for the state: once the show request is in, no event is lost.
      await waitFor(() => fake.requests.slice(before).some((x) => x.req.verb === "show"));
      const ev = (summary: typeof running, kind: TaskEvent["kind"]): TaskEvent => ({
        taskId: "7",
        at: Date.now(),
        kind,
        pointId: 1,
        loss: 0.3,
        summary,
      });
      fake.publishEvent(
        ev({ ...running, counts: { ...running.counts, done: 2, evaluated: 2, running: 0 } }, "point-done"),
      );
      fake.publishEvent(ev(sampleSummary("7", "finished"), "state"));
      const r = await p;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /task 7 running +\[#+\.+\] 1\/4 evaluated/);
      // the stopped (pruned) point counts as evaluated: it reached its end
      assert.match(
        r.stdout,
        /task 7 finished .*4\/4 evaluated, 0 running, 1 failed, 1 stopped, 0 paused, best 0\.25 \(p2\)/,
      );
      assert.match(r.stdout, /^task 7 finished: 4\/4 points/m);
    },
  );

  test("watch in a TTY redraws one line; a killed task is exit 1", { timeout: 20_000 }, async () => {
    fake.on("show", () => ({ ok: true, data: detailWith({ ...sampleSummary("7", "killed") }) }));
    const r = await runPhpo([...fake.flags(), "watch", "7"], {}, { tty: true });
    assert.equal(r.code, 1);
    assert.ok(r.stdout.startsWith("\r\u001b[2Ktask 7 killed"), JSON.stringify(r.stdout));
    assert.match(r.stderr, /task 7 was killed/);
  });

  test("a remote error reply is exit 1; no steering listening is exit 3 naming the URL", async () => {
    fake.on("list", () => ({ ok: false, error: { code: "INTERNAL", message: "boom", retryable: false } }));
    const r = await phpo("list");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "phpo: error: steering: boom\n");
    await fake.stopResponder();
    try {
      // no retries (GRIDTUNE_NATS_RETRY_MS=0): the answer at once, not after the 15 s bound
      const down = await runPhpo([...fake.flags(), "list"], { GRIDTUNE_NATS_RETRY_MS: "0" });
      assert.equal(down.code, 3);
      assert.match(
        down.stderr,
        new RegExp(`steering is not running at ${fake.natsUrl.replace(/[.]/g, "\\.")}`),
      );
      assert.doesNotMatch(down.stderr, /\n\s+at /);
    } finally {
      fake.startResponder();
    }
  });

  test("NATS not reachable is exit 3; no configuration at all is exit 3 with the fix", async () => {
    const r = await runPhpo([
      "--nats-url",
      "nats://127.0.0.1:1",
      "--user",
      "alice",
      "--seed-file",
      fake.seedFile,
      "--ca-file",
      fake.caFile,
      "list",
    ]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    const none = await runPhpo(["list"]);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no gridtune server is configured: start the embedded stack/);
  });

  test("a bad --timeout is a usage error (exit 2), found before connecting", async () => {
    for (const bad of ["abc", "0", "3000000"]) {
      const r = await runPhpo(["--timeout", bad, "list"]); // no server configured: never reached
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--timeout .*: give the request deadline in seconds, at most 2147483/);
    }
  });

  test("settings from a config file (--config) and from the environment", async () => {
    const file = join(dir, "client.json");
    await writeFile(
      file,
      JSON.stringify({ natsUrl: fake.natsUrl, user: "alice", seedFile: fake.seedFile, caFile: fake.caFile }),
    );
    const r = await runPhpo(["--config", file, "status", "7"]);
    assert.equal(r.code, 0, r.stderr);
    const e = await runPhpo(["status", "7"], { GRIDTUNE_CONFIG: file });
    assert.equal(e.code, 0, e.stderr);
    const stackHome = join(dir, "stackhome");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(stackHome);
    await writeFile(
      join(stackHome, "client.json"),
      JSON.stringify({ natsUrl: fake.natsUrl, user: "alice", seedFile: fake.seedFile, caFile: fake.caFile }),
    );
    const s = await runPhpo(["status", "7"], { GRIDTUNE_HOME: stackHome });
    assert.equal(s.code, 0, s.stderr);
  });
});

import { sampleDetail } from "../harness/fakeSteering.ts";
import type { TaskSummary } from "../../protocol/messages.ts";

function detailWith(s: TaskSummary) {
  return { ...sampleDetail("7"), ...s };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}
