// Start-up's rebuild of the state from the event log, bounded by checkpoints: the finished index,
// the checkpoint in force (its snapshots), one pass over the log after it; then the checkpointer
// that writes the next ones. With checkpoints off (snapshotEvery 0) each active task is read from
// its own log subject in full, as before checkpoints existed.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/log.ts";
import { KV_STATE, STREAM_LOG } from "../../protocol/subjects.ts";
import { Checkpointer, kvPointer, loadCheckpoint, type StartPoint } from "./checkpoint.ts";
import type { Committer } from "./committer.ts";
import type { EventLog } from "./eventLog.ts";
import { readLogTail } from "./logTail.ts";
import type { Storage } from "./storage.ts";
import type { RestoreCounts, TaskArchive } from "./taskArchive.ts";
import { loggedTaskIds } from "./taskIndex.ts";

export interface Restored {
  counts: RestoreCounts;
  /** The checkpoint start-up began from (its log sequence), 0 when none. */
  fromSeq: number;
  checkpointer: Checkpointer | null;
}

export async function restoreState(o: {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  c: Committer;
  log: EventLog;
  archive: TaskArchive;
  storage: Storage;
  snapshotEvery: number;
  replicas: number;
  logger: Logger;
}): Promise<Restored> {
  const { jsm, logger } = o;
  const taskIds = await loggedTaskIds(jsm);
  const streamNow = async () => {
    const info = await jsm.streams.info(STREAM_LOG);
    return { created: info.created, lastSeq: info.state.last_seq };
  };
  if (o.snapshotEvery <= 0) {
    const counts = await o.archive.restore(taskIds);
    o.log.noteLastSeq((await streamNow()).lastSeq);
    return { counts, fromSeq: 0, checkpointer: null };
  }
  const pointer = kvPointer(await new Kvm(o.nc).create(KV_STATE, { history: 1, replicas: o.replicas }));
  let start: StartPoint | null = null;
  const counts = await o.archive.restore(taskIds, async (finished) => {
    const checkpoint = await loadCheckpoint(pointer, o.storage, await streamNow(), logger).catch(
      (e: unknown) => {
        logger.warn("could not read the checkpoint; the log is read from its first event", {
          error: String(e),
        });
        return null;
      },
    );
    const from = (checkpoint?.manifest.seq ?? 0) + 1;
    const tail = await readLogTail(o.js, jsm, from, (taskId) => finished.has(taskId));
    o.log.noteLastSeq(tail.lastSeq);
    start = { checkpoint, tail };
    return start;
  });
  const begun = start as StartPoint | null;
  if (!begun) throw new Error("start-up read no log"); // restore() always calls back
  const loaded = begun.checkpoint;
  const checkpointer = Checkpointer.resume(
    {
      c: o.c,
      log: o.log,
      stream: streamNow,
      storage: o.storage,
      pointer,
      every: o.snapshotEvery,
      logger: logger.child("checkpoint"),
    },
    begun,
  );
  // a long tail (or none yet with work in memory): the next start-up should not read it again
  if (counts.tailEvents >= o.snapshotEvery || (!loaded && o.c.state.engines.size > 0))
    void checkpointer.checkpoint();
  return { counts, fromSeq: loaded?.manifest.seq ?? 0, checkpointer };
}
