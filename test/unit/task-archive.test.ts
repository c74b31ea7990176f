// Finished tasks leave steering's memory (steering/shell/taskArchive.ts): memory and start-up are
// bounded by active work, not history. A retired task keeps its summary (list), is loaded from
// its log on demand (show, download), through a bounded cache, and comes back to memory on retry;
// the finished index is written only after the log holds the task's end, and emptied before a
// retry's requeue is logged, so a crash between the two never loses anything.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiReplies, type ApiReply, type TaskSummary } from "../../protocol/api.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { LOADED_TASKS_CACHED, MemoryFinishedIndex } from "../../steering/shell/taskArchive.ts";
import { detail } from "../../steering/core/views.ts";
import { apiKit, call, createTask, record, runTask, type ApiKit } from "./fixtures/apiKit.ts";
import { startupOver } from "./fixtures/startupKit.ts";

function data<V extends keyof typeof ApiReplies>(verb: V, r: ApiReply) {
  assert.ok(r.ok, `${verb} refused: ${r.ok ? "" : `${r.error.code} ${r.error.message}`}`);
  return ApiReplies[verb].parse(r.data) as ReturnType<(typeof ApiReplies)[V]["parse"]>;
}

/** Runs a task of `user` to its end; the end goes through the Committer, as the dispatcher's does. */
async function finish(
  kit: ApiKit,
  taskId: string,
  user = "alice",
  status: (pointId: number) => "ok" | "failed" = () => "ok",
): Promise<void> {
  const e = createTask(kit, taskId, user, { maxPoints: 3, nPointsPerIteration: 3, nParallelEvaluation: 1 });
  runTask(kit, e, status);
  await kit.c.serial(() => kit.c.commit({ type: "task-state", taskId, at: 1e6, state: "finished" }));
}

/** Task "1" of alice with its first job dispatched to site s and claimed by agent a (at 3 and 4). */
function claimedTask(points: number) {
  const kit = apiKit();
  const e = createTask(kit, "1", "alice", {
    maxPoints: points,
    nPointsPerIteration: points,
    nParallelEvaluation: points,
  });
  record(kit, e.proposeSampling(2)!);
  const job = e.nextDispatchable()!;
  const ref = { taskId: "1", jobId: job.jobId, attempt: job.attempt };
  record(
    kit,
    { type: "job-dispatched", ...ref, at: 3, site: "s" },
    { type: "job-claimed", ...ref, at: 4, site: "s", agent: "a" },
  );
  return { kit, ref };
}

/** Waits until the retirements queued so far have run (they go through the commit queue). */
const settled = (kit: ApiKit) => kit.c.serial(() => Promise.resolve());

void describe("task archive: finished tasks leave memory", () => {
  void it("a finished task keeps only its summary in memory; list and show are unchanged", async () => {
    const kit = apiKit();
    await finish(kit, "1");
    const before = detail(kit.state.engines.get("1")!);
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), false, "the engine left memory");
    assert.deepEqual(kit.state.finished.get("1")?.counts, before.counts);
    assert.deepEqual([...kit.index.entries.keys()], ["1"]);
    const list = data("list", await call(kit, "alice", { verb: "list", from: 0 }));
    assert.deepEqual(
      list.tasks.map((t) => [t.taskId, t.state, t.counts.done]),
      [["1", "finished", 3]],
    );
    const shown = data("show", await call(kit, "alice", { verb: "show", taskId: "1" }));
    assert.deepEqual(shown, JSON.parse(JSON.stringify(before)));
    // another user still sees nothing of it
    assert.equal((await call(kit, "bob", { verb: "show", taskId: "1" })).ok, false);
    const killed = data("kill", await call(kit, "alice", { verb: "kill", taskId: "1" }));
    assert.equal(killed.state, "finished");
    const paused = await call(kit, "alice", { verb: "pause", taskId: "1" });
    assert.ok(!paused.ok && paused.error.code === "CONFLICT");
  });

  void it("memory does not grow with finished tasks: 200 of them leave no engine behind", async () => {
    const kit = apiKit();
    for (let i = 1; i <= 200; i++) await finish(kit, String(i), i % 2 ? "alice" : "bob");
    await settled(kit);
    assert.equal(kit.state.engines.size, 0);
    assert.equal(kit.state.finished.size, 200);
    assert.equal(data("list", await call(kit, "bob", { verb: "list", from: 0 })).tasks.length, 100);
  });

  void it("a killed task stays in memory while an attempt is in flight, and leaves when it ends", async () => {
    const { kit, ref } = claimedTask(2);
    assert.ok(data("kill", await call(kit, "alice", { verb: "kill", taskId: "1" })));
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), true, "its attempt's report must still find it");
    await kit.c.serial(() => kit.c.commit({ type: "job-lost", ...ref, at: 5, reason: "stopped" }));
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), false);
    assert.equal(kit.state.finished.get("1")?.state, "killed");
  });

  void it("a finished task stays in memory while an artifact of it is awaited (after an S3 outage)", async () => {
    const { kit, ref } = claimedTask(1);
    await kit.c.serial(() =>
      kit.c.commit({
        type: "job-finished",
        ...ref,
        at: 5,
        site: "s",
        agent: "a",
        status: "ok",
        loss: 0.5,
        metrics: {},
        resource: null,
        error: null,
        artifacts: [],
        missing: [{ kind: "log", reason: "HTTP 503 (the agent keeps trying)" }],
        output: null,
        startedAt: 4,
        finishedAt: 5,
        exitCode: 0,
        failureClass: null,
      }),
    );
    await kit.c.serial(() => kit.c.commit({ type: "task-state", taskId: "1", at: 6, state: "finished" }));
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), true, "the late log must still find its task");
    const log = { kind: "log" as const, key: "tasks/1/log.txt", size: 3, etag: "e" };
    await kit.c.serial(() =>
      kit.c.commit({ type: "job-artifact", ...ref, at: 7, kind: "log", artifact: log, reason: null }),
    );
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), false, "it leaves once nothing is awaited");
    assert.equal(kit.state.finished.get("1")?.state, "finished");
  });

  void it("loaded tasks are cached, at most LOADED_TASKS_CACHED of them", async () => {
    const kit = apiKit();
    const n = LOADED_TASKS_CACHED + 2;
    for (let i = 1; i <= n; i++) await finish(kit, String(i));
    await settled(kit);
    const show = async (id: string) => data("show", await call(kit, "alice", { verb: "show", taskId: id }));
    kit.reads.length = 0;
    await show("1");
    await show("1");
    assert.deepEqual(kit.reads, ["1"], "read once, then from the cache");
    for (let i = 2; i <= n; i++) await show(String(i));
    kit.reads.length = 0;
    await show("1");
    assert.deepEqual(kit.reads, ["1"], "the least recently used was dropped");
  });

  void it("retry of a retired task brings it back: the index entry goes before the requeue is logged", async () => {
    const kit = apiKit();
    await finish(kit, "1", "alice", (p) => (p === 1 ? "failed" : "ok"));
    await settled(kit);
    assert.equal(kit.state.engines.has("1"), false);
    // the log's length when the entry was removed: nothing of the retry was logged before it
    let loggedAtRemove = -1;
    const remove = kit.index.remove.bind(kit.index);
    kit.index.remove = (id) => {
      loggedAtRemove = kit.log.stored.length;
      return remove(id);
    };
    const logged = kit.log.stored.length;
    const r = data("retry", await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: true }));
    assert.equal(r.requeued, 1);
    assert.equal(r.task.state, "running");
    assert.equal(loggedAtRemove, logged);
    assert.equal(kit.log.stored.at(-1)?.type, "points-requeued");
    assert.equal(kit.state.engines.get("1")?.state, "running");
    assert.equal(kit.state.finished.has("1"), false);
    assert.equal(kit.index.entries.has("1"), false);
  });

  void it("retry of a retired task with nothing to requeue leaves it retired; of a killed one is refused", async () => {
    const kit = apiKit();
    await finish(kit, "1");
    await settled(kit);
    const r = data("retry", await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: false }));
    assert.equal(r.requeued, 0);
    assert.equal(kit.state.engines.has("1"), false);
    assert.equal(kit.index.entries.has("1"), true);
    createTask(kit, "2", "alice");
    data("kill", await call(kit, "alice", { verb: "kill", taskId: "2" }));
    await settled(kit);
    assert.equal(kit.state.finished.get("2")?.state, "killed");
    const refused = await call(kit, "alice", { verb: "retry", taskId: "2", failedOnly: false });
    assert.ok(!refused.ok && refused.error.code === "CONFLICT" && /was killed/.test(refused.error.message));
  });
});

