// The event log on JetStream: append waits for the server's acknowledgement (the event is on
// disk before steering acts on it); replay reads every event back in order after a restart.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { STREAM_LOG, subjects } from "../protocol/subjects.ts";
import { LogEvent } from "./events.ts";
import type { Logger } from "../protocol/log.ts";

export class EventLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly log: Logger,
  ) {}

  static async ensureStream(jsm: JetStreamManager, replicas: number): Promise<void> {
    const config = {
      name: STREAM_LOG,
      subjects: [subjects.logAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      max_msg_size: 8 * 1024 * 1024,
    };
    try {
      await jsm.streams.info(STREAM_LOG);
    } catch {
      await jsm.streams.add(config);
    }
  }

  async append(ev: LogEvent): Promise<void> {
    await this.js.publish(subjects.log(ev.taskId), JSON.stringify(ev), { timeout: 10_000 });
  }

  /** Every event in log order. Unparseable events are reported and skipped, never fatal. */
  async *replay(jsm: JetStreamManager): AsyncGenerator<LogEvent> {
    const info = await jsm.streams.info(STREAM_LOG);
    const last = info.state.last_seq;
    if (info.state.messages === 0) return;
    const consumer = await this.js.consumers.get(STREAM_LOG);
    const messages = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const m of messages) {
        const r = LogEvent.safeParse(m.json());
        if (r.success) yield r.data;
        else
          this.log.error("skipping an unreadable log event", {
            seq: m.seq,
            issue: r.error.issues[0]?.message,
          });
        if (m.seq >= last) break;
      }
    } finally {
      await messages.close();
    }
  }
}
