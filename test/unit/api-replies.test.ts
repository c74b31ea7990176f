// Steering's client API (steering/shell/channels/api.ts) through Api.handle with fake request messages: every
// reply fits in NATS's max_payload (download and list come in pages, show counts its whole reply,
// an oversized reply is a TOO_LARGE error and a failed respond() still answers), and `retry`
// neither destroys failure records it cannot run again nor requeues the points of a killed task.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiReplies, type ApiReply, type DownloadItem } from "../../protocol/api.ts";
import { pages, showAll } from "../../client/paging.ts";
import { PAGE_BYTES } from "../../steering/core/views.ts";
import { apiKit, call, createTask, fakeMsg, record, runTask, type ApiKit } from "./fixtures/apiKit.ts";

function data<V extends keyof typeof ApiReplies>(verb: V, r: ApiReply) {
  assert.ok(r.ok, `${verb} refused: ${r.ok ? "" : `${r.error.code} ${r.error.message}`}`);
  return ApiReplies[verb].parse(r.data) as ReturnType<(typeof ApiReplies)[V]["parse"]>;
}

function refusal(r: ApiReply) {
  assert.ok(!r.ok, "expected an error reply");
  return r.error;
}

/** Every raw reply of the requests a test makes, to check their sizes. */
async function sizedCall(kit: ApiKit, sizes: number[], body: Record<string, unknown>): Promise<ApiReply> {
  const { msg, replies } = fakeMsg("alice", body, kit.maxPayload);
  await kit.api.handle(msg);
  assert.equal(replies.length, 1, "exactly one reply");
  sizes.push(Buffer.byteLength(replies[0]!));
  return JSON.parse(replies[0]!) as ApiReply;
}

/** A task of alice's whose `n` points all finished, each with a metrics tarball and a log. */
function finishedTask(kit: ApiKit, taskId: string, n: number): void {
  const e = createTask(kit, taskId, "alice", {
    maxPoints: n,
    nPointsPerIteration: n,
    nParallelEvaluation: 1,
  });
  runTask(kit, e);
  record(kit, { type: "task-state", taskId, at: 1e6, state: "finished" });
  assert.equal(e.points.size, n);
}

