// A task engine's snapshot and its restore (steering/core/task/snapshot.ts): for real histories of
// every scheduler type, both samplers, segments, a steering program and a killed task, cut at many
// points, the engine restored from the JSON document and folded on over the rest of the log is the
// engine a full fold gives (state, views, rungs, decisions, its own snapshot), and a run that swaps
// its engine for a restored one part way makes exactly the decisions of the run that does not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LogEvent, LogEventOf } from "../../steering/core/events.ts";
import {
  restoreTask,
  snapshotTask,
  SnapshotError,
  TASK_SNAPSHOT_VERSION,
  type TaskSnapshot,
} from "../../steering/core/task/snapshot.ts";
import type { PointRec } from "../../steering/core/task/records.ts";
import { TaskEngine } from "../../steering/core/task/taskEngine.ts";
import { SegmentScheduler } from "../../steering/core/task/segmentScheduler.ts";
import { SchedulerConfig } from "../../protocol/scheduler.ts";
import {
  replayJournal,
  SchedulerJournal,
  type JournalEntry,
} from "../../steering/core/task/schedulerJournal.ts";
import type { Metrics, Scheduler } from "../../steering/scheduler/index.ts";
import { Rng } from "../../steering/core/rng.ts";
import { detail, summarize } from "../../steering/core/views.ts";
import { PLAIN, plainHistory, schedulerHistory, setEngine, type Swap } from "./fixtures/histories.ts";
import { ALL } from "./fixtures/schedulerSim.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";

const SEEDS = [1, 2, 3];

function fold(log: readonly LogEvent[], k = log.length): TaskEngine {
  const e = new TaskEngine(log[0] as LogEventOf<"task-created">);
  for (let i = 1; i < k; i++) e.apply(log[i]!);
  return e;
}

/** What the service stores and reads back: the document through JSON. */
const roundTrip = (s: TaskSnapshot): TaskSnapshot => JSON.parse(JSON.stringify(s)) as TaskSnapshot;

/** The engine restored from the snapshot after event k-1, with events k… folded on. */
function viaSnapshot(log: readonly LogEvent[], k: number): TaskEngine {
  const r = restoreTask(roundTrip(snapshotTask(fold(log, k))));
  for (let i = k; i < log.length; i++) r.apply(log[i]!);
  return r;
}

/** Where to cut: the start, the first events, after the first promotion, seeded middles, the end. */
function cuts(log: readonly LogEvent[], seed: number): number[] {
  const rng = new Rng(seed * 101);
  const promoted = log.findIndex((ev) => ev.type === "trial-suggested" && ev.suggestion.action === "promote");
  // before a suggestion: proposeTrial has a free slot to fill there
  const suggested = log.findLastIndex((ev) => ev.type === "trial-suggested");
  const ks = [1, 2, 3, Math.floor(log.length / 2), log.length - 1, log.length];
  if (suggested > 0) ks.push(suggested);
  if (promoted > 0) ks.push(promoted, promoted + 1);
  for (let i = 0; i < 4; i++) ks.push(rng.int(1, log.length));
  return [...new Set(ks)].sort((a, b) => a - b);
}

const readyAt = (p: PointRec) => (p.job.failedAt === null ? 0 : p.job.failedAt + 3);

