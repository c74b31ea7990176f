// Checkpoints: what bounds start-up's replay. Every `snapshotEvery` stored events, in the commit
// queue with no append in flight (so the state is exactly the log's up to its last sequence S),
// each active task changed since the last checkpoint is snapshotted (core/task/snapshot.ts); the
// bodies go to S3 (state/tasks/<task>/<S>.json), then a manifest naming every active task's
// snapshot (state/checkpoints/<S>.json), then the pointer: KV gtstate key `checkpoint`, holding S,
// the stream's creation time and the manifest's sha256. The pointer is the commit point: a crash
// before it leaves the previous checkpoint in force. Start-up (taskArchive.ts) restores each
// task from its snapshot, checked against the manifest's sha256, and replays the log after S only.
// A snapshot is the state the log determines up to S, whoever computed it; a checkpoint that
// cannot be read or checked is ignored and the log is read from its first event.
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import type { Logger } from "../../protocol/log.ts";
import { snapshotTask, type TaskSnapshot } from "../core/task/snapshot.ts";
import { systemClock, type Clock } from "./clock.ts";
import type { Committer } from "./committer.ts";
import type { LogTail } from "./logTail.ts";
import { keys, type Storage } from "./storage.ts";

export const CHECKPOINT_KEY = "checkpoint";
/** A manifest or snapshot larger than this is not read back (a snapshot of a huge task is bigger: see bench). */
const MAX_BODY_BYTES = 512 * 1024 * 1024;
const UPLOADS_AT_ONCE = 8;
/** A checkpoint holds the commit queue at most 1/QUEUE_SHARE of the time (see stored()). */
const QUEUE_SHARE = 20;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Seq = z.number().int().min(0);

/** The KV pointer: the checkpoint in force. */
export const CheckpointPointer = z.object({
  version: z.literal(1),
  seq: Seq,
  /** GTLOG's creation time: a pointer to a log that was deleted and made again is not followed. */
  streamCreated: z.string().min(1),
  manifestKey: z.string().min(1),
  sha256: Sha256,
});
export type CheckpointPointer = z.infer<typeof CheckpointPointer>;

const SnapshotRef = z.object({ key: z.string().min(1), sha256: Sha256, bytes: z.number().int().min(0) });
type SnapshotRef = z.infer<typeof SnapshotRef>;

/** Every active task at `seq` and the snapshot that holds its state there. */
export const CheckpointManifest = z.object({
  version: z.literal(1),
  seq: Seq,
  tasks: z.record(z.string().regex(/^[0-9]{1,12}$/), SnapshotRef),
});
export type CheckpointManifest = z.infer<typeof CheckpointManifest>;

/** What start-up reads: the manifest in force and a reader of its snapshots. */
export interface LoadedCheckpoint {
  readonly manifest: CheckpointManifest;
  /** The task's snapshot document, checked against the manifest's sha256; null if missing or altered. */
  snapshot(taskId: string): Promise<unknown>;
}

export type CheckpointStorage = Pick<Storage, "put" | "getBytes" | "remove">;
/** Where the pointer lives (KV gtstate, key `checkpoint`; startup.ts adapts the bucket). */
export interface PointerStore {
  get(): Promise<string | null>;
  put(value: string): Promise<void>;
}

