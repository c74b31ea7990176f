// Finished tasks leave steering's memory, so that memory and start-up are bounded by active work,
// not by history. A task is retired once it is killed or finished with no attempt left in flight
// and its last event is stored: its summary goes to the finished index (KV, see taskIndex.ts), and
// only then does its engine leave memory (the summary stays, for `list`). `show`, `download` and
// `retry` load a retired task from its own log subject on demand, through a small cache.
//
// Durability: the log stays the one source of truth and the index is a cache of it, written only
// after the log holds everything the summary says. Its rules:
//   - an entry is put only after the task's last event is stored (a crash between the two leaves
//     a task with no entry, which the start-up reads in full and retires again);
//   - a retired task gets no events (no attempt in flight, nothing to sample, reports of its jobs
//     are refused as unknown) except through `retry`, which removes the entry *before* logging the
//     requeue (a crash between the two leaves a task with no entry: read in full, still finished,
//     retired again).
// So at start-up an entry always matches its task's log, and every other task is read in full.
import type { Logger } from "../../protocol/log.ts";
import type { TaskSummary } from "../../protocol/api.ts";
import type { Committer, TaskLogReader } from "./committer.ts";
import { foldTask } from "../core/state.ts";
import { restoreTask, type TaskSnapshot } from "../core/task/snapshot.ts";
import type { StartPoint } from "./checkpoint.ts";
import type { TaskEngine } from "../core/task/taskEngine.ts";
import { summarize } from "../core/views.ts";

/** How start-up rebuilt each active task: read in full, from a snapshot (+ tail), from the tail alone. */
export interface RestoreCounts {
  read: number;
  snapshots: number;
  tail: number;
  /** Events read in the one pass after the checkpoint. */
  tailEvents: number;
}

/** The finished index: one summary per retired task. */
export interface FinishedIndex {
  put(summary: TaskSummary): Promise<void>;
  remove(taskId: string): Promise<void>;
  all(): Promise<TaskSummary[]>;
}

/** Snapshots fetched at once at start-up, ahead of the task being restored. */
const SNAPSHOTS_AHEAD = 16;

/** Retired tasks loaded for `show`/`download`, kept this many at most (most recently used). */
export const LOADED_TASKS_CACHED = 8;

/** A task that no event can change any more (until a retry): it may leave memory. */
export function retirable(e: TaskEngine): boolean {
  // an artifact still awaited (its upload after an S3 outage) must find its task in memory
  return (
    (e.state === "killed" || e.state === "finished") && e.activeJobs().length === 0 && !e.awaitsArtifacts()
  );
}

export class TaskArchive {
  private readonly cache = new Map<string, TaskEngine>();
  /** Retirements queued and not yet run. */
  private readonly queued = new Set<string>();
  /** Told of each retired task (the dispatcher drops its caches of it). */
  onRetired: ((taskId: string) => void) | null = null;

  constructor(
    private readonly c: Committer,
    private readonly index: FinishedIndex,
    private readonly readTask: TaskLogReader,
    private readonly logger: Logger,
    private readonly cacheSize = LOADED_TASKS_CACHED,
  ) {}

  /**
   * Start-up: the index's summaries, then every other task (the active ones, and any whose
   * retirement a crash interrupted, which are retired again). `taskIds` lists every task the log
   * holds. Without `begin`, each is read from its log in full. With it, told the finished tasks
   * (whose events it need not keep), it gives the checkpoint and the log after it (checkpoint.ts,
   * logTail.ts): a task the
   * checkpoint holds is restored from its snapshot and the tail's events after it; a task created
   * after the checkpoint is folded from the tail alone; any other (no snapshot, or one that is
   * missing, altered or refused) is read from its log in full.
   */
  async restore(
    taskIds: readonly string[],
    begin?: (finished: ReadonlySet<string>) => Promise<StartPoint>,
  ): Promise<RestoreCounts> {
    const state = this.c.state;
    const logged = new Set(taskIds);
    // An entry whose task the log does not hold (a log reset by hand) would list a ghost.
    for (const s of await this.index.all()) if (logged.has(s.taskId)) state.retire(s);
    const start = begin ? await begin(new Set(state.finished.keys())) : undefined;
    const counts: RestoreCounts = { read: 0, snapshots: 0, tail: 0, tailEvents: start?.tail.events ?? 0 };
    // the snapshots are fetched SNAPSHOTS_AHEAD at a time, ahead of the fold (one GET each)
    const wanted = start?.checkpoint
      ? taskIds.filter((id) => !state.finished.has(id) && start.checkpoint?.manifest.tasks[id])
      : [];
    const fetches = new Map<string, Promise<unknown>>();
    let next = 0;
    const fetchAhead = () => {
      while (next < wanted.length && fetches.size < SNAPSHOTS_AHEAD) {
        const id = wanted[next++]!;
        const p = start!.checkpoint!.snapshot(id);
        p.catch(() => undefined); // awaited (and its error reported) when its task's turn comes
        fetches.set(id, p);
      }
    };
    for (const taskId of taskIds) {
      state.noteTaskId(taskId);
      if (state.finished.has(taskId)) continue;
      fetchAhead();
      const fetched = fetches.get(taskId);
      fetches.delete(taskId);
      const restored = start ? await this.fromStart(taskId, start, fetched) : null;
      if (restored) {
        state.engines.set(taskId, restored.engine);
        counts[restored.from]++;
        continue;
      }
      const e = state.rebuild(taskId, await this.readTask(taskId));
      counts.read++;
      if (!e) this.logger.error("a task's log has no task-created; it is skipped", { taskId });
    }
    await this.sweep();
    return counts;
  }

