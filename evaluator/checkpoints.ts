// Periodic checkpoints while the payload runs, and the final one when it ended: the
// checkPointToSave paths are packed when they changed, uploaded, and reported to steering.
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { GridtuneError, toWireError } from "../protocol/errors.ts";
import { createTarball, fingerprint } from "./archive.ts";
import { requestSteering, type JobContext } from "./jobContext.ts";
import { CHECKPOINT_ENTRIES, CHECKPOINT_EXPANSION } from "./jobInputs.ts";
import { upload } from "./transfer.ts";
import type { LazyDir } from "./workDirs.ts";

/** Periodic checkpoints: tar the checkPointToSave paths when they changed, upload, report. */
export class CheckpointSaver {
  private last = "";
  /** Reasons for left-out paths already written to the job's log. */
  private readonly noted = new Set<string>();
  private running: Promise<void> = Promise.resolve();
  constructor(
    private readonly ctx: JobContext,
    private readonly workDir: string,
    private readonly scratch: LazyDir,
  ) {}

  idle(): Promise<void> {
    return this.running;
  }

  save(resource: number | null, final = false): Promise<void> {
    this.running = this.running
      .then(() => this.saveNow(resource, final))
      .catch((e: unknown) => {
        this.ctx.logger.warn("checkpoint not saved; the previous one is kept", {
          jobId: this.ctx.job.jobId,
          error: toWireError(e).message,
        });
      });
    return this.running;
  }

  /**
   * Links and special files are never packed (a link could name a host file): the payload goes
   * on, and its log says what its checkpoint lacks, once per reason and attempt.
   */
  private async note(log: string, skipped: string[]): Promise<void> {
    for (const why of skipped) {
      if (this.noted.has(why)) continue;
      this.noted.add(why);
      await this.scratch.ensure(); // a quiet payload has no log (nor its directory) yet
      await appendLog(log, `[gridtune] checkpoint: ${why}\n`);
    }
  }

  private async saveNow(resource: number | null, final: boolean): Promise<void> {
    const { job } = this.ctx;
    const paths = job.evaluation.checkPointToSave;
    const limit = job.evaluation.checkPointLimitBytes;
    const log = join(this.scratch.path, "log.txt");
    const fp = fingerprint(this.workDir, paths);
    await this.note(log, fp.skipped);
    if (fp.value === "" || fp.value === this.last) return;
    const file = join(await this.scratch.ensure(), "checkpoint.tgz");
    // what is restored is extracted under 20x the limit: a bigger checkpoint could never be used
    const packed = await createTarball(this.workDir, paths, file, {
      maxBytes: limit * CHECKPOINT_EXPANSION,
      maxEntries: CHECKPOINT_ENTRIES,
    }).catch(async (e: unknown) => {
      const msg = `checkpoint not saved: ${toWireError(e).message}; the previous checkpoint is kept`;
      await appendLog(log, `[gridtune] ${msg}\n`);
      throw e;
    });
    await this.note(log, packed.skipped);
    if (packed.present.length === 0) return;
    const size = (await stat(file)).size;
    if (size > limit) {
      const msg = `checkpoint of ${size} bytes exceeds the limit of ${limit}; the previous checkpoint is kept`;
      await appendLog(log, `[gridtune] ${msg}\n`);
      throw new GridtuneError("TOO_LARGE", msg);
    }
    const reply = await requestSteering(this.ctx, {
      type: "presign",
      jobId: job.jobId,
      attempt: job.attempt,
      artifacts: [{ kind: "checkpoint", size }],
    });
    if (reply.type !== "presigned" || !reply.uploads[0])
      throw new GridtuneError(
        "STALE_ATTEMPT",
        `no upload URL for the checkpoint${reply.type === "error" ? `: ${reply.error.message}` : ""}`,
      );
    const g = reply.uploads[0];
    const r = await upload(g.url, file);
    await this.ctx.link.report({
      type: "checkpoint",
      jobId: job.jobId,
      attempt: job.attempt,
      artifact: { kind: "checkpoint", key: g.key, size: r.size, etag: r.etag },
      resource,
    });
    this.last = fp.value;
    this.ctx.logger.info(final ? "final checkpoint saved" : "checkpoint saved", {
      jobId: job.jobId,
      attempt: job.attempt,
      size,
      resource,
    });
  }
}

async function appendLog(path: string, text: string): Promise<void> {
  const f = await open(path, "a");
  await f.write(text);
  await f.close();
}
