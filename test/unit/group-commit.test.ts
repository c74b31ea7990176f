// The Committer's group commit: staged events are in the state at once and in the log in the same
// order; effects wait for `durable`; a lost append marks the task diverged until its engine is
// rebuilt from what the log really holds. And the paged `show` reply with the client's showAll.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { MAX_CHANGES_PER_MESSAGE, TaskEvents, type TaskDetail } from "../../protocol/api.ts";
import { showAll } from "../../client/paging.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import type { LogEvent, LogEventOf } from "../../steering/core/events.ts";
import type { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import { detail, jsonBytes, PAGE_BYTES } from "../../steering/core/views.ts";
import { Driver, engineState, rejectsCode, spec } from "./fixtures/engineKit.ts";

/** An event log whose appends settle only when the test says so (like JetStream acks, in order). */
class ManualLog {
  readonly stored: LogEvent[] = [];
  readonly pending: Array<{ ev: LogEvent; ok: () => void; fail: (e: Error) => void }> = [];
  append(ev: LogEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        ev,
        ok: () => {
          this.stored.push(ev);
          resolve();
        },
        fail: reject,
      });
    });
  }
  /** Acknowledges the next `n` appends; `lose` (by position among them) fail instead. */
  settle(n: number, lose: number[] = []): void {
    for (let i = 0; i < n; i++) {
      const p = this.pending.shift();
      if (!p) return;
      if (lose.includes(i)) p.fail(new Error("append timed out"));
      else p.ok();
    }
  }
}

function setup(): {
  d: Driver;
  log: ManualLog;
  c: Committer;
  state: SteeringState;
  published: string[];
  messages: TaskEvents[];
} {
  const d = new Driver(spec({ maxPoints: 6, nParallelEvaluation: 3 }));
  const log = new ManualLog();
  const state = new SteeringState();
  for (const ev of d.log) {
    state.apply(ev);
    log.stored.push(ev);
  }
  const published: string[] = [];
  const messages: TaskEvents[] = [];
  const c = new Committer(
    state,
    log,
    {
      publish: (subject: string, data: string) => {
        published.push(subject);
        messages.push(TaskEvents.parse(JSON.parse(data)));
      },
    },
    createLogger("test", { level: "error" }),
    (id) => Promise.resolve(log.stored.filter((e) => e.taskId === id)),
  );
  return { d, log, c, state, published, messages };
}

const tick = () => new Promise((r) => setImmediate(r));

/** The job-dispatched event of the task's next job. */
function dispatchNext(d: Driver, e: TaskEngine): LogEventOf<"job-dispatched"> {
  const job = e.nextDispatchable()!;
  return {
    type: "job-dispatched",
    taskId: "42",
    at: d.tick(),
    jobId: job.jobId,
    attempt: job.attempt,
    site: "s",
  };
}

