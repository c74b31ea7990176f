// The event log on JetStream: append resolves on the server's acknowledgement (the event is on
// disk before steering acts on it); replay reads every event back in order after a restart.
// Group commit: the events appended while the previous flush is unacknowledged (or, when none is,
// in one turn of the event loop) go out as one message per task (a batch), so a busy steering
// pays one publish and one ack for many events: the busier it is, the larger the batches. Publish
// order on the one connection keeps each task's events in the order of their append() calls (the
// order between tasks may change within a flush; tasks are folded independently).
// No holes: a flush sends at most one batch per task, so a task's next batch goes out only once
// the previous one is stored. When a batch fails, its task's batches queued behind it are refused
// unsent (and so are its later appends) until the Committer has rebuilt the task and calls
// resume(): a later event stored without the lost one would be acted on (its `durable` resolves)
// while a rebuild or a restart knows nothing of what it depends on.
// Elections: on a cluster a batch is sent again while GTLOG has no leader (withElectionRetry, up
// to the configured bound) under the same msgID, so a first try that was stored but whose ack was
// lost with the old leader is dropped by JetStream as a duplicate: each event is in the log once.
// Fencing (standby steering, fence()): a leader's appends also expect GTLOG's last sequence; a
// refusal ("wrong last sequence", never retried) means another process appended: it deposes this
// one and every later append is refused unsent. An append while the leader lease has lapsed (no
// renewal within its TTL, as during a NATS outage) is refused too, unsent.
import { randomUUID } from "node:crypto";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { StreamPublisher } from "./ports.ts";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { GridtuneError, UnavailableError } from "../../protocol/errors.ts";
import {
  DEFAULT_ELECTION_RETRY,
  type ElectionRetry,
  realRetryTime,
  type RetryTime,
  tryTimeout,
  withElectionRetry,
} from "../../protocol/natsRetry.ts";
import { STREAM_LOG, subjects } from "../../protocol/subjects.ts";
import { type LogEvent } from "../core/events.ts";
import type { Logger } from "../../protocol/log.ts";
import { isWrongLastSequence, NotLeaderError } from "./leadership.ts";
import { ensureStream } from "./streams.ts";

/** A batch message stays well under NATS's 1 MiB max_payload. */
const MAX_BATCH_BYTES = 256 * 1024;
/** One event must fit in a message of its own (1 MiB, less room for the headers). */
export const MAX_EVENT_BYTES = 1000 * 1024;

const lapsed = () => new NotLeaderError("its leader lease lapsed: nothing is appended until it is renewed");

interface Pending {
  taskId: string;
  json: string[];
  bytes: number;
  settle: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
}

export class EventLog {
  /** Events waiting for the next flush, by task, in order. */
  private pending = new Map<string, Pending[]>();
  private flushScheduled = false;
  /** Publishes of the last flush not yet acknowledged; the next flush waits for them. */
  private unacked = 0;
  /** Tasks with a failed batch: their appends are refused until resume(). */
  private readonly failed = new Set<string>();
  /**
   * Set by fence() while this process leads: the stream's last sequence as its own acks tell it
   * (the leader is GTLOG's only writer). Every append expects it; a refusal means another process
   * appended, so this one no longer leads: every later append is refused too (never retried).
   */
  private fencing: {
    lastSeq: number;
    deposed: NotLeaderError | null;
    onFenced: (e: NotLeaderError) => void;
    /** False once the leader lease lapsed (deposition follows on the next poll). */
    holds: () => boolean;
  } | null = null;
  /** The highest sequence an append of this process was stored at (or the replay read up to). */
  private lastAck = 0;
  /** msgIDs are `<this process>.<batch number>`: unique across restarts, the same on a retry. */
  private readonly writer = randomUUID();
  private batches = 0;

  constructor(
    private readonly js: StreamPublisher,
    private readonly log: Logger,
    private readonly retry: ElectionRetry = DEFAULT_ELECTION_RETRY,
    /** Where the retries read the time and wait (a fake in tests). */
    private readonly time: RetryTime = realRetryTime,
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
    await ensureStream(jsm, config);
  }