/** Everything observable of the two engines is the same; `why` names the case in a failure. */
function assertSame(got: TaskEngine, want: TaskEngine, why: string): void {
  got.checkIndex();
  assert.deepStrictEqual(snapshotTask(got), snapshotTask(want), `${why}: the snapshot`);
  assert.deepStrictEqual(detail(got), detail(want), `${why}: detail`);
  assert.deepStrictEqual(summarize(got), summarize(want), `${why}: summary`);
  assert.deepStrictEqual(got.rungs(), want.rungs(), `${why}: rungs`);
  const ids = [...want.points.keys()];
  const decisions = (e: TaskEngine) => ({
    ready: [0, 1_000, 1e12].map((now) => e.nextReady(now, readyAt)),
    complete: e.isComplete(),
    stops: e.stopRequests(),
    budget: e.budget(),
    steeringDue: e.steeringDue(),
    owed: e.samplingOwed(),
    active: e.activeJobs(),
    inFlight: e.inFlight(),
    awaits: e.awaitsArtifacts(),
    sampling: e.proposeSampling(5_000),
    shortfall: e.requeueShortfall(ids),
    jobs: ids.map((id) => e.pointOfJob(want.points.get(id)!.job.jobId)?.pointId),
  });
  assert.deepStrictEqual(decisions(got), decisions(want), `${why}: decisions`);
  // proposeTrial mutates the scheduler: asked last, then both must refuse a snapshot until the
  // suggestion is logged, and agree again once it is
  const trial = want.proposeTrial(6_000);
  assert.deepStrictEqual(got.proposeTrial(6_000), trial, `${why}: proposeTrial`);
  if (!trial) {
    // "the scheduler waits with nothing running" (stalled) is set by proposeTrial and ends a task:
    // a snapshot taken now must keep it
    const again = restoreTask(roundTrip(snapshotTask(got)));
    assert.deepStrictEqual(snapshotTask(again), snapshotTask(want), `${why}: after a wait`);
    assert.equal(again.isComplete(), want.isComplete(), `${why}: complete after a wait`);
    return;
  }
  for (const e of [got, want])
    assert.throws(
      () => snapshotTask(e),
      (err: unknown) => err instanceof SnapshotError && err.code === "SNAPSHOT_UNAVAILABLE",
    );
  got.apply(trial);
  want.apply(trial);
  assert.deepStrictEqual(snapshotTask(got), snapshotTask(want), `${why}: after proposeTrial`);
}

function checkCuts(log: readonly LogEvent[], seed: number, name: string): void {
  const full = () => fold(log);
  for (const k of cuts(log, seed))
    assertSame(viaSnapshot(log, k), full(), `${name} seed ${seed} cut ${k}/${log.length}`);
}

/** Runs `history` twice, the second time swapping its engine for a restored copy at `at`; same logs. */
function checkLiveSwap(history: (swap?: Swap) => LogEvent[], at: number[], name: string): void {
  const want = history();
  let swapped = 0;
  const got = history((d, step) => {
    if (!at.includes(step)) return;
    setEngine(d, restoreTask(roundTrip(snapshotTask(d.engine))));
    swapped++;
  });
  assert.ok(swapped > 0, `${name}: the run was long enough to swap`);
  assert.equal(got.length, want.length, `${name}: as many events`);
  got.forEach((ev, i) =>
    assert.deepStrictEqual(ev, want[i], `${name}: event ${i} after a swap at ${at.join(", ")}`),
  );
}

void describe("task snapshot: restore then fold the rest = the full fold", () => {
  for (const [name, cfg] of ALL) {
    void it(`${name}: every cut, several seeds`, () => {
      for (const seed of SEEDS) checkCuts(schedulerHistory(cfg, seed), seed, name);
    });
  }
  for (const [name, s, opts] of PLAIN) {
    void it(`${name}: every cut, several seeds`, () => {
      for (const seed of SEEDS) checkCuts(plainHistory(s, seed, opts), seed, name);
    });
  }
});

void describe("task snapshot: a live run that restores part way decides the same", () => {
  for (const [name, cfg] of ALL) {
    void it(`${name}: the same log, event for event`, () => {
      for (const seed of [2, 5])
        checkLiveSwap((swap) => schedulerHistory(cfg, seed, swap), [0, 7, 30, 61], name);
    });
  }
  for (const [name, s, opts] of PLAIN) {
    void it(`${name}: the same log, event for event`, () => {
      for (const seed of [2, 5])
        checkLiveSwap((swap) => plainHistory(s, seed, opts, swap), [0, 5, 17, 33], name);
    });
  }
});

/** restoreTask refuses the document with a SnapshotError (never a TypeError) whose message has every part. */
function refused(doc: unknown, ...parts: Array<string | RegExp>): void {
  assert.throws(
    () => restoreTask(doc as TaskSnapshot),
    (err: unknown) => {
      assert.ok(err instanceof SnapshotError, `expected a SnapshotError, got ${String(err)}`);
      assert.equal(err.name, "SnapshotError");
      assert.equal(err.code, "SNAPSHOT_INVALID");
      for (const p of parts) assert.match(err.message, typeof p === "string" ? new RegExp(escape(p)) : p);
      return true;
    },
  );
}
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

