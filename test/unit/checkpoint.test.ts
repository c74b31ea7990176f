// Checkpoints bound start-up's replay (steering/shell/checkpoint.ts, startup.ts): the snapshots of
// the active tasks at log sequence S, a manifest, a pointer written last; start-up restores each
// task from its snapshot and folds only the log after S. These tests run the checkpointer and the
// archive's restore on an in-memory log, store and pointer: the restored state equals a full
// replay's, and a checkpoint that is torn, altered, of another log or not yet committed is never
// trusted (an altered snapshot: its task is read from its own log; a bad pointer: the whole log).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { detail } from "../../steering/core/views.ts";
import {
  Checkpointer,
  loadCheckpoint,
  type CheckpointStorage,
  type PointerStore,
  type StartPoint,
} from "../../steering/shell/checkpoint.ts";
import type { LogTail } from "../../steering/shell/logTail.ts";
import { apiKit, createTask, record, runTask, type ApiKit } from "./fixtures/apiKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";
import { STEERING_ENV, startupOver } from "./fixtures/startupKit.ts";

const logger = createLogger("test", { level: "error" });
const CREATED = "2026-12-06T00:00:00Z";

class MemoryStore implements CheckpointStorage {
  readonly objects = new Map<string, Buffer>();
  failPuts = false;
  put(key: string, body: Buffer | string): Promise<void> {
    if (this.failPuts) return Promise.reject(new Error("S3 is down"));
    this.objects.set(key, Buffer.from(body));
    return Promise.resolve();
  }
  getBytes(key: string): Promise<Buffer | null> {
    return Promise.resolve(this.objects.get(key) ?? null);
  }
  remove(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }
}

class MemoryPointer implements PointerStore {
  value: string | null = null;
  get(): Promise<string | null> {
    return Promise.resolve(this.value);
  }
  put(value: string): Promise<void> {
    this.value = value;
    return Promise.resolve();
  }
}

/** A checkpointer over the kit's state and log (each stored event is one message: seq = index + 1). */
function checkpointer(kit: ApiKit, store: MemoryStore, pointer: MemoryPointer, every = 0) {
  const cp = new Checkpointer(
    {
      c: kit.c,
      log: {
        get lastSeq() {
          return kit.log.stored.length;
        },
      },
      stream: () => Promise.resolve({ created: CREATED, lastSeq: kit.log.stored.length }),
      storage: store,
      pointer,
      every,
      logger,
    },
    null,
  );
  for (const id of kit.state.engines.keys()) cp.changedSince(id);
  return cp;
}

/** Steering's start-up over `log`: the checkpoint in force (if any), then the events after it. */
async function restart(log: readonly LogEvent[], store: MemoryStore, pointer: MemoryPointer) {
  const { state, reads, c, archive, ids } = startupOver(log);
  let begun: StartPoint | null = null;
  const counts = await archive.restore(ids, async () => {
    const checkpoint = await loadCheckpoint(
      pointer,
      store,
      { created: CREATED, lastSeq: log.length },
      logger,
    );
    const from = (checkpoint?.manifest.seq ?? 0) + 1;
    const byTask = new Map<string, LogEvent[]>();
    for (const ev of log.slice(from - 1)) byTask.set(ev.taskId, [...(byTask.get(ev.taskId) ?? []), ev]);
    const tail: LogTail = {
      byTask,
      from,
      lastSeq: log.length,
      messages: log.length - from + 1,
      events: log.length - from + 1,
    };
    begun = { checkpoint, tail };
    return begun;
  });
  return { state, reads, counts, c, start: begun as unknown as StartPoint };
}

/** Three tasks part-way through, a checkpoint, then more events of two of them and a new task. */
async function scenario(store = new MemoryStore(), pointer = new MemoryPointer()) {
  const kit = apiKit();
  const opts = { maxPoints: 6, nPointsPerIteration: 3, nParallelEvaluation: 1 };
  const a = createTask(kit, "1", "alice", opts);
  const b = createTask(kit, "2", "bob", opts);
  createTask(kit, "3", "alice", opts);
  record(kit, a.proposeSampling(2)!, b.proposeSampling(2)!);
  const cp = checkpointer(kit, store, pointer);
  const written = await cp.checkpoint();
  const atCheckpoint = kit.log.stored.length;
  // after the checkpoint: task 1 runs to its end, task 4 is created, task 2 gets nothing more
  runTask(kit, a);
  createTask(kit, "4", "bob", opts);
  return { kit, cp, written, atCheckpoint, store, pointer };
}

