// Progress while the payload runs: the progress file (read as it is written) and the marked
// stdout lines become one report each, in order, to steering.
import { closeSync, lstatSync, read, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { toWireError } from "../protocol/errors.ts";
import { PROGRESS_FILE, PROGRESS_STDOUT_MARKER } from "../protocol/files.ts";
import type { JobContext } from "./jobContext.ts";
import { openPayloadFile, type OpenedFile } from "./payloadFs.ts";
import { parseProgressLine } from "./progress.ts";

const readAt = promisify(read);

/**
 * How often the progress file is read while the payload runs. A stopping scheduler's verdict can
 * only follow a report steering has seen: at 1 s, a payload with fast epochs trained on for a
 * second's worth of epochs before its report even left the agent. A read of an unchanged file is
 * one lstat and one fstat, so 100 ms costs little; it runs only while the payload runs.
 */
export const PROGRESS_POLL_MS = 100;

/**
 * Reads the progress file as soon as the payload writes it (inotify on the working directory),
 * so a stopping scheduler's pause lands within a report, not within a poll; the 100 ms poll stays
 * as the fallback where watching fails (no inotify watches left). Events of other files only
 * cost a read that finds nothing new, and a burst of them joins one queued read.
 */
export function watchProgress(workDir: string, onChange: () => void): FSWatcher | null {
  try {
    const w = watch(workDir, { persistent: false }, (_event, name) => {
      if (name === null || name === PROGRESS_FILE) onChange();
    });
    w.on("error", () => w.close());
    return w;
  } catch {
    return null;
  }
}

/** Forwards progress from the progress file and marked stdout lines, in order, one report each. */
export class ProgressForwarder {
  private offset = 0;
  private partial = "";
  private chain: Promise<void> = Promise.resolve();
  private count = 0;
  private lastReported = Number.NEGATIVE_INFINITY;
  /** Set when the progress file was refused (a link out, a FIFO): it is not read again. */
  private refused = false;
  constructor(
    private readonly ctx: JobContext,
    private readonly workDir: string,
    /** Returns whether the payload is held at this report for steering's verdict. */
    private readonly onResource: (r: number) => boolean,
  ) {}

  stdoutLine(line: string): void {
    if (line.startsWith(PROGRESS_STDOUT_MARKER))
      this.forward(line.slice(PROGRESS_STDOUT_MARKER.length), "stdout");
  }

  /** The read in progress: reads run one after another, never two at the same offset. */
  private reading: Promise<void> = Promise.resolve();
  /** A read is queued and not started: another poll joins it (a payload's burst of file events). */
  private queued: Promise<void> | null = null;

  /**
   * Reads what was appended to the progress file; never rejects (it runs from a timer). A poll
   * while a read is still in progress (a slow disk, a loaded host) waits for it, then reads on
   * from where it ended, so the same lines are never forwarded twice and the final poll after the
   * payload ended sees every line.
   */
  poll(): Promise<void> {
    if (this.queued) return this.queued;
    this.reading = this.reading
      .then(() => {
        this.queued = null;
        return this.readAppended();
      })
      .catch((e: unknown) =>
        this.ctx.logger.warn(`${PROGRESS_FILE} could not be read: ${toWireError(e).message}`, {
          jobId: this.ctx.job.jobId,
        }),
      );
    this.queued = this.reading;
    return this.reading;
  }

  private async readAppended(): Promise<void> {
    // usually absent: a check that raises no error when it is (lstat: a link is PayloadTree's)
    if (this.refused || !lstatSync(join(this.workDir, PROGRESS_FILE), { throwIfNoEntry: false })) return;
    let f: OpenedFile | null;
    try {
      f = openPayloadFile(this.workDir, PROGRESS_FILE);
    } catch (e) {
      this.refused = true;
      this.ctx.logger.warn(`${PROGRESS_FILE} is not read: ${toWireError(e).message}`, {
        jobId: this.ctx.job.jobId,
      });
      return;
    }
    if (f === null) return;
    try {
      if (f.size <= this.offset) return;
      const len = Math.min(f.size - this.offset, 1024 * 1024);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await readAt(f.fd, buf, 0, len, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buf.subarray(0, bytesRead).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) this.forward(l, "file");
    } catch (e) {
      this.ctx.logger.warn(`${PROGRESS_FILE} could not be read: ${toWireError(e).message}`, {
        jobId: this.ctx.job.jobId,
      });
    } finally {
      closeSync(f.fd);
    }
  }

  flushed(): Promise<void> {
    return this.chain;
  }

  private forward(text: string, source: "file" | "stdout"): void {
    // The payload may write both the file and the stdout marker for the same step: a report is
    // forwarded once, the first time its resource level is seen (levels only grow within an attempt).
    const p = parseProgressLine(text, source === "file" ? ++this.count : this.count + 1);
    if (!p || p.resource <= this.lastReported) return;
    this.lastReported = p.resource;
    const held = this.onResource(p.resource);
    const { job } = this.ctx;
    this.chain = this.chain
      .then(() =>
        this.ctx.link.report({
          type: "progress",
          jobId: job.jobId,
          attempt: job.attempt,
          resource: p.resource,
          metrics: p.metrics,
          ...(held ? { held } : {}),
        }),
      )
      .catch((e: unknown) =>
        this.ctx.logger.warn("progress report lost", { jobId: job.jobId, error: toWireError(e).message }),
      );
  }
}