void describe("api: replies fit in max_payload", () => {
  void it("download of 2,000 finished points: one unpaged reply would be 2 MB, a TOO_LARGE error; pages hold every artifact", async () => {
    const kit = apiKit();
    finishedTask(kit, "1", 2000);

    // A phpo from before paging asks for everything: the reply cannot go, so it says what to do.
    const whole = refusal(
      await call(kit, "alice", { verb: "download", taskId: "1", kinds: ["metrics", "log"] }),
    );
    assert.equal(whole.code, "TOO_LARGE");
    assert.equal(whole.retryable, false);
    assert.match(whole.message, /over NATS's max_payload of 1048576 bytes/);
    assert.match(whole.message, /a page at a time \(from\/limit.*update phpo/);

    const sizes: number[] = [];
    const items: DownloadItem[] = [];
    let n = 0;
    for await (const page of pages(async (from) =>
      data(
        "download",
        await sizedCall(kit, sizes, { verb: "download", taskId: "1", kinds: ["metrics", "log"], from }),
      ),
    )) {
      items.push(...page.items);
      n++;
    }
    assert.ok(n >= 4, `${n} pages`);
    for (const s of sizes) assert.ok(s <= PAGE_BYTES, `a reply of ${s} bytes`);
    assert.equal(items.length, 4000, "a metrics tarball and a log per point");
    assert.equal(new Set(items.map((i) => i.name)).size, 4000, "every file once");
    assert.deepEqual(
      [...new Set(items.map((i) => i.pointId))],
      Array.from({ length: 2000 }, (_, i) => i),
      "every point, in order",
    );
    assert.ok(items.every((i) => i.attempt === 1));

    // limit: at most that many points in a page, the next page starting after them
    const ten = data(
      "download",
      await call(kit, "alice", { verb: "download", taskId: "1", kinds: ["log"], from: 5, limit: 10 }),
    );
    assert.deepEqual(
      ten.items.map((i) => i.pointId),
      Array.from({ length: 10 }, (_, i) => 5 + i),
    );
    assert.equal(ten.next, 15);
    const last = data(
      "download",
      await call(kit, "alice", { verb: "download", taskId: "1", kinds: ["log"], from: 1999 }),
    );
    assert.equal(last.items.length, 1);
    assert.equal(last.next, null);
  });

  void it("a small max_payload makes small pages: download, show and list all fit and miss nothing", async () => {
    const kit = apiKit({ maxPayload: 32 * 1024 });
    finishedTask(kit, "1", 300);
    for (let i = 2; i <= 300; i++) createTask(kit, String(i), "alice");
    createTask(kit, "301", "bob");
    const sizes: number[] = [];

    const items: DownloadItem[] = [];
    for await (const page of pages(async (from) =>
      data(
        "download",
        await sizedCall(kit, sizes, { verb: "download", taskId: "1", kinds: ["metrics"], from }),
      ),
    ))
      items.push(...page.items);
    assert.equal(items.length, 300);

    const shown = await showAll(async (pointsFrom, pointsLimit) =>
      data("show", await sizedCall(kit, sizes, { verb: "show", taskId: "1", pointsFrom, pointsLimit })),
    );
    assert.deepEqual(
      shown.points.map((p) => p.pointId),
      Array.from({ length: 300 }, (_, i) => i),
    );

    const tasks: string[] = [];
    for await (const page of pages(async (from) =>
      data("list", await sizedCall(kit, sizes, { verb: "list", from })),
    ))
      tasks.push(...page.tasks.map((t) => t.taskId));
    assert.deepEqual(
      tasks,
      Array.from({ length: 300 }, (_, i) => String(i + 1)),
      "alice's tasks by id, bob's not",
    );
    assert.ok(sizes.length > 10, `${sizes.length} replies`);
    for (const s of sizes)
      assert.ok(s <= 16 * 1024, `a reply of ${s} bytes: pages take half the max_payload`);
  });

  void it("list of 5,000 tasks: unpaged it is a TOO_LARGE error, paged it is all of them", async () => {
    const kit = apiKit();
    for (let i = 1; i <= 5000; i++)
      createTask(kit, String(i), "alice", { outDS: `user.alice.a_rather_long_dataset_name_${i}` });
    const whole = refusal(await call(kit, "alice", { verb: "list" }));
    assert.equal(whole.code, "TOO_LARGE");
    assert.match(whole.message, /update phpo/);
    const sizes: number[] = [];
    const tasks: string[] = [];
    for await (const page of pages(async (from) =>
      data("list", await sizedCall(kit, sizes, { verb: "list", from })),
    ))
      tasks.push(...page.tasks.map((t) => t.taskId));
    assert.equal(tasks.length, 5000);
    assert.equal(new Set(tasks).size, 5000);
    assert.ok(sizes.length > 1);
    // a few tasks still come in one reply, paged or not (a phpo from before paging keeps working)
    const small = apiKit();
    createTask(small, "1", "alice");
    assert.deepEqual(
      data("list", await call(small, "alice", { verb: "list" })).tasks.map((t) => t.taskId),
      ["1"],
    );
  });

  void it("a respond() that fails is logged and answered with an error, not left to the client's timeout", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    let failures = 1;
    const { msg, replies } = fakeMsg("alice", { verb: "list", from: 0 }, kit.maxPayload, () => {
      if (failures-- > 0) throw new Error("connection draining");
    });
    await kit.api.handle(msg);
    assert.equal(replies.length, 1);
    const error = refusal(JSON.parse(replies[0]!) as ApiReply);
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /could not send its reply to list: Error: connection draining/);
  });
});

