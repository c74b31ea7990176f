// The finished index on JetStream: steering's KV bucket (gtstate), one key `finished.<taskId>` per
// retired task holding its summary (see taskArchive.ts for when entries are written and removed),
// and the task ids the event log holds, from its per-subject counts: together, what start-up needs
// to read only the active tasks' logs.
import type { JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/log.ts";
import { TaskSummary } from "../../protocol/api.ts";
import { KV_STATE, STREAM_LOG, subjects } from "../../protocol/subjects.ts";
import type { FinishedIndex } from "./taskArchive.ts";

const PREFIX = "finished.";
/** Entries read at once at start-up. */
const READ_AHEAD = 64;

export class KvFinishedIndex implements FinishedIndex {
  private constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, replicas: number, logger: Logger): Promise<KvFinishedIndex> {
    const kv = await new Kvm(nc).create(KV_STATE, { history: 1, replicas });
    return new KvFinishedIndex(kv, logger);
  }

  async put(summary: TaskSummary): Promise<void> {
    await this.kv.put(PREFIX + summary.taskId, JSON.stringify(summary));
  }

  async remove(taskId: string): Promise<void> {
    await this.kv.delete(PREFIX + taskId);
  }

  async all(): Promise<TaskSummary[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${PREFIX}>`)) keys.push(k);
    const out: TaskSummary[] = [];
    for (let i = 0; i < keys.length; i += READ_AHEAD) {
      const entries = await Promise.all(keys.slice(i, i + READ_AHEAD).map((k) => this.kv.get(k)));
      for (const e of entries) {
        if (!e || e.operation !== "PUT") continue;
        // An unreadable entry is dropped: its task is then read in full from the log (the truth).
        const r = TaskSummary.safeParse(safeJson(e.string()));
        if (r.success && e.key === PREFIX + r.data.taskId) out.push(r.data);
        else this.logger.error("skipping an unreadable finished-index entry", { key: e.key });
      }
    }
    return out;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** Every task id the event log holds (one subject per task), in id order. */
export async function loggedTaskIds(jsm: JetStreamManager): Promise<string[]> {
  const info = await jsm.streams.info(STREAM_LOG, { subjects_filter: subjects.logAll });
  const prefix = subjects.log("");
  return Object.keys(info.state.subjects ?? {})
    .filter((s) => s.startsWith(prefix))
    .map((s) => s.slice(prefix.length))
    .sort((a, b) => Number(a) - Number(b));
}