  private async fromStart(
    taskId: string,
    start: StartPoint,
    fetched: Promise<unknown> | undefined,
  ): Promise<{ engine: TaskEngine; from: "snapshots" | "tail" } | null> {
    const tail = start.tail.byTask.get(taskId) ?? [];
    const cp = start.checkpoint;
    if (cp?.manifest.tasks[taskId]) {
      try {
        const doc = await (fetched ?? cp.snapshot(taskId));
        if (doc === null) throw new Error("its snapshot is missing or does not match the manifest's sha256");
        const engine = restoreTask(doc as TaskSnapshot);
        if (engine.taskId !== taskId) throw new Error(`the snapshot is of task ${engine.taskId}`);
        for (const ev of tail) engine.apply(ev);
        return { engine, from: "snapshots" };
      } catch (e) {
        this.logger.warn("a task's snapshot is not used; its log is read in full", {
          taskId,
          error: String(e),
        });
        return null;
      }
    }
    if (tail[0]?.type !== "task-created") return null;
    const engine = foldTask(taskId, tail);
    return engine ? { engine, from: "tail" } : null;
  }

  /** Queues the task's retirement if it is retirable (the Committer calls this per stored event). */
  maybeRetire(e: TaskEngine): void {
    if (!retirable(e) || this.queued.has(e.taskId)) return;
    this.queued.add(e.taskId);
    void this.c
      .serial(() => this.retireNow(e.taskId))
      .finally(() => this.queued.delete(e.taskId))
      .catch(() => undefined);
  }

  /** Retires every retirable task in memory (after start-up, and now and then for failed puts). */
  sweep(): Promise<void> {
    return this.c.serial(async () => {
      for (const taskId of [...this.c.state.engines.keys()]) await this.retireNow(taskId);
    });
  }

  /** Inside serial(): the checks again (an event may have come since), then index, then memory. */
  private async retireNow(taskId: string): Promise<void> {
    const e = this.c.state.engines.get(taskId);
    if (!e || !retirable(e) || this.c.isDiverged(taskId) || this.c.hasInflight(taskId)) return;
    const summary = summarize(e);
    try {
      await this.index.put(summary);
    } catch (err) {
      this.logger.warn("could not index a finished task; it stays in memory for now", {
        taskId,
        error: String(err),
      });
      return;
    }
    this.c.state.retire(summary);
    this.onRetired?.(taskId);
  }

  /** A retired task, folded from its log (cached: a retired task's log does not change). */
  async load(taskId: string): Promise<TaskEngine> {
    const hit = this.cache.get(taskId);
    if (hit) {
      this.cache.delete(taskId);
      this.cache.set(taskId, hit);
      return hit;
    }
    const e = foldTask(taskId, await this.readTask(taskId));
    if (!e) throw new Error(`the log of task ${taskId} has no task-created`);
    this.cache.set(taskId, e);
    for (const old of this.cache.keys()) {
      if (this.cache.size <= this.cacheSize) break;
      this.cache.delete(old);
    }
    return e;
  }

  /**
   * Inside serial(): a retired task comes back to memory (retry), its index entry removed first,
   * so that nothing is logged for it while the index still says it is finished. `e` is a fresh
   * fold of its log (not the cached one, which `show` may hold).
   */
  async reactivate(e: TaskEngine): Promise<void> {
    await this.index.remove(e.taskId);
    this.cache.delete(e.taskId);
    this.c.state.finished.delete(e.taskId);
    this.c.state.engines.set(e.taskId, e);
  }

  /** A fresh fold of a retired task's log (for retry, which may change it). */
  async fresh(taskId: string): Promise<TaskEngine> {
    const e = foldTask(taskId, await this.readTask(taskId));
    if (!e) throw new Error(`the log of task ${taskId} has no task-created`);
    return e;
  }
}

/** An index in memory (tests, and the replay tool). */
export class MemoryFinishedIndex implements FinishedIndex {
  readonly entries = new Map<string, TaskSummary>();
  put(summary: TaskSummary): Promise<void> {
    this.entries.set(summary.taskId, summary);
    return Promise.resolve();
  }
  remove(taskId: string): Promise<void> {
    this.entries.delete(taskId);
    return Promise.resolve();
  }
  all(): Promise<TaskSummary[]> {
    return Promise.resolve([...this.entries.values()]);
  }
}