void describe("group commit", () => {
  void it("applies staged events at once, keeps the log order, and resolves durable on the ack", async () => {
    const { d, log, c, state } = setup();
    const e = state.engines.get("42")!;
    const sampling = e.proposeSampling(d.tick())!;
    const s1 = c.stage(sampling);
    assert.equal(e.points.size, sampling.points.length, "in the state before the ack");
    const s2 = c.stage(dispatchNext(d, e));
    let stored = false;
    void s2.durable.then(() => (stored = true));
    await tick();
    assert.equal(stored, false, "durable waits for the server's ack");
    log.settle(2);
    await s1.durable;
    await s2.durable;
    assert.equal(stored, true);
    assert.deepEqual(
      log.stored.slice(-2).map((x) => x.type),
      ["points-added", "job-dispatched"],
    );
  });

  void it("a lost append marks the task diverged; recover() rebuilds it from the log", async () => {
    const { d, log, c, state } = setup();
    const e = state.engines.get("42")!;
    c.stage(e.proposeSampling(d.tick())!);
    const job = dispatchNext(d, e);
    const lost = c.stage(job);
    assert.equal(e.job(job.jobId)?.state, "dispatched", "applied before the append settled");
    // keep the queue busy, so the rebuild the failure schedules waits behind this section
    let release = () => {};
    const busy = c.serial(() => new Promise<void>((r) => (release = r)));
    log.settle(2, [1]);
    await assert.rejects(lost.durable, /append timed out/);
    assert.equal(c.isDiverged("42"), true);
    // nothing more is staged for the task until it is rebuilt
    await rejectsCode(
      Promise.resolve().then(() =>
        c.stage({ type: "task-state", taskId: "42", at: d.tick(), state: "paused" }),
      ),
      "UNAVAILABLE",
      "rebuilt",
    );
    release();
    await busy;
    await c.serial(() => Promise.resolve()); // the scheduled rebuild has run
    assert.equal(c.isDiverged("42"), false);
    const rebuilt = state.engines.get("42")!;
    assert.notEqual(rebuilt, e);
    assert.equal(rebuilt.job(job.jobId)?.state, "queued", "the lost dispatch is not in the rebuilt state");
    const reference = new Driver(spec({ maxPoints: 6, nParallelEvaluation: 3 }));
    for (const ev of log.stored.slice(1)) reference.apply(ev);
    assert.deepEqual(engineState(rebuilt), engineState(reference.engine));
  });

  void it("watch events go out once stored, gathered with one summary per batch", async () => {
    const { d, log, c, state, published } = setup();
    const e = state.engines.get("42")!;
    c.stage(e.proposeSampling(d.tick())!);
    await tick();
    c.flushNotifications();
    assert.equal(published.length, 0, "nothing is announced before it is stored");
    log.settle(1);
    await tick();
    c.flushNotifications();
    assert.deepEqual(published, ["gt.events.alice.42"]);
    c.stage({ type: "task-state", taskId: "42", at: d.tick(), state: "paused" });
    log.settle(1);
    await tick();
    assert.equal(published.length, 2, "a state change is sent at once");
  });

  void it("the changes of one batch go out in one message per task, split past the cap", async () => {
    const { d, log, c, state, messages } = setup();
    const e = state.engines.get("42")!;
    c.stage(e.proposeSampling(d.tick())!);
    const jobs = [dispatchNext(d, e)];
    c.stage(jobs[0]!);
    jobs.push(dispatchNext(d, e));
    c.stage(jobs[1]!);
    for (const j of jobs)
      c.stage({
        type: "job-claimed",
        taskId: "42",
        at: d.tick(),
        jobId: j.jobId,
        attempt: j.attempt,
        site: "s",
        agent: "a",
      });
    log.settle(5);
    await tick();
    c.flushNotifications();
    assert.equal(messages.length, 1);
    assert.deepEqual(
      messages[0]!.changes.map((x) => x.kind),
      ["point-added", "job-started", "job-started"],
    );
    assert.equal(messages[0]!.summary.counts.running, 2, "the summary is the state after the changes");
    // past MAX_CHANGES_PER_MESSAGE a batch is split, each part with the summary
    const j = jobs[0]!;
    for (let i = 0; i < MAX_CHANGES_PER_MESSAGE + 5; i++)
      c.stage({
        type: "job-progress",
        taskId: "42",
        at: d.tick(),
        jobId: j.jobId,
        attempt: j.attempt,
        resource: i,
        metrics: {},
      });
    log.settle(MAX_CHANGES_PER_MESSAGE + 5);
    await tick();
    c.flushNotifications();
    assert.deepEqual(
      messages.slice(1).map((m) => m.changes.length),
      [MAX_CHANGES_PER_MESSAGE, 5],
    );
  });
});

void describe("paged show", () => {
  void it("pages stay under the byte budget and showAll joins them in point order", async () => {
    const d = new Driver(
      spec({
        maxPoints: 400,
        nParallelEvaluation: 400,
        nPointsPerIteration: 400,
        // long parameter values make each point view large, so the pages split
        searchSpace: Object.fromEntries(
          Array.from({ length: 40 }, (_, i) => [
            `parameter_with_a_long_name_${i}`,
            { method: "uniform", dimension: { low: 0, high: 1 } },
          ]),
        ),
      }),
    );
    d.sampleAll();
    const pages: TaskDetail[] = [];
    const all = await showAll((from, limit) => {
      const p = detail(d.engine, from, limit);
      pages.push(p);
      return Promise.resolve(p);
    });
    assert.ok(pages.length > 1, `one page of ${JSON.stringify(pages[0]).length} bytes`);
    // the whole reply (summary, spec, segments and points) stays within the page's bytes
    for (const p of pages) assert.ok(jsonBytes(p) <= PAGE_BYTES, `a page of ${jsonBytes(p)} bytes`);
    assert.equal(all.points.length, 400);
    assert.deepEqual(
      all.points.map((p) => p.pointId),
      [...d.engine.points.keys()].sort((a, b) => a - b),
    );
    assert.equal(all.pointsNext, null);
    const summaryOnly = await showAll((from, limit) => Promise.resolve(detail(d.engine, from, limit)), false);
    assert.equal(summaryOnly.points.length, 0);
    assert.equal(summaryOnly.counts.points, 400);
  });

  void it("showAll refuses pages that do not move on", async () => {
    const d = new Driver(spec({ maxPoints: 3 }));
    d.sampleAll();
    const stuck = { ...detail(d.engine, 0, 1), pointsNext: 0 };
    await assert.rejects(
      showAll(() => Promise.resolve(stuck)),
      /do not move on/,
    );
  });
});
