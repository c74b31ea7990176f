// Memory limits of the process runtime: the summed RSS of each watched process group, sampled
// from /proc. One scan of /proc per tick serves every running evaluation (a scan per evaluation
// would read every process's stat file once per slot and tick: thousands of reads a second on a
// busy node with many slots).
import { readdir, readFile } from "node:fs/promises";

/** Linux page size, for /proc/PID/stat's RSS in pages (4 KiB on the x86_64/arm64 hosts we run on). */
const PAGE_BYTES = 4096;

interface Watch {
  limit: number;
  onBreach: () => void;
}

export class GroupMemoryWatch {
  private readonly watches = new Map<number, Watch>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly pollMs: number) {}

  /** Calls onBreach once when group pgid's RSS exceeds limit bytes; stop() ends the watch. */
  watch(pgid: number, limit: number, onBreach: () => void): { stop(): void } {
    const w: Watch = { limit, onBreach };
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

  private async tick(): Promise<void> {
    if (this.busy || this.watches.size === 0) return;
    this.busy = true;
    try {
      const rss = await groupsRss(new Set(this.watches.keys()));
      for (const [pgid, bytes] of rss) {
        const w = this.watches.get(pgid);
        if (w && bytes > w.limit) {
          this.watches.delete(pgid);
          w.onBreach();
        }
      }
    } catch {
      // /proc unreadable this tick: try again on the next
    } finally {
      this.busy = false;
    }
  }
}

/** Summed resident set sizes (bytes) of the processes of each group in pgids, from one /proc scan. */
export async function groupsRss(pgids: ReadonlySet<number>): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // the process ended meanwhile
    }
    // Fields after the command name (which may contain spaces and parentheses).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgid = Number(fields[2]);
    if (!pgids.has(pgid)) continue;
    out.set(pgid, (out.get(pgid) ?? 0) + Number(fields[21] ?? 0) * PAGE_BYTES);
  }
  return out;
}
