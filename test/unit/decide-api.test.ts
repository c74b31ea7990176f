// The client API's verbs that change state as pure decisions (core/decide/api.ts), on literal
// times: no NATS, no sleeps. A submission is refused per limit naming the limit and its fix, the
// rate window slides with `now` alone, a finished task cannot be paused or resumed and killing it
// again only tells its attempts to stop, a retry over maxEvaluationJobs logs nothing, and pause
// and resume move a task between running and paused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import type { SubmitCommand } from "../../steering/core/decide/api.ts";
import { decide } from "../../steering/core/decider.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { DEFAULT_TENANT_LIMITS, LimitExceededError, type TenantLimits } from "../../steering/core/limits.ts";
import { summarize } from "../../steering/core/views.ts";
import type { World } from "../../steering/core/world.ts";
import type { SitePolicy } from "../../steering/security/sitePolicy.ts";
import { apiKit, call, createTask, OPEN_POLICY, record, runTask } from "./fixtures/apiKit.ts";
import { spec, specInput, throwsCode } from "./fixtures/engineKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const T = 1_000_000;

function submit(
  over: { user?: string; spec?: Partial<TaskSpecInput>; limits?: Partial<TenantLimits> } = {},
): SubmitCommand {
  return {
    type: "submit",
    user: over.user ?? "alice",
    spec: spec(over.spec),
    limits: { ...DEFAULT_TENANT_LIMITS, ...over.limits },
    policy: OPEN_POLICY,
    trainingFiles: null,
    randomSeed: 42,
  };
}

/** Applies a decision's events as the committer stages them. */
function apply(w: World, events: readonly LogEvent[]): void {
  for (const ev of events) w.tasks.apply(ev);
}

/** Asserts a LimitExceededError of this limit whose message names the limit's value and the fix. */
function refusedBy(fn: () => unknown, limit: keyof TenantLimits, ...parts: RegExp[]): LimitExceededError {
  let caught: LimitExceededError | undefined;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LimitExceededError, `expected a LimitExceededError, got ${String(e)}`);
    assert.equal(e.limit, limit);
    assert.equal(e.code, "LIMIT_EXCEEDED");
    assert.match(e.message, /or ask an admin to raise it with `gridtune-steering admin set-limits alice --/);
    for (const p of parts) assert.match(e.message, p);
    caught = e;
    return true;
  });
  return caught!;
}

describe("decide: submit", () => {
  it("logs task-created with the next id and the spec's seed (else the shell's), then a log line and a pump", () => {
    const kit = apiKit();
    createTask(kit, "7", "bob");
    const w = kit.world();
    const d = decide(w, submit(), T);
    assert.deepEqual(d.reply, { taskId: "8", warnings: [] });
    assert.equal(d.events.length, 1);
    const ev = d.events[0]!;
    assert.ok(ev.type === "task-created");
    assert.deepEqual([ev.taskId, ev.at, ev.user, ev.seed], ["8", T, "alice", 42]);
    assert.deepEqual(
      d.effects.map((e) => e.type),
      ["log", "kick"],
    );
    const seeded = decide(w, submit({ spec: { sampler: { type: "random", seed: 5 } } }), T).events[0];
    assert.ok(seeded?.type === "task-created" && seeded.seed === 5);
  });

  it("each limit refuses, naming the limit, its value and the fix; nothing is logged", () => {
    const w = apiKit().world();
    refusedBy(
      () => decide(w, submit({ spec: { maxPoints: 41 }, limits: { maxPoints: 40 } }), T),
      "maxPoints",
      /the task asks for 41 points, the limit max_points is 40: ask for fewer/,
      /--max-points 80`$/,
    );
    apply(w, decide(w, submit(), T).events);
    apply(w, decide(w, submit(), T).events);
    const active = refusedBy(
      () => decide(w, submit({ limits: { activeTasks: 2 } }), T),
      "activeTasks",
      /you have 2 active tasks, the limit active_tasks is 2: kill one or wait for one to finish/,
    );
    assert.equal(active.retryable, false);
    // another user's tasks do not count; a killed one frees its place
    assert.equal(decide(w, submit({ user: "bob", limits: { activeTasks: 2 } }), T).events.length, 1);
    apply(w, [{ type: "task-state", taskId: "1", at: T, state: "killed" }]);
    assert.equal(decide(w, submit({ limits: { activeTasks: 2 } }), T).events.length, 1);
  });

  it("submits_per_minute: the window slides with `now` alone", () => {
    const w = apiKit().world();
    const limits = { submitsPerMinute: 3 };
    for (const at of [T, T + 10_000, T + 20_000]) apply(w, decide(w, submit({ limits }), at).events);
    const fast = refusedBy(
      () => decide(w, submit({ limits }), T + 30_000),
      "submitsPerMinute",
      /you submitted 3 tasks in the last minute, the limit submits_per_minute is 3: try again in 30 s/,
    );
    assert.equal(fast.retryable, true, "a rate refusal is retryable");
    refusedBy(() => decide(w, submit({ limits }), T + 59_999), "submitsPerMinute", /try again in 1 s/);
    // the same world, a minute after the first submission: it has left the window
    assert.equal(decide(w, submit({ limits }), T + 60_000).events.length, 1);
    // other users have windows of their own
    assert.equal(decide(w, submit({ user: "bob", limits }), T + 30_000).events.length, 1);
  });

  it("a submission counts once its event is applied, before it is durable (submissions in flight)", () => {
    const w = apiKit().world();
    const first = decide(w, submit({ limits: { submitsPerMinute: 1 } }), T);
    assert.equal(first.events.length, 1);
    apply(w, first.events);
    refusedBy(() => decide(w, submit({ limits: { submitsPerMinute: 1 } }), T + 1), "submitsPerMinute");
  });

  it("a sandboxKey outside the user's own uploads is refused (FORBIDDEN)", () => {
    const w = apiKit().world();
    for (const sandboxKey of [
      "uploads/bob/abc",
      "uploads/alice/../bob/abc", // a URL client would normalise this to bob's object
      "uploads/alice/x/../../bob/abc",
      "uploads/alice/sub/abc",
      "uploads/alice/.hidden",
      "tasks/1/sandbox.tgz",
      "uploads/alicex/abc",
    ])
      throwsCode(() => decide(w, submit({ spec: { sandboxKey } }), T), "FORBIDDEN", "uploads/alice/");
    assert.equal(decide(w, submit({ spec: { sandboxKey: "uploads/alice/abc" } }), T).events.length, 1);
  });

  it("sites: one that does not accept the user is refused; none live is a warning, not a refusal", () => {
    const w = apiKit().world();
    throwsCode(() => decide(w, submit({ spec: { site: ["t"] } }), T), "INVALID_ARGUMENT", 'no site "t"');
    const closed: SitePolicy = {
      ...OPEN_POLICY,
      sites: { s: { users: ["bob"], groups: [], all: false, runtimes: ["docker"] } },
    };
    throwsCode(
      () => decide(w, { ...submit(), policy: closed }, T),
      "FORBIDDEN",
      "no site accepts your work yet",
    );
    const silent: World = { ...w, agents: new AgentRegistry(30_000) };
    const d = decide(silent, submit(), T);
    assert.equal(d.events.length, 1);
    assert.match(d.reply.warnings[0] ?? "", /no agent of site s is registered now/);
  });

  it("trainingDS: checked against the listing the shell passes in", () => {
    const w = apiKit().world();
    const cmd = submit({ spec: { trainingDS: "user.alice.data" } });
    throwsCode(() => decide(w, { ...cmd, trainingFiles: [] }, T), "INVALID_CONFIG", "has no files");
    assert.equal(decide(w, { ...cmd, trainingFiles: ["a.h5"] }, T).events.length, 1);
    assert.throws(() => decide(w, cmd, T), /its files were not listed/);
  });
});

