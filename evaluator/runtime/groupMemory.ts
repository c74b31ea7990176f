// Memory limits of the process runtime: the summed RSS of each watched process group, sampled
// from /proc. One scan of /proc per tick serves every running evaluation (a scan per evaluation
// would read every process's stat file once per slot and tick: thousands of reads a second on a
// busy node with many slots). A tick scans only if a watched group is at least one poll interval
// old: a group younger than that was not due a sample yet, and short evaluations (a few ms)
// churn through the slots without a scan. The scan is synchronous: /proc files are generated in
// the kernel without I/O, and one async read per process cost more in thread-pool hand-offs than
// the reads themselves (a scan of a few hundred processes takes a few ms).
import { closeSync, openSync, readSync, readdirSync } from "node:fs";

/** Linux page size, for /proc/PID/stat's RSS in pages (4 KiB on the x86_64/arm64 hosts we run on). */
const PAGE_BYTES = 4096;

interface Watch {
  limit: number;
  onBreach: () => void;
  since: number;
}

export class GroupMemoryWatch {
  private readonly watches = new Map<number, Watch>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pollMs: number) {}

  /** Calls onBreach once when group pgid's RSS exceeds limit bytes; stop() ends the watch. */
  watch(pgid: number, limit: number, onBreach: () => void): { stop(): void } {
    const w: Watch = { limit, onBreach, since: Date.now() };
    this.watches.set(pgid, w);
    this.timer ??= setInterval(() => void this.tick(), this.pollMs);
    return {
      stop: () => {
        if (this.watches.get(pgid) === w) this.watches.delete(pgid);
        if (this.watches.size === 0 && this.timer) {
          clearInterval(this.timer);
          this.timer = null;
        }
      },
    };
  }

  private tick(): void {
    const due = Date.now() - this.pollMs;
    const pgids = new Set<number>();
    for (const [pgid, w] of this.watches) if (w.since <= due) pgids.add(pgid);
    if (pgids.size === 0) return;
    let rss: Map<number, number>;
    try {
      rss = groupsRss(pgids);
    } catch {
      return; // /proc unreadable this tick: try again on the next
    }
    for (const [pgid, bytes] of rss) {
      const w = this.watches.get(pgid);
      if (w && bytes > w.limit) {
        this.watches.delete(pgid);
        w.onBreach();
      }
    }
  }
}

const statBuffer = Buffer.alloc(4096);

/** /proc/PID/stat, or null if the process ended meanwhile. */
function readProcStat(pid: string): string | null {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, "r");
  } catch {
    return null;
  }
  try {
    const n = readSync(fd, statBuffer, 0, statBuffer.length, 0);
    return statBuffer.toString("latin1", 0, n);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Summed resident set sizes (bytes) of the processes of each group in pgids, from one /proc scan. */
export function groupsRss(pgids: ReadonlySet<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(name);
    if (stat === null) continue;
    // Fields after the command name (which may contain spaces and parentheses).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgid = Number(fields[2]);
    if (!pgids.has(pgid)) continue;
    out.set(pgid, (out.get(pgid) ?? 0) + Number(fields[21] ?? 0) * PAGE_BYTES);
  }
  return out;
}
