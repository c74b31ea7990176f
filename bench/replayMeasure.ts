// The measuring half of bench/replay.ts, run as its own process so that its peak RSS is the
// replay's alone (not the generator's). Two modes, each a fresh process:
//   phases   the start-up read taken apart: reading the stream back (the consumer loop of
//            readTaskLog, per task), JSON.parse, validation (eventsOf: LogBatch + LogEvent, zod),
//            folding (foldTask: TaskEngine.apply = evolve), each timed on its own;
//   service  the start-up rebuild with checkpoints off (GRIDTUNE_SNAPSHOT_EVERY=0): loggedTaskIds,
//            then TaskArchive.restore (finished index, readTaskLog and SteeringState.rebuild per task);
//   whole    one unfiltered pass over the stream (readLogTail from the first message), the events grouped by task,
//            then foldTask per task (start-up's read when no checkpoint exists yet);
//   checkpoint  start-up from the checkpoint bench/replay.ts wrote (steering/shell/startup.ts).
// Prints one JSON line.
//   node --import tsx bench/replayMeasure.ts <phases|service|whole> <natsUrl> <caFile> <seedFile>
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { steeringIdentity } from "../protocol/identity.ts";
import { createLogger } from "../protocol/log.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import { STREAM_LOG, subjects } from "../protocol/subjects.ts";
import { eventsOf, type LogEvent } from "../steering/core/events.ts";
import { foldTask, SteeringState } from "../steering/core/state.ts";
import { Committer } from "../steering/shell/committer.ts";
import { TaskArchive } from "../steering/shell/taskArchive.ts";
import { KvFinishedIndex, loggedTaskIds } from "../steering/shell/taskIndex.ts";
import { readTaskLog } from "../steering/shell/taskLog.ts";
import { readLogTail } from "../steering/shell/logTail.ts";
import { EventLog } from "../steering/shell/eventLog.ts";
import { restoreState } from "../steering/shell/startup.ts";
import { Storage } from "../steering/shell/storage.ts";
import { benchStorageConfig } from "./replayStorage.ts";

const [mode, url, caFile, seedFile] = process.argv.slice(2);
if (
  !url ||
  !caFile ||
  !seedFile ||
  (mode !== "phases" && mode !== "service" && mode !== "whole" && mode !== "checkpoint")
)
  throw new Error("usage: replayMeasure.ts <phases|service|whole|checkpoint> <natsUrl> <caFile> <seedFile>");

const logger = createLogger("bench-replay", { level: "warn" });
const nc = await connectNats({
  servers: url,
  seedFile,
  caFile,
  identity: steeringIdentity(),
  logger: () => undefined,
});
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
const ms = (t0: number) => performance.now() - t0;
const rssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

