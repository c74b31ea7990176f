// Retries of failed or lost attempts (issue 14, item 7): they wait an exponential back-off with
// jitter (steering config), the same after a replay, and prefer another site, then another agent
// of the site, than the ones the job already failed on. Literal clocks throughout; the
// dispatcher test runs the real Dispatcher and Committer with in-memory stand-ins and a fake clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, stableUnit, type Backoff } from "../../protocol/backoff.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentRegistry, pickSite, type AgentRec } from "../../steering/core/agentRegistry.ts";
import { compileSteeringConfig, type SteeringConfig } from "../../steering/shell/config.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { Dispatcher } from "../../steering/shell/dispatcher.ts";
import { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import type { LogEvent, LogEventOf } from "../../steering/core/events.ts";
import { agentsToAvoid, failedSites, retryReadyAt } from "../../steering/core/retryPolicy.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { openPolicy } from "./fixtures/apiKit.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

/** The pumps queued so far have run and what they started (appends, effects) has settled. */
async function drained(c: Committer): Promise<void> {
  await c.serial(() => Promise.resolve());
  await new Promise((r) => setImmediate(r));
}

const NO_JITTER: Backoff = { baseMs: 1000, maxMs: 8000, jitter: 0 };

void describe("backoffDelay", () => {
  void it("doubles from baseMs per failure and stops at maxMs", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 60].map((n) => backoffDelay(NO_JITTER, n, 0.7)),
      [1000, 2000, 4000, 8000, 8000, 8000],
    );
  });

  void it("takes off at most the jitter share, by u", () => {
    const b: Backoff = { baseMs: 1000, maxMs: 8000, jitter: 0.5 };
    assert.equal(backoffDelay(b, 2, 0), 2000);
    assert.equal(backoffDelay(b, 2, 0.5), 1500);
    assert.equal(backoffDelay(b, 2, 0.999999), 1000);
  });

  void it("stableUnit is in [0, 1) and the same for the same key", () => {
    const us = ["t1-p0-j1#1", "t1-p0-j1#2", "t9-p3-j2#1", ""].map(stableUnit);
    for (const u of us) assert.ok(u >= 0 && u < 1);
    assert.equal(stableUnit("t1-p0-j1#1"), us[0]);
    assert.notEqual(us[0], us[1]);
  });
});

/** A task of one point whose first attempt fails at the driver's clock; returns the failure time. */
function failOnce(d: Driver, site = "site-a", agent = "agent-1"): number {
  const ref = d.dispatch(site)!;
  d.claim(ref, site, agent);
  d.finish(ref, "failed", null, site, agent);
  return d.clock;
}

