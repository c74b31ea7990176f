// One ordered pass over GTLOG from a sequence on: the tail of the log after the last checkpoint
// (snapshots.ts), grouped by task in log order. Start-up reads the tail once instead of one
// filtered consumer per task (each costs a consumer's creation: 1000 active tasks took ~100 s).
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { STREAM_LOG, subjects } from "../../protocol/subjects.ts";
import { eventsOf, type LogEvent } from "../core/events.ts";

export interface LogTail {
  /** Each task's events after `from`, in log order. */
  readonly byTask: Map<string, LogEvent[]>;
  /** The first sequence read (the checkpoint's + 1). */
  readonly from: number;
  /** The stream's last sequence when the read began: what the state is rebuilt up to. */
  readonly lastSeq: number;
  readonly messages: number;
  readonly events: number;
}

/**
 * Reads every message with sequence ≥ `from` up to the stream's last one (as of the call); the
 * events of tasks `skip` names (finished ones) are not kept.
 */
export async function readLogTail(
  js: JetStreamClient,
  jsm: JetStreamManager,
  from: number,
  skip: (taskId: string) => boolean = () => false,
): Promise<LogTail> {
  const info = await jsm.streams.info(STREAM_LOG);
  const lastSeq = info.state.last_seq;
  const byTask = new Map<string, LogEvent[]>();
  let messages = 0;
  let events = 0;
  // a stream whose early messages were removed (limits) starts later than `from`
  const start = Math.max(from, info.state.first_seq, 1);
  if (info.state.messages === 0 || lastSeq < start) return { byTask, from, lastSeq, messages, events };
  const consumer = await js.consumers.get(STREAM_LOG, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start,
  });
  const iter = await consumer.consume({ max_messages: 1000 });
  const prefix = subjects.log("");
  try {
    for await (const m of iter) {
      messages++;
      const taskId = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : null;
      if (taskId !== null && !skip(taskId)) {
        let list = byTask.get(taskId);
        if (!list) byTask.set(taskId, (list = []));
        // unreadable events are skipped, as a task's own read does (taskLog.ts)
        for (const r of eventsOf(m.json())) {
          // an event filed under another task's subject is not that task's (never written so)
          if (r.ok && r.event.taskId === taskId) {
            list.push(r.event);
            events++;
          }
        }
      }
      if (m.seq >= lastSeq) break;
    }
  } finally {
    await iter.close();
  }
  return { byTask, from, lastSeq, messages, events };
}