const views = (state: SteeringState) =>
  new Map([...state.engines].map(([id, e]) => [id, { detail: detail(e), rungs: e.rungs() }]));

void describe("checkpoints: start-up from snapshots and the log after them", () => {
  void it("restores each task from its snapshot plus the tail; the state equals a full replay's", async () => {
    const { kit, written, atCheckpoint, store, pointer } = await scenario();
    assert.deepEqual(written && { seq: written.seq, written: written.written }, {
      seq: atCheckpoint,
      written: 3,
    });
    const { state, reads, counts } = await restart(kit.log.stored, store, pointer);
    assert.deepEqual(reads, [], "no task read in full");
    assert.deepEqual(
      { ...counts },
      { read: 0, snapshots: 3, tail: 1, tailEvents: kit.log.stored.length - atCheckpoint },
    );
    assert.deepEqual(views(state), views(kit.state));
    const full = await restart(kit.log.stored, new MemoryStore(), new MemoryPointer());
    assert.deepEqual(views(state), views(full.state));
  });

  void it("a second checkpoint rewrites only the tasks that changed and removes what it no longer names", async () => {
    const { kit, cp, written, store, pointer } = await scenario();
    for (const id of ["1", "4"]) cp.changedSince(id);
    const second = await cp.checkpoint();
    assert.ok(written && second);
    assert.equal(second.written, 2, "tasks 1 and 4");
    assert.equal(second.kept, 2, "tasks 2 and 3 keep their snapshots");
    const keys = [...store.objects.keys()].sort();
    assert.deepEqual(keys, [
      `state/checkpoints/${second.seq}.json`,
      `state/tasks/1/${second.seq}.json`,
      `state/tasks/2/${written.seq}.json`,
      `state/tasks/3/${written.seq}.json`,
      `state/tasks/4/${second.seq}.json`,
    ]);
    const { state, counts } = await restart(kit.log.stored, store, pointer);
    assert.equal(counts.tailEvents, 0);
    assert.deepEqual(views(state), views(kit.state));
  });

  void it("an altered snapshot is not trusted: that task is read from its log in full", async () => {
    const { kit, written, store, pointer } = await scenario();
    const key = `state/tasks/2/${written!.seq}.json`;
    const doc = JSON.parse(store.objects.get(key)!.toString()) as Record<string, unknown>;
    // an attacker (or a torn write) changes the document: same length would not help, the sha256 differs
    store.objects.set(key, Buffer.from(JSON.stringify({ ...doc, nextPointId: 99 })));
    const { state, reads, counts } = await restart(kit.log.stored, store, pointer);
    assert.deepEqual(reads, ["2"]);
    assert.equal(counts.snapshots, 2);
    assert.deepEqual(views(state), views(kit.state));
  });

  void it("a pointer to another log, past the log's end, or to an altered manifest is ignored: the log is read from its start", async () => {
    const { kit, store, pointer } = await scenario();
    const good = pointer.value!;
    const bad = [
      JSON.stringify({ ...JSON.parse(good), streamCreated: "2025-01-01T00:00:00Z" }),
      JSON.stringify({ ...JSON.parse(good), seq: kit.log.stored.length + 5 }),
      JSON.stringify({ ...JSON.parse(good), sha256: "0".repeat(64) }),
      "not json",
    ];
    for (const value of bad) {
      pointer.value = value;
      const { state, counts } = await restart(kit.log.stored, store, pointer);
      // no checkpoint: the one pass starts at the log's first event, every task folded from it
      assert.deepEqual(
        { ...counts },
        { read: 0, snapshots: 0, tail: 4, tailEvents: kit.log.stored.length },
        `pointer ${value.slice(0, 60)}`,
      );
      assert.deepEqual(views(state), views(kit.state));
    }
  });

  void it("a checkpoint whose snapshots could not all be stored writes no pointer; the tasks are snapshotted next time", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    const store = new MemoryStore();
    const pointer = new MemoryPointer();
    const cp = checkpointer(kit, store, pointer);
    store.failPuts = true;
    assert.equal(await cp.checkpoint(), null);
    assert.equal(pointer.value, null, "the previous checkpoint (none) stays in force");
    store.failPuts = false;
    const next = await cp.checkpoint();
    assert.equal(next?.written, 1);
    assert.notEqual(pointer.value, null);
  });

  void it("no checkpoint while the log holds more than this process stored (another writer, a lost ack)", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    const store = new MemoryStore();
    const pointer = new MemoryPointer();
    const cp = new Checkpointer(
      {
        c: kit.c,
        log: { lastSeq: kit.log.stored.length },
        stream: () => Promise.resolve({ created: CREATED, lastSeq: kit.log.stored.length + 1 }),
        storage: store,
        pointer,
        every: 0,
        logger,
      },
      null,
    );
    cp.changedSince("1");
    assert.equal(await cp.checkpoint(), null);
    assert.equal(store.objects.size, 0);
    assert.equal(pointer.value, null);
  });

  void it("a checkpoint follows every `every` stored events", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    const store = new MemoryStore();
    const pointer = new MemoryPointer();
    const cp = checkpointer(kit, store, pointer, 3);
    cp.stored("1");
    cp.stored("1");
    await kit.c.serial(() => Promise.resolve());
    assert.equal(pointer.value, null, "2 of 3");
    cp.stored("1");
    await cp.close();
    assert.notEqual(pointer.value, null, "the third stored event wrote one");
  });

  void it("a process started from a checkpoint snapshots again the tasks it folded log events into", async () => {
    const { kit, store, pointer } = await scenario();
    // the restarted process writes the next checkpoint before any new event: task 1 (events
    // after the first checkpoint) must not keep its old snapshot, task 4 gets its first
    const first = await restart(kit.log.stored, store, pointer);
    const cp = Checkpointer.resume(
      {
        c: first.c,
        log: { lastSeq: kit.log.stored.length },
        stream: () => Promise.resolve({ created: CREATED, lastSeq: kit.log.stored.length }),
        storage: store,
        pointer,
        every: 0,
        logger,
      },
      first.start,
    );
    const r = await cp.checkpoint();
    assert.deepEqual(r && { written: r.written, kept: r.kept }, { written: 2, kept: 2 });
    const second = await restart(kit.log.stored, store, pointer);
    assert.equal(second.counts.tailEvents, 0);
    assert.deepEqual(views(second.state), views(kit.state));
  });
});