type Doc = TaskSnapshot & { schedulers: Array<{ journal: unknown[]; trials: unknown[] }> };
const ASHA = ALL.find(([n]) => n === "asha-promotion")![1];
const ashaLog = schedulerHistory(ASHA, 1);
/** A fresh JSON document of the asha-promotion task half way. */
const ashaDoc = (): Doc => roundTrip(snapshotTask(fold(ashaLog, ashaLog.length >> 1))) as Doc;

void describe("task snapshot: state no history above reaches", () => {
  void it("an iteration logged in parts: a snapshot between parts owes the rest, as the live engine does", () => {
    const wide = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [
        `a_rather_long_hyperparameter_name_number_${i}`,
        { method: "uniform", dimension: { low: 0, high: 1 } },
      ]),
    );
    const d = new Driver(spec({ searchSpace: wide as never, maxPoints: 2000, nPointsPerIteration: 2000 }));
    const first = d.engine.proposeSampling(d.tick());
    assert.ok(first && first.more > 0, "the iteration is logged in parts");
    d.apply(first);
    const r = restoreTask(roundTrip(snapshotTask(d.engine)));
    assert.equal(r.samplingOwed(), true);
    assert.deepStrictEqual(r.proposeSampling(d.clock), d.engine.proposeSampling(d.clock));
    assertSame(r, d.engine, "between parts");
  });

  void it("a scheduler that waits with nothing running (stalled) stays so, and the task complete", () => {
    const e = fold(ashaLog, ashaLog.length - 1);
    e.schedulers![0]!.stalled = true;
    const r = restoreTask(roundTrip(snapshotTask(e)));
    assert.equal(r.schedulers![0]!.stalled, true);
    assert.equal(r.isComplete(), e.isComplete());
  });

  void it("a suggestion not logged yet: no snapshot until its event is applied", () => {
    const k = ashaLog.findIndex((ev) => ev.type === "trial-suggested");
    const e = fold(ashaLog, k);
    const s = e.proposeTrial(ashaLog[k]!.at);
    assert.deepStrictEqual(s, ashaLog[k]);
    assert.throws(
      () => snapshotTask(e),
      (err: unknown) =>
        err instanceof SnapshotError &&
        err.code === "SNAPSHOT_UNAVAILABLE" &&
        err.message.includes("segment 0 gave a suggestion that is not logged yet"),
    );
    e.apply(s);
    assertSame(restoreTask(roundTrip(snapshotTask(e))), fold(ashaLog, k + 1), "after the suggestion");
  });
});