/** A steering start-up over a log and an index, as service.ts does it. */
async function restart(
  log: readonly LogEvent[],
  index: MemoryFinishedIndex,
): Promise<{ state: SteeringState; reads: string[] }> {
  const { state, reads, archive, ids } = startupOver(log, index);
  await archive.restore(ids);
  return { state, reads };
}

void describe("task archive: start-up reads only active tasks", () => {
  void it("finished tasks come from the index; only active ones are read from the log", async () => {
    const kit = apiKit();
    for (let i = 1; i <= 5; i++) await finish(kit, String(i));
    createTask(kit, "6", "alice");
    await settled(kit);
    const { state, reads } = await restart(kit.log.stored, kit.index);
    assert.deepEqual(reads, ["6"]);
    assert.deepEqual([...state.engines.keys()], ["6"]);
    assert.equal(state.finished.size, 5);
    assert.equal(state.maxTaskId, 6);
  });

  void it("a crash after the task's end was logged but before its index entry: read in full and retired again", async () => {
    const kit = apiKit();
    await finish(kit, "1");
    await settled(kit);
    const before: TaskSummary = kit.state.finished.get("1")!;
    const index = new MemoryFinishedIndex(); // the put never happened
    const { state, reads } = await restart(kit.log.stored, index);
    assert.deepEqual(reads, ["1"]);
    assert.equal(state.engines.size, 0);
    assert.deepEqual(state.finished.get("1"), before);
    assert.deepEqual(index.entries.get("1"), before, "the index is repaired");
  });

  void it("a crash between a retry's index removal and its requeue: the task is read in full, still finished", async () => {
    const kit = apiKit();
    await finish(kit, "1", "alice", (p) => (p === 1 ? "failed" : "ok"));
    await settled(kit);
    const index = new MemoryFinishedIndex(); // removed; the requeue was never logged
    const { state } = await restart(kit.log.stored, index);
    assert.equal(state.finished.get("1")?.counts.failed, 1);
    // and after a retry that was logged, the task is active after a restart
    data("retry", await call(kit, "alice", { verb: "retry", taskId: "1", failedOnly: true }));
    const again = await restart(kit.log.stored, kit.index);
    assert.equal(again.state.engines.get("1")?.state, "running");
    assert.equal(again.state.finished.has("1"), false);
  });

  void it("an index entry for a task the log does not hold is not listed", async () => {
    const index = new MemoryFinishedIndex();
    const kit = apiKit();
    await finish(kit, "1");
    await settled(kit);
    await index.put({ ...kit.state.finished.get("1")!, taskId: "9" });
    const { state } = await restart(kit.log.stored, index);
    assert.deepEqual([...state.finished.keys()], ["1"]);
  });
});