  /** Resolves once the event is stored (with the other events of its batch). */
  append(ev: LogEvent): Promise<void> {
    const json = JSON.stringify(ev);
    // Thrown at once (not a rejection), so the Committer applies nothing: an event this large
    // could never be stored, and retrying it would rebuild its task forever.
    if (json.length > MAX_EVENT_BYTES)
      throw new GridtuneError(
        "TOO_LARGE",
        `a ${ev.type} event of ${json.length} bytes does not fit in the log (at most ${MAX_EVENT_BYTES})`,
      );
    if (this.fencing?.deposed) return Promise.reject(this.fencing.deposed);
    // A lapsed lease is not a lost one yet (nobody else may have appended), but what this process
    // decides now may not become durable: a lease tick with no heartbeat let in would log the
    // running attempts lost (the durability test's NATS restart, under load).
    if (this.fencing && !this.fencing.holds()) return Promise.reject(lapsed());
    if (this.failed.has(ev.taskId)) return Promise.reject(this.refusal(ev.taskId));
    return new Promise((resolve, reject) => {
      const batches = this.pending.get(ev.taskId) ?? [];
      let b = batches.at(-1);
      if (!b || b.bytes + json.length > MAX_BATCH_BYTES) {
        b = { taskId: ev.taskId, json: [], bytes: 0, settle: [] };
        batches.push(b);
        this.pending.set(ev.taskId, batches);
      }
      b.json.push(json);
      b.bytes += json.length + 1;
      b.settle.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Fences every later append with the stream's last sequence (`lastSeq`, read after the replay
   * at takeover): an append refused for a wrong last sequence calls onFenced once.
   */
  fence(lastSeq: number, onFenced: (e: NotLeaderError) => void, holds: () => boolean = () => true): void {
    this.fencing = { lastSeq, deposed: null, onFenced, holds };
  }

  /**
   * The log's last sequence as this process knows it: the replay's, then its own acks. With every
   * append settled it is the stream's, unless another process appended (or an ack was lost).
   */
  get lastSeq(): number {
    return this.lastAck;
  }

  /** Start-up: the sequence the replay read up to. */
  noteLastSeq(seq: number): void {
    this.lastAck = Math.max(this.lastAck, seq);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.unacked > 0 || this.pending.size === 0) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * The task's engine was rebuilt from what the log holds (see Committer.rebuild): its appends are
   * taken again. Nothing of it is pending (refused batches were dropped), so nothing goes out of
   * order.
   */
  resume(taskId: string): void {
    this.failed.delete(taskId);
  }

  private refusal(taskId: string): UnavailableError {
    return new UnavailableError(
      `an earlier event of task ${taskId} was not stored; it is rebuilt from its log before anything else is`,
    );
  }

  private flush(): void {
    this.flushScheduled = false;
    // One batch per task: the next one waits for this one's ack (see the header: no holes).
    const sent: Pending[] = [];
    for (const [taskId, batches] of this.pending) {
      sent.push(batches.shift()!);
      if (batches.length === 0) this.pending.delete(taskId);
    }
    this.unacked = sent.length;
    // every earlier publish is acknowledged, so the fence's sequence is exact: the server stores
    // this flush's publishes in the order sent, each right after the one before
    const base = this.fencing?.lastSeq;
    sent.forEach((b, i) => {
      // a lone event is written as itself, a batch as {"batch": [...]} (see LogBatch)
      const body = b.json.length === 1 ? b.json[0]! : `{"batch":[${b.json.join(",")}]}`;
      const expect = base === undefined ? {} : { expect: { lastSequence: base + i } };
      const msgID = `${this.writer}.${++this.batches}`;
      void withElectionRetry(
        `appending to the event log (${STREAM_LOG})`,
        (left) =>
          // checked before each try: a retry may come after the lease lapsed
          this.fencing && !this.fencing.holds()
            ? Promise.reject(lapsed())
            : this.js.publish(subjects.log(b.taskId), body, {
                msgID,
                timeout: tryTimeout(10_000, left),
                ...expect,
              }),
        {
          bound: this.retry,
          time: this.time,
          boundSetting: "GRIDTUNE_NATS_RETRY_MS",
          onRetry: (e, attempt) => {
            if (attempt === 1)
              this.log.warn("the event log is unavailable (a leader election?); retrying", {
                error: String(e),
              });
          },
        },
      )
        .then(
          (ack) => {
            if (this.fencing) this.fencing.lastSeq = Math.max(this.fencing.lastSeq, ack.seq);
            this.lastAck = Math.max(this.lastAck, ack.seq);
            b.settle.forEach((s) => s.resolve());
          },
          (e: unknown) => {
            const err = this.fencing && isWrongLastSequence(e) ? this.fenced(e) : e;
            b.settle.forEach((s) => s.reject(err));
            this.fail(b.taskId);
          },
        )
        .finally(() => {
          this.unacked--;
          this.scheduleFlush();
        });
    });
  }

  /** The log refused an append for its expected sequence: another process leads. */
  private fenced(cause: unknown): NotLeaderError {
    const f = this.fencing!;
    if (f.deposed) return f.deposed;
    f.deposed = new NotLeaderError("the event log refused an append: another process appended", { cause });
    this.log.warn("append refused by the log's expected last sequence: another steering process leads", {
      expectedAfter: f.lastSeq,
    });
    f.onFenced(f.deposed);
    return f.deposed;
  }

  /** A batch of the task failed: the task's batches queued behind it are refused unsent. */
  private fail(taskId: string): void {
    this.failed.add(taskId);
    const queued = this.pending.get(taskId) ?? [];
    this.pending.delete(taskId);
    const refusal = this.refusal(taskId);
    for (const b of queued) b.settle.forEach((s) => s.reject(refusal));
  }
}