void describe("api: retry", () => {
  /** A finished task whose points 0 and 1 failed (maxAttempts 1); the rest succeeded. */
  function failedTask(kit: ApiKit, over: Record<string, unknown>) {
    const e = createTask(kit, "1", "alice", { maxAttempts: 1, nParallelEvaluation: 1, ...over });
    runTask(kit, e, (id) => (id < 2 ? "failed" : "ok"));
    record(kit, { type: "task-state", taskId: "1", at: 1e6, state: "finished" });
    return e;
  }

  void it("refuses (CONFLICT) when maxEvaluationJobs is used up, and keeps the failure records", async () => {
    const kit = apiKit();
    const e = failedTask(kit, { maxPoints: 4, nPointsPerIteration: 4, maxEvaluationJobs: 4 });
    assert.equal(e.attemptsUsedIn(0), 4);
    const logged = kit.log.stored.length;
    const err = refusal(await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: false }));
    assert.equal(err.code, "CONFLICT");
    assert.equal(err.retryable, false);
    assert.match(
      err.message,
      /maxEvaluationJobs 4; 4\/4 jobs used, 2 failed or cancelled points to run again/,
    );
    assert.match(err.message, /nothing was requeued/);
    assert.match(err.message, /submit the task again with a larger --maxEvaluationJobs/i);
    assert.equal(kit.log.stored.length, logged, "nothing logged");
    for (const id of [0, 1]) {
      const p = e.points.get(id)!;
      assert.equal(p.state, "failed");
      assert.equal(p.error, "exit code 1");
      assert.ok(p.loss !== null);
    }
    assert.equal(e.state, "finished");
  });

  void it("requeues when the budget left runs every point again", async () => {
    const kit = apiKit();
    const e = failedTask(kit, { maxPoints: 4, nPointsPerIteration: 4, maxEvaluationJobs: 6 });
    const r = data("retry", await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: true }));
    assert.equal(r.requeued, 2);
    assert.equal(r.task.state, "running");
    assert.equal(e.points.get(0)!.state, "queued");
    // the budget of one more is not enough for two points
    const tight = apiKit();
    failedTask(tight, { maxPoints: 4, nPointsPerIteration: 4, maxEvaluationJobs: 5 });
    const err = refusal(await call(tight, "alice", { verb: "retry", taskId: "1", failedOnly: true }));
    assert.match(err.message, /4\/5 jobs used, 2 failed points to run again/);
  });

  void it("segmented tasks: budgets are per segment, and one short segment refuses the whole retry, naming it", async () => {
    const kit = apiKit();
    const e = createTask(kit, "1", "alice", {
      maxPoints: 2,
      nPointsPerIteration: 2,
      nParallelEvaluation: 1,
      maxAttempts: 2,
      maxEvaluationJobs: 4,
      trainingDS: "user.alice.data",
      segments: [
        { name: "segA", files: ["a"] },
        { name: "segB", files: ["b"] },
      ],
    });
    // segment A: both points fail twice (4/4 jobs); segment B: one fails twice, one succeeds (3/4)
    runTask(kit, e, (id) => (id === 3 ? "ok" : "failed"));
    record(kit, { type: "task-state", taskId: "1", at: 1e6, state: "finished" });
    const failed = (seg: number) =>
      [...e.points.values()].filter((p) => p.segment === seg && p.state === "failed").length;
    assert.deepEqual([failed(0), failed(1)], [2, 1]);
    assert.deepEqual([e.attemptsUsedIn(0), e.attemptsUsedIn(1)], [4, 3]);
    const err = refusal(await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: true }));
    assert.equal(err.code, "CONFLICT");
    assert.match(
      err.message,
      /maxEvaluationJobs 4 per segment; segment segA: 4\/4 jobs used, 2 failed points to run again\)/,
    );
    assert.doesNotMatch(err.message, /segB/, "segment B could run its point");
    assert.deepEqual([failed(0), failed(1)], [2, 1], "nothing requeued, in either segment");
    assert.ok([...e.points.values()].every((p) => p.state !== "failed" || p.error === "exit code 1"));
  });

  void it("a kill queued ahead of the retry wins: the retry is refused and nothing is requeued", async () => {
    const kit = apiKit();
    // point 0 failed for good; points 1 and 2 are still queued in a running task
    const e = createTask(kit, "1", "alice", {
      maxPoints: 3,
      nPointsPerIteration: 3,
      nParallelEvaluation: 1,
      maxAttempts: 1,
    });
    const sampled = e.proposeSampling(2)!;
    record(kit, sampled);
    const job = e.nextDispatchable()!;
    const ref = { taskId: "1", jobId: job.jobId, attempt: 1 };
    record(
      kit,
      { type: "job-dispatched", ...ref, at: 3, site: "s" },
      { type: "job-claimed", ...ref, at: 4, site: "s", agent: "a" },
      {
        type: "job-finished",
        ...ref,
        at: 5,
        site: "s",
        agent: "a",
        status: "failed",
        loss: null,
        metrics: {},
        resource: null,
        error: { code: "EVALUATION_FAILED", message: "exit code 1", retryable: false },
        artifacts: [],
        missing: [],
        output: null,
        startedAt: 4,
        finishedAt: 5,
        exitCode: 1,
        failureClass: null,
      },
    );
    assert.equal(e.points.get(0)!.state, "failed");
    // Both arrive before either is handled: the kill's section is queued first.
    const kill = fakeMsg("alice", { verb: "kill", taskId: "1" }, kit.maxPayload);
    const retry = fakeMsg("alice", { verb: "retry", taskId: "1", failedOnly: false }, kit.maxPayload);
    await Promise.all([kit.api.handle(kill.msg), kit.api.handle(retry.msg)]);
    assert.equal(data("kill", JSON.parse(kill.replies[0]!) as ApiReply).state, "killed");
    const err = refusal(JSON.parse(retry.replies[0]!) as ApiReply);
    assert.equal(err.code, "CONFLICT");
    assert.match(err.message, /task 1 was killed; submit it again/);
    assert.ok(!kit.log.stored.some((ev) => ev.type === "points-requeued"));
    assert.deepEqual(
      [...e.points.values()].map((p) => p.state),
      ["failed", "cancelled", "cancelled"],
    );
  });

  void it("resume of a finished task names the fix", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    record(kit, { type: "task-state", taskId: "1", at: 2, state: "finished" });
    const err = refusal(await call(kit, "alice", { verb: "resume", taskId: "1" }));
    assert.equal(err.code, "CONFLICT");
    assert.equal(
      err.message,
      "task 1 is finished; it cannot be resumed: phpo retry 1 requeues its failed points, or submit the task again",
    );
    record(kit, { type: "task-state", taskId: "1", at: 3, state: "killed" });
    const killed = refusal(await call(kit, "alice", { verb: "resume", taskId: "1" }));
    assert.equal(killed.message, "task 1 is killed; it cannot be resumed: submit it again");
  });
});