void describe("retry back-off in the engine", () => {
  void it("a failed attempt is held until its back-off has passed, and doubles on the next failure", () => {
    const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3, maxEvaluationJobs: 10 }));
    d.sampleAll();
    const at = failOnce(d);
    const readyAt = (p: Parameters<typeof retryReadyAt>[1]) => retryReadyAt(NO_JITTER, p);
    assert.deepEqual(d.engine.nextReady(at, readyAt), { job: null, wakeAt: at + 1000 });
    assert.equal(d.engine.nextReady(at + 999, readyAt).job, null);
    const ready = d.engine.nextReady(at + 1000, readyAt);
    assert.equal(ready.job?.attempt, 2, "the retry goes out once its back-off is over");
    d.clock = at + 1000;
    const at2 = failOnce(d);
    assert.deepEqual(d.engine.nextReady(at2 + 1999, readyAt), { job: null, wakeAt: at2 + 2000 });
    assert.equal(d.engine.nextReady(at2 + 2000, readyAt).job?.attempt, 3);
  });

  void it("a lost attempt backs off too; a user's retry and a first attempt do not wait", () => {
    const d = new Driver(spec({ maxPoints: 2, maxAttempts: 1, nParallelEvaluation: 2 }));
    d.sampleAll();
    const readyAt = (p: Parameters<typeof retryReadyAt>[1]) => retryReadyAt(NO_JITTER, p);
    const first = d.dispatch()!;
    d.claim(first);
    assert.equal(d.engine.nextReady(d.clock, readyAt).job?.pointId, 1, "a first attempt goes at once");
    d.finish(first, "failed", null);
    const p0 = d.engine.points.get(0)!;
    assert.equal(p0.state, "failed", "maxAttempts 1: the point failed (a payload error)");
    d.requeue([0]);
    assert.equal(d.engine.nextReady(d.clock, readyAt).job?.pointId, 0, "the user's retry goes at once");

    const d2 = new Driver(spec({ maxPoints: 1, maxAttempts: 2 }));
    d2.sampleAll();
    const ref = d2.dispatch()!;
    d2.claim(ref);
    d2.lose(ref);
    assert.equal(d2.engine.nextReady(d2.clock, readyAt).job, null, "the retry of a lost attempt waits");
    assert.equal(d2.engine.nextReady(d2.clock + 1000, readyAt).job?.attempt, 2);
  });

  void it("with jitter, the hold is the same after a replay of the log", () => {
    const b: Backoff = { baseMs: 10_000, maxMs: 600_000, jitter: 0.5 };
    const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }));
    d.sampleAll();
    const at = failOnce(d);
    const live = d.engine.nextReady(at, (p) => retryReadyAt(b, p)).wakeAt!;
    assert.ok(live > at + 5000 && live <= at + 10_000, `held ${live - at} ms`);
    const replayed = new TaskEngine(d.log[0] as LogEventOf<"task-created">);
    for (const ev of d.log.slice(1)) replayed.apply(ev);
    assert.equal(replayed.nextReady(at, (p) => retryReadyAt(b, p)).wakeAt, live);
  });
});

void describe("where a retry goes", () => {
  void it("pickSite prefers a site the job did not fail on, and falls back when none has room", () => {
    const capacity = new Map([
      ["alpha", 4],
      ["beta", 2],
    ]);
    assert.equal(
      pickSite(capacity, new Map(), undefined, () => true),
      "alpha",
      "the roomiest site without a failure",
    );
    assert.equal(
      pickSite(capacity, new Map(), undefined, () => true, new Set(["alpha"])),
      "beta",
    );
    assert.equal(
      pickSite(capacity, new Map([["beta", 2]]), undefined, () => true, new Set(["alpha"])),
      "alpha",
    );
    assert.equal(
      pickSite(capacity, new Map(), ["alpha"], () => true, new Set(["alpha"])),
      "alpha",
      "only allowed sites",
    );
  });

  void it("the job remembers the sites and agents it failed on, until a new job of the point", () => {
    const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }));
    d.sampleAll();
    failOnce(d, "alpha", "a1");
    const j = d.engine.points.get(0)!.job;
    assert.deepEqual([...failedSites(j)], ["alpha"]);
    assert.deepEqual(j.failedOn, [{ site: "alpha", agent: "a1" }]);
  });

  void it("agentsToAvoid names the failed agent only while another agent of the site has a free slot", () => {
    const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }));
    d.sampleAll();
    failOnce(d, "alpha", "a1");
    const j = d.engine.points.get(0)!.job;
    const agent = (name: string, o: Partial<AgentRec> = {}): AgentRec => ({
      site: "alpha",
      agent: name,
      slots: 2,
      freeSlots: 1,
      gpus: [],
      runtime: "process",
      lastSeen: 10_000,
      draining: false,
      ...o,
    });
    assert.deepEqual(agentsToAvoid(j, "alpha", [agent("a1"), agent("a2")], 10_500, 1000), ["a1"]);
    assert.deepEqual(
      agentsToAvoid(j, "alpha", [agent("a1"), agent("a2", { freeSlots: 0 })], 10_500, 1000),
      [],
    );
    assert.deepEqual(
      agentsToAvoid(j, "alpha", [agent("a1"), agent("a2", { draining: true })], 10_500, 1000),
      [],
    );
    assert.deepEqual(agentsToAvoid(j, "alpha", [agent("a1"), agent("a2")], 20_000, 1000), [], "a2 is silent");
    assert.deepEqual(agentsToAvoid(j, "beta", [agent("a1"), agent("a2")], 10_500, 1000), [], "another site");
  });
});