describe("decide: kill, pause, resume", () => {
  it("pause and resume move a running task between running and paused, at `now`; a repeat logs nothing", () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    const w = kit.world();
    const pause = decide(w, { type: "pause", user: "alice", taskId: "1" }, T);
    assert.deepEqual(pause.events, [{ type: "task-state", taskId: "1", at: T, state: "paused" }]);
    assert.deepEqual(pause.effects, [{ type: "kick" }]);
    apply(w, pause.events);
    assert.deepEqual(decide(w, { type: "pause", user: "alice", taskId: "1" }, T + 1).events, []);
    const resume = decide(w, { type: "resume", user: "alice", taskId: "1" }, T + 2);
    assert.deepEqual(resume.events, [{ type: "task-state", taskId: "1", at: T + 2, state: "running" }]);
    apply(w, resume.events);
    const kill = decide(w, { type: "kill", user: "alice", taskId: "1" }, T + 3);
    assert.deepEqual(kill.events, [{ type: "task-state", taskId: "1", at: T + 3, state: "killed" }]);
    // the stop goes once the kill is durable, with the attempts as they are then
    assert.deepEqual(kill.effects, [
      { type: "stop-attempts", taskId: "1", reason: "killed" },
      { type: "kick" },
    ]);
    assert.ok("engine" in kill.reply && kill.reply.engine.taskId === "1");
  });

  it("kill of a finished task logs nothing and tells its attempts to stop again; pause and resume are refused", () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    record(kit, { type: "task-state", taskId: "1", at: 2, state: "finished" });
    const w = kit.world();
    const kill = decide(w, { type: "kill", user: "alice", taskId: "1" }, T);
    assert.deepEqual(kill.events, []);
    assert.deepEqual(
      kill.effects.map((e) => e.type),
      ["stop-attempts", "kick"],
    );
    throwsCode(
      () => decide(w, { type: "pause", user: "alice", taskId: "1" }, T),
      "CONFLICT",
      "task 1 is finished; it cannot be paused",
    );
    throwsCode(
      () => decide(w, { type: "resume", user: "alice", taskId: "1" }, T),
      "CONFLICT",
      "it cannot be resumed: phpo retry 1 requeues its failed points",
    );
  });

  it("a retired task: kill answers its summary and does nothing; pause is refused", () => {
    const kit = apiKit();
    const e = createTask(kit, "1", "alice");
    record(kit, { type: "task-state", taskId: "1", at: 2, state: "killed" });
    kit.state.retire(summarize(e));
    const w = kit.world();
    const kill = decide(w, { type: "kill", user: "alice", taskId: "1" }, T);
    assert.deepEqual([kill.events, kill.effects], [[], []]);
    assert.ok("retired" in kill.reply && kill.reply.retired.state === "killed");
    throwsCode(
      () => decide(w, { type: "resume", user: "alice", taskId: "1" }, T),
      "CONFLICT",
      "task 1 is killed; it cannot be resumed: submit it again",
    );
  });

  it("another user's task, or none, is not found", () => {
    const kit = apiKit();
    createTask(kit, "1", "bob");
    for (const taskId of ["1", "2"])
      throwsCode(
        () => decide(kit.world(), { type: "kill", user: "alice", taskId }, T),
        "NOT_FOUND",
        `task ${taskId} does not exist (or is not yours)`,
      );
  });
});