if (mode === "phases") {
  // read: the consumer loop of readTaskLog, keeping each message's bytes
  let t0 = performance.now();
  const ids = await loggedTaskIds(jsm);
  const raw = new Map<string, Uint8Array[]>();
  let messages = 0;
  for (const taskId of ids) {
    const subject = subjects.log(taskId);
    const last = await jsm.streams.getMessage(STREAM_LOG, { last_by_subj: subject });
    if (!last) continue;
    const consumer = await js.consumers.get(STREAM_LOG, { filter_subjects: subject });
    const iter = await consumer.consume({ max_messages: 1000 });
    const out: Uint8Array[] = [];
    try {
      for await (const m of iter) {
        out.push(m.data);
        if (m.seq >= last.seq) break;
      }
    } finally {
      await iter.close();
    }
    messages += out.length;
    raw.set(taskId, out);
  }
  const readMs = ms(t0);
  const rssAfterRead = rssMiB();

  // decode: JSON.parse of every message (what m.json() does)
  t0 = performance.now();
  const td = new TextDecoder();
  const parsed = new Map<string, unknown[]>();
  for (const [taskId, msgs] of raw)
    parsed.set(
      taskId,
      msgs.map((d) => JSON.parse(td.decode(d)) as unknown),
    );
  raw.clear();
  const parseMs = ms(t0);

  // validate: eventsOf (LogBatch, then LogEvent per event, zod)
  t0 = performance.now();
  const events = new Map<string, LogEvent[]>();
  let count = 0;
  let unreadable = 0;
  for (const [taskId, msgs] of parsed) {
    const out: LogEvent[] = [];
    for (const m of msgs)
      for (const r of eventsOf(m)) {
        if (r.ok) out.push(r.event);
        else unreadable++;
      }
    count += out.length;
    events.set(taskId, out);
  }
  parsed.clear();
  const validateMs = ms(t0);

  // fold: a TaskEngine per task from its events
  t0 = performance.now();
  let points = 0;
  for (const [taskId, evs] of events) {
    const e = foldTask(taskId, evs);
    if (!e) throw new Error(`task ${taskId}: no task-created`);
    points += e.points.size;
  }
  const foldMs = ms(t0);
  console.log(
    JSON.stringify({
      mode,
      tasks: ids.length,
      messages,
      events: count,
      unreadable,
      points,
      readMs,
      parseMs,
      validateMs,
      foldMs,
      rssAfterReadMiB: rssAfterRead,
      peakRssMiB: rssMiB(),
    }),
  );
} else if (mode === "whole") {
  const t0 = performance.now();
  // start-up's own read (logTail.ts) from the stream's first message: no checkpoint
  const { byTask } = await readLogTail(js, jsm, 1);
  const readMs = ms(t0);
  const state = new SteeringState();
  for (const [taskId, evs] of byTask) state.rebuild(taskId, evs);
  const totalMs = ms(t0);
  let points = 0;
  for (const e of state.engines.values()) points += e.points.size;
  console.log(
    JSON.stringify({ mode, active: state.engines.size, points, readMs, totalMs, peakRssMiB: rssMiB() }),
  );
} else if (mode === "checkpoint") {
  // the start-up path of SteeringService.start() with checkpoints (startup.ts): the checkpoint the
  // bench wrote, its snapshots from S3, one pass over the log after it
  const t0 = performance.now();
  const state = new SteeringState();
  const readTask = (taskId: string) => readTaskLog(js, jsm, taskId);
  const log = new EventLog(js, logger);
  const c = new Committer(state, log, nc, logger, readTask);
  const index = await KvFinishedIndex.open(nc, 1, logger);
  const archive = new TaskArchive(c, index, readTask, logger);
  const storage = new Storage(benchStorageConfig());
  // a huge snapshotEvery: start-up writes no checkpoint of its own while it is measured
  const r = await restoreState({
    nc,
    js,
    jsm,
    c,
    log,
    archive,
    storage,
    snapshotEvery: 1e9,
    replicas: 1,
    logger,
  });
  const totalMs = ms(t0);
  let points = 0;
  for (const e of state.engines.values()) points += e.points.size;
  storage.close();
  console.log(
    JSON.stringify({
      mode,
      ...r.counts,
      fromSeq: r.fromSeq,
      active: state.engines.size,
      points,
      totalMs,
      peakRssMiB: rssMiB(),
    }),
  );
} else {
  // exactly the start-up path of SteeringService.start() (service.ts), less the agents and API
  const t0 = performance.now();
  const state = new SteeringState();
  const readTask = (taskId: string) => readTaskLog(js, jsm, taskId);
  const log = { append: () => Promise.reject(new Error("the bench appends nothing")) };
  const c = new Committer(state, log, nc, logger, readTask);
  const index = await KvFinishedIndex.open(nc, 1, logger);
  const archive = new TaskArchive(c, index, readTask, logger);
  const { read: tasksRead } = await archive.restore(await loggedTaskIds(jsm));
  const totalMs = ms(t0);
  let points = 0;
  for (const e of state.engines.values()) points += e.points.size;
  console.log(
    JSON.stringify({ mode, tasksRead, active: state.engines.size, points, totalMs, peakRssMiB: rssMiB() }),
  );
}
await nc.close();