void describe("steering config: retry", () => {
  const env = {
    NATS_URL: "nats://x",
    GRIDTUNE_SEED_FILE: "/s",
    GRIDTUNE_API_SEED_FILE: "/a",
    S3_ENDPOINT: "http://127.0.0.1:9",
    AWS_ACCESS_KEY_ID: "k",
    AWS_SECRET_ACCESS_KEY: "s",
  };
  void it("has defaults and takes GRIDTUNE_RETRY_* from the environment", () => {
    assert.deepEqual(compileSteeringConfig({}, env).retry, { baseMs: 20_000, maxMs: 600_000, jitter: 0.5 });
    const c = compileSteeringConfig(
      {},
      { ...env, GRIDTUNE_RETRY_BASE_MS: "500", GRIDTUNE_RETRY_MAX_MS: "4000", GRIDTUNE_RETRY_JITTER: "0" },
    );
    assert.deepEqual(c.retry, { baseMs: 500, maxMs: 4000, jitter: 0 });
  });

  void it("refuses a jitter outside [0, 1] and a max below the base, naming the field", () => {
    assert.throws(() => compileSteeringConfig({}, { ...env, GRIDTUNE_RETRY_JITTER: "2" }), /retry\.jitter/);
    assert.throws(
      () =>
        compileSteeringConfig({}, { ...env, GRIDTUNE_RETRY_BASE_MS: "5000", GRIDTUNE_RETRY_MAX_MS: "10" }),
      /retry\.maxMs must be at least retry\.baseMs/,
    );
  });
});

void describe("dispatcher: a failed attempt's retry is published only after its back-off", () => {
  void it("holds the retry, then publishes it when the back-off ends (no other kick needed)", async () => {
    const logger = createLogger("test", { level: "error" });
    // time moves only by hand: the back-off's end is a timer of the Clock port
    const clock = new FakeClock(50_000);
    const d = new Driver(spec({ maxPoints: 1, maxAttempts: 3 }), "1");
    d.sampleAll();
    const ref = d.dispatch("s")!;
    d.claim(ref, "s", "a");
    d.apply({ ...d.finishEvent(ref, "failed", null, "s", "a"), at: clock.now() });
    const state = new SteeringState();
    for (const ev of d.log) state.apply(ev);
    const stored: LogEvent[] = [];
    const log = { append: (ev: LogEvent) => (stored.push(ev), Promise.resolve()) };
    const published: Array<{ msgID: string; at: number }> = [];
    const js = {
      publish: (_s: string, _d: string, o: { msgID: string }) => {
        published.push({ msgID: o.msgID, at: clock.now() });
        return Promise.resolve({ seq: published.length, duplicate: false });
      },
    };
    const c = new Committer(state, log, { publish: () => undefined }, logger);
    const registry = new AgentRegistry(60_000);
    registry.register({ site: "s", agent: "a", slots: 2, gpus: [], runtime: "process" }, clock.now());
    const config = {
      leaseMs: 60_000,
      dispatchTimeoutMs: 60_000,
      retry: { baseMs: 400, maxMs: 400, jitter: 0 },
    } as SteeringConfig;
    const disp = new Dispatcher(
      c,
      js,
      registry,
      () => openPolicy("s", ["process"]),
      {} as Storage,
      config,
      logger,
      0,
      undefined,
      clock,
    );
    const failedAt = (d.log.at(-1) as LogEventOf<"job-finished">).at;
    disp.kick();
    await drained(c);
    assert.equal(published.length, 0, "not published during the back-off");
    clock.advance(399);
    await drained(c);
    assert.equal(published.length, 0, "not published 1 ms before the back-off ends");
    clock.advance(1);
    await drained(c);
    await disp.close();
    assert.equal(published.length, 1, "published once the back-off ended");
    assert.equal(published[0]!.msgID, `${ref.jobId}.2`);
    assert.ok(
      published[0]!.at >= failedAt + 400,
      `published ${published[0]!.at - failedAt} ms after the failure`,
    );
    assert.equal(clock.pending, 0, "no wake-up left behind");
  });
});