describe("decide: retry", () => {
  /** Task 1 of alice, finished, its points 0 and 1 failed (maxAttempts 1). */
  function failed(maxEvaluationJobs: number) {
    const kit = apiKit();
    const e = createTask(kit, "1", "alice", {
      maxPoints: 4,
      nPointsPerIteration: 4,
      nParallelEvaluation: 1,
      maxAttempts: 1,
      maxEvaluationJobs,
    });
    runTask(kit, e, (id) => (id < 2 ? "failed" : "ok"));
    record(kit, { type: "task-state", taskId: "1", at: 1e5, state: "finished" });
    return { kit, e };
  }
  const retry = { type: "retry", user: "alice", taskId: "1", failedOnly: true, retired: null } as const;

  it("over maxEvaluationJobs: refused (CONFLICT) naming the budget and the fix; nothing is logged", () => {
    const { kit, e } = failed(5);
    const err = throwsCode(
      () => decide(kit.world(), retry, T),
      "CONFLICT",
      "maxEvaluationJobs 5; 4/5 jobs used, 2 failed points to run again",
      "nothing was requeued",
      "larger --maxEvaluationJobs",
    );
    assert.equal(err.retryable, false);
    assert.equal(e.points.get(0)!.state, "failed");
  });

  it("within the budget: the failed points are requeued at `now`", () => {
    const { kit } = failed(6);
    const d = decide(kit.world(), retry, T);
    assert.deepEqual(d.events, [{ type: "points-requeued", taskId: "1", at: T, pointIds: [0, 1] }]);
    assert.deepEqual(d.effects, [{ type: "kick" }]);
    assert.equal(d.reply.requeued, 2);
  });

  it("a killed task is never retried; a retired one needs the fold of its log", () => {
    const { kit, e } = failed(6);
    record(kit, { type: "task-state", taskId: "1", at: 1e5 + 1, state: "killed" });
    throwsCode(() => decide(kit.world(), retry, T), "CONFLICT", "task 1 was killed; submit it again");
    const other = failed(6);
    other.kit.state.retire(summarize(other.e));
    assert.throws(() => decide(other.kit.world(), retry, T), /without a fold of its log/);
    const d = decide(other.kit.world(), { ...retry, retired: other.e }, T);
    assert.equal(d.reply.requeued, 2);
    assert.equal(e.state, "killed");
  });
});

describe("the API shell runs the decisions", () => {
  it("a kill through Api.handle logs the kill, then stops the task's attempts, and answers the summary", async () => {
    const kit = apiKit({ clock: new FakeClock(T) });
    createTask(kit, "1", "alice");
    const r = await call(kit, "alice", { verb: "kill", taskId: "1" });
    assert.ok(r.ok);
    assert.equal((r.data as { state: string }).state, "killed");
    assert.deepEqual(kit.log.stored.at(-1), { type: "task-state", taskId: "1", at: T, state: "killed" });
    assert.deepEqual(kit.stops, [{ taskId: "1", reason: "killed" }]);
    // another user's kill changes nothing and stops nothing
    createTask(kit, "2", "bob");
    const theirs = await call(kit, "alice", { verb: "kill", taskId: "2" });
    assert.ok(!theirs.ok && theirs.error.code === "NOT_FOUND");
    assert.equal(kit.state.engines.get("2")?.state, "running");
    assert.equal(kit.stops.length, 1);
  });

  it("a submission is timed by the API's clock", async () => {
    const kit = apiKit({ clock: new FakeClock(T + 5) });
    const r = await call(kit, "alice", { verb: "submit", spec: specInput() });
    assert.ok(r.ok, r.ok ? "" : r.error.message);
    const ev = kit.log.stored.at(-1);
    assert.ok(ev?.type === "task-created");
    assert.deepEqual([ev.taskId, ev.at, ev.user], ["1", T + 5, "alice"]);
  });
});
