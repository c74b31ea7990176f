// Reads back the logged events of one task (subject gt.log.<taskId>), in log order: what the
// Committer folds into a fresh TaskEngine when the in-memory one ran ahead of the log.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { STREAM_LOG, subjects } from "../../protocol/subjects.ts";
import { eventsOf, type LogEvent } from "../core/events.ts";

export async function readTaskLog(
  js: JetStreamClient,
  jsm: JetStreamManager,
  taskId: string,
): Promise<LogEvent[]> {
  const subject = subjects.log(taskId);
  const last = await jsm.streams.getMessage(STREAM_LOG, { last_by_subj: subject });
  if (!last) return [];
  // A string, not an array: the client then sends `filter_subject`, which nats-server 2.9 knows
  // (an array becomes `filter_subjects`, a 2.10 feature the client refuses to send to 2.9).
  const consumer = await js.consumers.get(STREAM_LOG, { filter_subjects: subject });
  const messages = await consumer.consume({ max_messages: 1000 });
  const out: LogEvent[] = [];
  try {
    for await (const m of messages) {
      // unreadable events are skipped, as the start-up replay does (EventLog.replay)
      for (const r of eventsOf(m.json())) if (r.ok) out.push(r.event);
      if (m.seq >= last.seq) break;
    }
  } finally {
    await messages.close();
  }
  return out;
}