void describe("task snapshot: a document that does not hold together is refused", () => {
  void it("a wrong or missing version, or no object at all", () => {
    refused({ ...ashaDoc(), version: TASK_SNAPSHOT_VERSION + 1 }, "version: 2 is not 1", "replay");
    const { version: _v, ...none } = ashaDoc();
    refused(none, "version: missing");
    for (const doc of [null, [], "x", 3]) refused(doc, "not an object");
    // not JSON at all: whatever restore meets is turned into a SnapshotError
    const hostile = Object.defineProperty({}, "version", {
      get: () => {
        throw new TypeError("boom");
      },
    });
    refused(hostile, "the snapshot does not hold together: TypeError: boom");
  });

  void it("a part of the wrong shape: the field is named", () => {
    refused({ ...ashaDoc(), points: "many" }, /^task snapshot: points: /);
    const doc = ashaDoc();
    (doc.points[0] as { state: string }).state = "sleeping";
    refused(doc, "points.0.state");
    const sampler = ashaDoc();
    (sampler.segments[0] as { sampler: unknown }).sampler = { type: "random", rng: "seeded" };
    refused(sampler, "segments.0.sampler: must be a built-in sampler's state");
    refused({ ...ashaDoc(), attemptsUsed: [] }, "attemptsUsed: 0 entries for the task's 1 segment(s)");
    refused({ ...ashaDoc(), schedulers: null }, "schedulers: none for a task with 1 scheduler(s)");
  });

  void it("a journal call naming a trial no suggest() gave, or a malformed call", () => {
    const doc = ashaDoc();
    const j = doc.schedulers[0]!.journal;
    const at = j.findIndex((x) => typeof x === "string");
    j[at] = "T999";
    refused(doc, `schedulers.0: journal entry ${at - 1}: "T999" is no trial suggest() gave`);
    const odd = ashaDoc();
    odd.schedulers[0]!.journal.push(99);
    refused(odd, "is not a call");
    const cut = ashaDoc();
    const report = cut.schedulers[0]!.journal.lastIndexOf(1);
    cut.schedulers[0]!.journal.splice(report + 3);
    refused(cut, "a report needs a resource and 1 metric value(s)");
  });

  void it("a journal call whose outcome differs on replay (a report marked refused that the scheduler takes)", () => {
    const doc = ashaDoc();
    const j = doc.schedulers[0]!.journal;
    const at = j.indexOf(1);
    j[at] = 5;
    refused(doc, `journal entry ${at}: the call was refused when it was made but is accepted on replay`);
  });

  void it("a point whose job id does not match, a second point with an id, a trial nobody suggested", () => {
    const doc = ashaDoc();
    doc.points[0]!.job = { ...doc.points[0]!.job, jobId: "t42-p0-j9" };
    refused(doc, "points.0 (point 0).job: job t42-p0-j9 of point 0 is not t42-p0-j");
    const twice = ashaDoc();
    twice.points.push(twice.points[0]!);
    refused(twice, "a second point with this id");
    const trial = ashaDoc();
    trial.points[1]!.trial = "T77";
    refused(trial, "points.1 (point 1).trial: T77 is no trial");
    const map = ashaDoc();
    map.schedulers[0]!.trials[0] = "T77";
    refused(map, "trials: entry 0");
    const lossless = ashaDoc();
    const reported = lossless.points.findIndex((p) => (p.reports?.length ?? 0) > 0);
    delete lossless.points[reported]!.reports![0]![1].loss;
    refused(lossless, `points.${reported} (point ${reported}).reports.0.metrics: no loss`);
    const beyond = ashaDoc();
    refused({ ...beyond, nextPointId: 1 }, "not below nextPointId 1");
  });

  void it("a steering run of a segment the task does not have", () => {
    const log = plainHistory(PLAIN.find(([n]) => n === "steering program")![1], 1);
    const doc = roundTrip(snapshotTask(fold(log)));
    assert.ok(doc.steering.length > 0);
    (doc.steering[0] as { segmentIndex: number }).segmentIndex = 3;
    refused(doc, "steering.0.segmentIndex: 3 is no segment");
  });

  void it("random damage to a document: restored, or refused with a SnapshotError, never another error", () => {
    const rng = new Rng(9);
    const junk = [null, -1, 1.5, "x", true, [], {}, 1e9];
    for (let i = 0; i < 400; i++) {
      const doc = ashaDoc() as unknown as Record<string, unknown>;
      // walk to a random place in the document and change or delete what is there
      let node: Record<string, unknown> = doc;
      for (let depth = 0; depth < 6; depth++) {
        const keys = Object.keys(node);
        const k = rng.pick(keys);
        const next = node[k];
        if (
          depth > 0 &&
          (rng.next() < 0.3 || next === null || typeof next !== "object" || keys.length === 0)
        ) {
          if (rng.next() < 0.3) delete node[k];
          else node[k] = rng.pick(junk);
          break;
        }
        if (next !== null && typeof next === "object" && Object.keys(next).length > 0)
          node = next as Record<string, unknown>;
        else break;
      }
      try {
        restoreTask(doc as unknown as TaskSnapshot).checkIndex();
      } catch (err) {
        assert.ok(err instanceof SnapshotError, `damage ${i}: ${String(err)}`);
      }
    }
  });
});

