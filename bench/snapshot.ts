// Task-snapshot benchmark (steering/core/task/snapshot.ts): the size of a task's snapshot document
// and the time to take it, write it as JSON, read it back and restore it, against a fold of the
// task's whole log; for the two task shapes of the replay bench (bench/replayLog.ts, real engines
// driven as the service drives them): an ASHA task (the scheduler rebuilt from its journal) and a
// random-sampler task, each of --events events.
//   node --import tsx bench/snapshot.ts [--events N]
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { LogEvent as LogEventSchema, type LogEvent } from "../steering/core/events.ts";
import { restoreTask, snapshotTask, type TaskSnapshot } from "../steering/core/task/snapshot.ts";
import { TaskSnapshotBody } from "../steering/core/task/snapshotParts.ts";
import type { TaskEngine } from "../steering/core/task/taskEngine.ts";
import { foldTask } from "../steering/core/state.ts";
import { TaskSim, type TaskShape } from "./replayLog.ts";

const { values: args } = parseArgs({ options: { events: { type: "string", default: "100000" } } });
const EVENTS = Number(args.events);
const RUNS = 5;

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

/** About `events` events of one task of `shape`, as TaskSim writes them. */
function taskLog(shape: TaskShape, events: number): LogEvent[] {
  const log: LogEvent[] = [];
  const sim = new TaskSim("7", shape, Math.ceil(events / 4), 1_000_000, (ev) => log.push(ev));
  while (log.length < events) sim.turnOnce();
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

measure("asha-stopping", taskLog("scheduler", EVENTS));
measure("random sampler, no scheduler", taskLog("sampler", EVENTS));