void describe("checkpoints hold the commit queue a bounded share of the time", () => {
  void it("after a checkpoint that held the queue 1 s, the next waits 20 s even past `every` events", async () => {
    const kit = apiKit();
    createTask(kit, "1", "alice");
    const clock = new FakeClock(1_000_000);
    const pointer = new MemoryPointer();
    const cp = new Checkpointer(
      {
        c: kit.c,
        log: { lastSeq: kit.log.stored.length },
        // taking the snapshots "takes" a second: the fake clock moves while the queue is held
        stream: () => {
          clock.advance(1_000);
          return Promise.resolve({ created: CREATED, lastSeq: kit.log.stored.length });
        },
        storage: new MemoryStore(),
        pointer,
        every: 2,
        logger,
        clock,
      },
      null,
    );
    let count = 0;
    const stored = async (n: number) => {
      for (let i = 0; i < n; i++) cp.stored("1");
      await kit.c.serial(() => Promise.resolve());
      await new Promise((r) => setImmediate(r));
    };
    const orig = pointer.put.bind(pointer);
    pointer.put = (v: string) => (count++, orig(v));
    await stored(2);
    assert.equal(count, 1, "the first at 2 events");
    await stored(10);
    assert.equal(count, 1, "10 more events within 20 s of it: none");
    clock.advance(19_000);
    await stored(1);
    assert.equal(count, 1, "19 s after: still none");
    clock.advance(1_000);
    await stored(1);
    assert.equal(count, 2, "20 s after: the next");
  });
});

void describe("the checkpoint interval setting", () => {
  const env = STEERING_ENV;
  void it("defaults to 50,000 events; the flag beats GRIDTUNE_SNAPSHOT_EVERY; 0 turns checkpoints off", () => {
    assert.equal(compileSteeringConfig({}, env).snapshotEvery, 50_000);
    assert.equal(compileSteeringConfig({}, { ...env, GRIDTUNE_SNAPSHOT_EVERY: "0" }).snapshotEvery, 0);
    assert.equal(
      compileSteeringConfig({ snapshotEvery: "1000" }, { ...env, GRIDTUNE_SNAPSHOT_EVERY: "0" })
        .snapshotEvery,
      1000,
    );
  });
  void it("a negative or non-integer interval is refused, naming the field", () => {
    for (const bad of ["-1", "1.5", "often"])
      assert.throws(
        () => compileSteeringConfig({}, { ...env, GRIDTUNE_SNAPSHOT_EVERY: bad }),
        (e: unknown) => e instanceof ValidationError && /snapshotEvery/.test(e.message),
      );
  });
});