/** The pointer on a KV bucket. */
export function kvPointer(kv: Pick<KV, "get" | "put">): PointerStore {
  return {
    async get() {
      const e = await kv.get(CHECKPOINT_KEY);
      return e && e.operation === "PUT" ? e.string() : null;
    },
    async put(value) {
      await kv.put(CHECKPOINT_KEY, value);
    },
  };
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** The checkpoint in force, or null (none yet, another log's, or unreadable: logged). */
export async function loadCheckpoint(
  pointerStore: PointerStore,
  storage: CheckpointStorage,
  stream: { created: string; lastSeq: number },
  logger: Logger,
): Promise<LoadedCheckpoint | null> {
  const text = await pointerStore.get();
  if (text === null) return null;
  const ignore = (why: string) => {
    logger.warn(`the checkpoint is not used: ${why}; the log is read from its first event`);
    return null;
  };
  const p = CheckpointPointer.safeParse(parseJson(text));
  if (!p.success) return ignore("its pointer is unreadable");
  const pointer = p.data;
  if (pointer.streamCreated !== stream.created) return ignore("it belongs to an earlier event log");
  if (pointer.seq > stream.lastSeq)
    return ignore(`it is at ${pointer.seq}, past the log's end ${stream.lastSeq}`);
  const body = await storage.getBytes(pointer.manifestKey, MAX_BODY_BYTES);
  if (!body || sha256(body) !== pointer.sha256) return ignore("its manifest is missing or altered");
  const m = CheckpointManifest.safeParse(parseJson(body.toString("utf8")));
  if (!m.success || m.data.seq !== pointer.seq) return ignore("its manifest is unreadable");
  const manifest = m.data;
  return {
    manifest,
    async snapshot(taskId) {
      const ref = manifest.tasks[taskId];
      if (!ref) return null;
      const bytes = await storage.getBytes(ref.key, MAX_BODY_BYTES);
      if (!bytes || bytes.length !== ref.bytes || sha256(bytes) !== ref.sha256) return null;
      return parseJson(bytes.toString("utf8"));
    },
  };
}

export interface CheckpointerOptions {
  c: Committer;
  log: { readonly lastSeq: number };
  /** The stream's last sequence and creation time, as the server says now. */
  stream: () => Promise<{ created: string; lastSeq: number }>;
  storage: CheckpointStorage;
  pointer: PointerStore;
  every: number;
  logger: Logger;
  /** Times how long a checkpoint holds the commit queue (default: the system clock). */
  clock?: Pick<Clock, "now">;
}

/** Where start-up began: the checkpoint in force (if any) and the log after it. */
export interface StartPoint {
  readonly checkpoint: LoadedCheckpoint | null;
  readonly tail: LogTail;
}

/** What a checkpoint took in the commit queue. */
interface Taken {
  seq: number;
  created: string;
  /** The changed tasks' snapshots, serialized while the queue was held. */
  bodies: Map<string, string>;
  /** The unchanged tasks' snapshots, as the manifest in force names them. */
  kept: Record<string, SnapshotRef>;
}

export interface CheckpointResult {
  seq: number;
  written: number;
  kept: number;
  bytes: number;
}

export class Checkpointer {
  /** Tasks with an event stored since their last snapshot. */
  private readonly changed = new Set<string>();
  /** The manifest in force (loaded at start-up or written last). */
  private manifest: CheckpointManifest | null;
  private storedSince = 0;
  /** How long the last checkpoint held the commit queue, and when it let go. */
  private queueMs = 0;
  private queueFreedAt = 0;
  private readonly clock: Pick<Clock, "now">;
  private running: Promise<CheckpointResult | null> | null = null;
  private closed = false;

  constructor(
    private readonly o: CheckpointerOptions,
    manifest: CheckpointManifest | null,
  ) {
    this.manifest = manifest;
    this.clock = o.clock ?? systemClock;
  }

  /**
   * The checkpointer of a process that started from `start`: the manifest in force, and every task
   * with events after it changed (its snapshot in the manifest is older than its state now).
   */
  static resume(o: CheckpointerOptions, start: StartPoint): Checkpointer {
    const cp = new Checkpointer(o, start.checkpoint?.manifest ?? null);
    for (const [taskId, events] of start.tail.byTask) if (events.length > 0) cp.changedSince(taskId);
    return cp;
  }

  /** The task's state is not its snapshot's in the manifest (or it has none). */
  changedSince(taskId: string): void {
    this.changed.add(taskId);
  }

  /** An event of the task was stored (Committer.onDurable): a checkpoint follows every `every`. */
  stored(taskId: string): void {
    this.changed.add(taskId);
    if (this.o.every <= 0 || ++this.storedSince < this.o.every) return;
    // the commit queue waits while the snapshots are taken: at most 1/QUEUE_SHARE of the time
    // (a task of a million events takes seconds), so the tail may then run past `every`
    if (this.clock.now() - this.queueFreedAt < QUEUE_SHARE * this.queueMs) return;
    this.storedSince = 0;
    void this.checkpoint();
  }

  /** Writes a checkpoint now, unless one is being written (then that one's result). */
  checkpoint(): Promise<CheckpointResult | null> {
    if (this.closed) return Promise.resolve(null);
    this.running ??= this.write()
      .catch((e: unknown) => {
        this.o.logger.warn("could not write a checkpoint; the previous one stays in force", {
          error: String(e),
        });
        return null;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  /** Waits for a checkpoint being written; no new one starts. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }

  private async write(): Promise<CheckpointResult | null> {
    const { c } = this.o;
    // In the commit queue: nothing is decided while the snapshots are taken, and with every append
    // settled the engines are exactly the log up to its last sequence.
    const taken = await c.serial(async () => {
      const t0 = this.clock.now();
      try {
        return await this.take();
      } finally {
        this.queueFreedAt = this.clock.now();
        this.queueMs = this.queueFreedAt - t0;
      }
    });
    return taken && this.commit(taken);
  }

  /** Inside the commit queue: every changed active task's snapshot, as the string to store. */
  private async take(): Promise<Taken | null> {
    const { c } = this.o;
    await c.settled();
    if (c.divergedTasks.size > 0) return null; // a task waits for its rebuild: next time
    const stream = await this.o.stream();
    // another writer, or an ack lost with an append that was stored: not the log we know
    if (stream.lastSeq !== this.o.log.lastSeq) return null;
    const previous = this.manifest?.tasks ?? {};
    const bodies = new Map<string, string>();
    const kept: Record<string, SnapshotRef> = {};
    for (const [taskId, e] of c.state.engines) {
      const ref = previous[taskId];
      if (ref && !this.changed.has(taskId)) kept[taskId] = ref;
      else bodies.set(taskId, JSON.stringify(snapshotTask(e) satisfies TaskSnapshot));
    }
    this.changed.clear();
    return { seq: stream.lastSeq, created: stream.created, bodies, kept };
  }

  /** Outside the queue: the snapshots, the manifest, then the pointer (the commit point). */
  private async commit(taken: Taken): Promise<CheckpointResult> {
    const { logger } = this.o;
    const { seq, bodies, kept } = taken;
    const tasks: Record<string, SnapshotRef> = { ...kept };
    let bytes = 0;
    try {
      const queue = [...bodies];
      const upload = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [taskId, body] = next;
          const key = keys.taskSnapshot(taskId, seq);
          await this.o.storage.put(key, body);
          const size = Buffer.byteLength(body);
          tasks[taskId] = { key, sha256: sha256(body), bytes: size };
          bytes += size;
        }
      };
      await Promise.all(Array.from({ length: UPLOADS_AT_ONCE }, upload));
      const manifest: CheckpointManifest = { version: 1, seq, tasks };
      const manifestBody = JSON.stringify(manifest);
      const manifestKey = keys.checkpoint(seq);
      await this.o.storage.put(manifestKey, manifestBody);
      const pointer: CheckpointPointer = {
        version: 1,
        seq,
        streamCreated: taken.created,
        manifestKey,
        sha256: sha256(manifestBody),
      };
      await this.o.pointer.put(JSON.stringify(pointer));
      const old = this.manifest;
      this.manifest = manifest;
      if (old && old.seq !== seq) void this.removeUnused(old, manifest);
    } catch (e) {
      // not in force: these tasks are snapshotted again next time
      for (const taskId of bodies.keys()) this.changed.add(taskId);
      throw e;
    }
    logger.info("checkpoint written", {
      seq,
      written: bodies.size,
      kept: Object.keys(kept).length,
      bytes,
    });
    return { seq, written: bodies.size, kept: Object.keys(kept).length, bytes };
  }

  /** The previous checkpoint's objects that the new one does not name (best effort). */
  private async removeUnused(old: CheckpointManifest, now: CheckpointManifest): Promise<void> {
    const used = new Set(Object.values(now.tasks).map((r) => r.key));
    const unused = [keys.checkpoint(old.seq), ...Object.values(old.tasks).map((r) => r.key)].filter(
      (k) => !used.has(k),
    );
    for (const key of unused)
      await this.o.storage.remove(key).catch((e: unknown) => {
        this.o.logger.debug("could not remove an old snapshot", { key, error: String(e) });
      });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