void describe("task snapshot: the document", () => {
  void it("survives JSON exactly; -0 is written as the log holds it, NaN is refused with its path", () => {
    const e = fold(ashaLog);
    const s = snapshotTask(e);
    assert.deepStrictEqual(roundTrip(s), s);
    const p = [...e.points.values()][0]!;
    p.values.x = -0;
    assert.ok(Object.is(snapshotTask(e).points[0]!.values.x, 0));
    p.reports.push({ ...p.reports[0]!, metrics: { loss: Number.NaN } });
    assert.throws(
      () => snapshotTask(e),
      (err: unknown) =>
        err instanceof SnapshotError &&
        err.code === "SNAPSHOT_UNAVAILABLE" &&
        /points\.0\.reports\.\d+\.1\.loss: NaN cannot be written as JSON/.test(err.message),
    );
  });

  void it("a journal keeps -0, NaN and ±Infinity through JSON, and replays the call with them", () => {
    const j = new SchedulerJournal(["loss", "size"]);
    j.suggest(false);
    j.report("T0", -0, { loss: Number.NaN, size: Number.NEGATIVE_INFINITY, other: 1 }, true);
    const calls: unknown[] = [];
    const fake = {
      suggest: () => ({ action: "new", trial: "T0", milestone: 1 }) as const,
      report: (trial: string, resource: number, metrics: Metrics) => {
        calls.push([trial, resource, metrics]);
        throw new Error("metrics.loss: refused");
      },
    } as unknown as Scheduler;
    const entries = JSON.parse(JSON.stringify(j.entries)) as JournalEntry[];
    assert.deepStrictEqual(replayJournal(fake, j.keys, entries), { trials: new Set(["T0"]) });
    assert.deepStrictEqual(calls, [["T0", -0, { loss: Number.NaN, size: Number.NEGATIVE_INFINITY }]]);
  });

  void it("a long journal restores (500,000 calls: no argument list that long)", () => {
    const doc = roundTrip(snapshotTask(fold(ashaLog))) as Doc;
    // at its end the scheduler answers wait, however often it is asked
    for (let i = 0; i < 500_000; i++) doc.schedulers[0]!.journal.push(0);
    const r = restoreTask(doc);
    assert.equal(snapshotTask(r).schedulers![0]!.journal.length, doc.schedulers[0]!.journal.length);
  });

  void it("shares nothing with the engine: a snapshot taken, then the engine moves on, is unchanged", () => {
    const e = fold(ashaLog, 40);
    const s = snapshotTask(e);
    const copy = structuredClone(s);
    for (let i = 40; i < ashaLog.length; i++) e.apply(ashaLog[i]!);
    assert.deepStrictEqual(s, copy);
  });

  void it("is compact: the spec once, no derived maps, smaller than the log it stands for", () => {
    const log = plainHistory(PLAIN[0]![1], 1);
    const json = JSON.stringify(snapshotTask(fold(log)));
    const exec = String(log[0]!.type === "task-created" && log[0].task.spec.evaluationExec);
    assert.equal(json.split(exec).length - 1, 1, "the spec is written once");
    assert.doesNotMatch(json, /"(jobs|index|queued|active)":\{/);
    for (const l of [log, ashaLog]) {
      const logBytes = l.reduce((n, ev) => n + JSON.stringify(ev).length, 0);
      const snapBytes = JSON.stringify(snapshotTask(fold(l))).length;
      assert.ok(snapBytes < logBytes, `snapshot ${snapBytes} B < log ${logBytes} B`);
    }
  });
});

void describe("task snapshot: the scheduler journal stays bounded", () => {
  void it("a suggest answered with wait is not journaled (a task in its end phase is asked on every pump)", () => {
    const cfg = SchedulerConfig.parse(ASHA);
    const s = new SegmentScheduler(cfg, 1, 7);
    const first = s.ask();
    assert.ok(first.action === "new" && s.confirm(first, 0));
    const before = s.save().journal.length;
    for (let i = 0; i < 1000; i++) assert.equal(s.ask().action, "wait", "its one trial runs");
    assert.equal(s.save().journal.length, before, "1000 waits added nothing");
  });
});
