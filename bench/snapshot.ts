// Task-snapshot benchmark (steering/core/task/snapshot.ts): the size of a task's snapshot document
// and the time to take it, write it as JSON, read it back and restore it, against a fold of the
// task's whole log; for a 1000-trial ASHA task (the scheduler rebuilt from its journal) and a
// task of 100,000 events (5,000 points, 16 progress reports each).
//   node --import tsx bench/snapshot.ts [--trials N] [--points N]
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { LogEvent as LogEventSchema, type LogEvent, type LogEventOf } from "../steering/core/events.ts";
import { restoreTask, snapshotTask, type TaskSnapshot } from "../steering/core/task/snapshot.ts";
import { compileTask } from "../steering/core/task/compiledTask.ts";
import { TaskSnapshotBody } from "../steering/core/task/snapshotParts.ts";
import { TaskEngine } from "../steering/core/task/taskEngine.ts";
import { foldTask } from "../steering/core/state.ts";
import { parseTaskSpec } from "../protocol/taskConfig.ts";

const { values: args } = parseArgs({
  options: { trials: { type: "string", default: "1000" }, points: { type: "string", default: "5000" } },
});
const TRIALS = Number(args.trials);
const POINTS = Number(args.points);
const REPORTS = 16;
const RUNS = 5;

const space = {
  x: { method: "uniform", dimension: { low: 0, high: 1 } },
  n: { method: "uniformint", dimension: { low: 1, high: 1000 } },
} as const;

function created(spec: ReturnType<typeof parseTaskSpec>): LogEventOf<"task-created"> {
  return { type: "task-created", taskId: "7", at: 0, user: "bench", task: compileTask(spec), seed: 1 };
}

/** Median wall time of fn over RUNS runs, in ms, and its last result. */
function time<T>(fn: () => T): { ms: number; out: T } {
  const ms: number[] = [];
  let out: T | undefined;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    out = fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { ms: ms[RUNS >> 1]!, out: out as T };
}

function fold(log: readonly LogEvent[]): TaskEngine {
  const e = foldTask("7", log);
  if (!e) throw new Error("the generated log has no task-created");
  return e;
}

/**
 * An ASHA task run to its end the way the service runs it: a free slot asks proposeTrial, each
 * running job reports every resource step, a stop request ends the job, the target finishes it.
 */
function ashaLog(): LogEvent[] {
  const spec = parseTaskSpec({
    outDS: "user.bench.snap",
    evaluationContainer: "busybox:1.36",
    evaluationExec: "python train.py",
    searchSpace: space,
    maxPoints: TRIALS,
    nParallelEvaluation: 32,
    scheduler: { type: "asha-stopping", max_t: 27, grace_period: 1, reduction_factor: 3 },
  });
  const log: LogEvent[] = [created(spec)];
  const e = new TaskEngine(log[0] as LogEventOf<"task-created">);
  let at = 0;
  const apply = (ev: LogEvent) => (log.push(ev), e.apply(ev));
  const running: Array<{ jobId: string; attempt: number; step: number }> = [];
  for (let turn = 0; turn < 10_000_000; turn++) {
    for (let s = e.proposeTrial(++at); s; s = e.proposeTrial(++at)) apply(s);
    for (let j = e.nextDispatchable(); j; j = e.nextDispatchable()) {
      const ref = { jobId: j.jobId, attempt: j.attempt };
      apply({ type: "job-dispatched", taskId: "7", at: ++at, ...ref, site: "s" });
      apply({ type: "job-claimed", taskId: "7", at: ++at, ...ref, site: "s", agent: "a" });
      running.push({ ...ref, step: 0 });
    }
    const r = running.shift();
    if (!r) break;
    const p = e.pointOfJob(r.jobId)!;
    const x = Number(p.values.x);
    const end = (status: "ok" | "stopped") =>
      apply({
        type: "job-finished",
        taskId: "7",
        at: ++at,
        jobId: r.jobId,
        attempt: r.attempt,
        site: "s",
        agent: "a",
        status,
        loss: status === "ok" ? (x - 0.5) ** 2 : null,
        metrics: {},
        resource: r.step,
        error: null,
        artifacts: [],
        missing: [],
        output: null,
        startedAt: at - 1,
        finishedAt: at,
        exitCode: 0,
        failureClass: null,
      });
    if (p.job.stop) end("stopped");
    else if (r.step >= (p.job.target ?? 0)) end("ok");
    else {
      r.step++;
      const loss = (x - 0.5) ** 2 + 1 / r.step;
      const metrics = { loss, acc: 1 - loss };
      apply({
        type: "job-progress",
        taskId: "7",
        at: ++at,
        jobId: r.jobId,
        attempt: r.attempt,
        resource: r.step,
        metrics,
      });
      running.push(r);
    }
  }
  apply({ type: "task-state", taskId: "7", at: ++at, state: "finished" });
  return log;
}

/** A task without a scheduler: POINTS points, each dispatched, claimed, REPORTS reports, finished. */
function plainLog(): LogEvent[] {
  const spec = parseTaskSpec({
    outDS: "user.bench.snap",
    evaluationContainer: "busybox:1.36",
    evaluationExec: "python train.py",
    searchSpace: space,
    maxPoints: POINTS,
    nPointsPerIteration: 1000,
    nParallelEvaluation: 1000,
  });
  const log: LogEvent[] = [created(spec)];
  const e = new TaskEngine(log[0] as LogEventOf<"task-created">);
  let at = 0;
  const apply = (ev: LogEvent) => (log.push(ev), e.apply(ev));
  for (let s = e.proposeSampling(++at); s; s = e.proposeSampling(++at)) {
    apply(s);
    const refs = s.points.map((p) => ({ jobId: e.points.get(p.pointId)!.job.jobId, attempt: 1 }));
    for (const ref of refs) {
      apply({ type: "job-dispatched", taskId: "7", at: ++at, ...ref, site: "s" });
      apply({ type: "job-claimed", taskId: "7", at: ++at, ...ref, site: "s", agent: "a" });
    }
    for (let k = 1; k <= REPORTS; k++)
      for (const ref of refs) {
        const metrics = { loss: 1 / k + ref.jobId.length / 100, acc: 1 - 1 / k };
        apply({ type: "job-progress", taskId: "7", at: ++at, ...ref, resource: k, metrics });
      }
    for (const ref of refs)
      apply({
        type: "job-finished",
        taskId: "7",
        at: ++at,
        ...ref,
        site: "s",
        agent: "a",
        status: "ok",
        loss: 0.5,
        metrics: { loss: 0.5 },
        resource: REPORTS,
        error: null,
        artifacts: [],
        missing: [],
        output: null,
        startedAt: at - 1,
        finishedAt: at,
        exitCode: 0,
        failureClass: null,
      });
  }
  apply({ type: "task-state", taskId: "7", at: ++at, state: "finished" });
  return log;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Heap held by one engine of a whole fold, and by its scheduler journals (MiB; the mean of 4). */
function heap(log: readonly LogEvent[]): { engine: number; journal: number } {
  const mib = () => (gc(), process.memoryUsage().heapUsed / 2 ** 20);
  const before = mib();
  const engines = [1, 2, 3, 4].map(() => fold(log));
  const withJournal = mib();
  // the journal is private to SegmentScheduler: emptied here only to weigh it
  for (const e of engines)
    for (const s of e.schedulers ?? [])
      (s as unknown as { journal: { entries: unknown[] } }).journal.entries.length = 0;
  const without = mib();
  return {
    engine: (withJournal - before) / engines.length,
    journal: (withJournal - without) / engines.length,
  };
}

function measure(name: string, log: LogEvent[]): void {
  const held = heap(log);
  const logBytes = log.reduce((n, ev) => n + JSON.stringify(ev).length, 0);
  const full = time(() => fold(log));
  // what start-up does with a log it reads: parse and check each event, then fold
  const lines = log.map((ev) => JSON.stringify(ev));
  const read = time(() => fold(lines.map((l) => LogEventSchema.parse(JSON.parse(l)))));
  const snap = time(() => snapshotTask(full.out));
  const text = time(() => JSON.stringify(snap.out));
  const parsed = time(() => JSON.parse(text.out) as TaskSnapshot);
  const checked = time(() => TaskSnapshotBody.safeParse(parsed.out).success);
  const restored = time(() => restoreTask(parsed.out));
  const journal = JSON.stringify(snap.out.schedulers?.map((s) => s.journal) ?? []).length;
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(`${name}: ${log.length} events, ${full.out.points.size} points`);
  console.log(`  log (JSON of its events)        ${(logBytes / 1024).toFixed(0)} KiB`);
  console.log(
    `  snapshot document               ${(text.out.length / 1024).toFixed(0)} KiB (scheduler journal ${(journal / 1024).toFixed(1)} KiB)`,
  );
  console.log(
    `  engine heap                     ${held.engine.toFixed(1)} MiB (scheduler journal ${held.journal.toFixed(2)} MiB)`,
  );
  console.log(`  fold of the whole log           ${f(full.ms)}`);
  console.log(`  JSON.parse + check + fold       ${f(read.ms)}`);
  console.log(`  snapshotTask                    ${f(snap.ms)}`);
  console.log(`  JSON.stringify                  ${f(text.ms)}`);
  console.log(`  JSON.parse                      ${f(parsed.ms)}`);
  console.log(
    `  restoreTask (check + rebuild)   ${f(restored.ms)} (the schema check alone ${f(checked.ms)})`,
  );
}

measure(`asha-stopping, ${TRIALS} trials`, ashaLog());
measure(`no scheduler, ${POINTS} points × ${REPORTS} reports`, plainLog());
