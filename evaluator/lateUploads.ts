// Artifacts an attempt could not upload when it ended (S3 unreachable): the result was reported
// without them (its loss counts), and each is uploaded here on its own, later, with back-off and a
// fresh presigned URL per try, then reported (`artifact`). One that never gets through is given up
// with its reason, which `phpo show` and `phpo download` display. The files wait in a folder of
// the agent's work root; a drain or shutdown gives up what is still waiting.
import { lstat, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { backoffDelay, type Backoff } from "../protocol/backoff.ts";
import { GridtuneError, toWireError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/log.ts";
import type { ArtifactKind } from "../protocol/messages.ts";
import type { SteeringLink } from "./link.ts";
import { DEFAULT_RETRY, upload, type RetryPolicy } from "./transfer.ts";

export interface LatePolicy extends Backoff {
  /** Tries per artifact (each: a presign and an upload with the transfer's own retries). */
  attempts: number;
  /** The transfer's retries within one try. */
  transfer: RetryPolicy;
}

/** About 8 minutes of tries: an S3 outage of a few minutes loses nothing. */
export const DEFAULT_LATE: LatePolicy = {
  attempts: 12,
  baseMs: 2000,
  maxMs: 60_000,
  jitter: 0.5,
  transfer: DEFAULT_RETRY,
};

export interface LateArtifact {
  jobId: string;
  attempt: number;
  kind: ArtifactKind;
  /** The file as the attempt left it; moved into the agent's holding folder by add(). */
  file: string;
}

export class LateUploads {
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly dir: string;

  constructor(
    workRoot: string,
    private readonly link: SteeringLink,
    private readonly logger: Logger,
    private readonly policy: LatePolicy = DEFAULT_LATE,
    private readonly random: () => number = Math.random,
  ) {
    this.dir = join(workRoot, ".late-uploads");
  }

  /** Artifacts waiting or being uploaded now. */
  get pending(): number {
    return this.running.size;
  }

  /**
   * Takes the file out of the attempt's folders (they are removed when the attempt ends) and
   * starts its uploads. Returns once the file is moved; a file that cannot be kept is given up.
   */
  async add(a: LateArtifact): Promise<void> {
    const held = join(this.dir, `${a.jobId}-a${a.attempt}-${a.kind}`);
    let reason: string | null = null;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await rename(a.file, held);
      // the payload may have swapped a link in: only a regular file is ever uploaded
      if (!(await lstat(held)).isFile()) reason = `the ${a.kind} file is not a regular file`;
    } catch (e) {
      reason = `the ${a.kind} file could not be kept for a later upload: ${toWireError(e).message}`;
    }
    if (reason !== null) {
      await rm(held, { force: true });
      return this.giveUp(a, reason);
    }
    const p: Promise<void> = this.run(a, held).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Settles once every artifact added so far is uploaded or given up. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Stops waiting: what is not uploaded yet is given up (reported as such). */
  async close(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }

  private async run(a: LateArtifact, file: string): Promise<void> {
    const { policy } = this;
    let last = "no try was made";
    try {
      for (let n = 1; n <= policy.attempts; n++) {
        await this.wait(backoffDelay(policy, n, this.random()));
        if (this.abort.signal.aborted) break;
        try {
          const reply = await this.link.request({
            type: "presign",
            jobId: a.jobId,
            attempt: a.attempt,
            artifacts: [{ kind: a.kind, size: (await lstat(file)).size }],
          });
          if (reply.type === "error") throw GridtuneError.fromWire(reply.error);
          const g = reply.type === "presigned" ? reply.uploads[0] : undefined;
          if (!g) throw new GridtuneError("INTERNAL", `unexpected ${reply.type} to presign`);
          const r = await upload(g.url, file, { retry: policy.transfer, signal: this.abort.signal });
          await this.link.report({
            type: "artifact",
            jobId: a.jobId,
            attempt: a.attempt,
            kind: a.kind,
            artifact: { kind: a.kind, key: g.key, size: r.size, etag: r.etag },
            reason: null,
          });
          this.logger.info(`late ${a.kind} uploaded`, { jobId: a.jobId, attempt: a.attempt, tries: n });
          return;
        } catch (e) {
          if (this.abort.signal.aborted) break;
          last = toWireError(e).message;
          // a refusal that no later try can change (a stale attempt, a size over the limit)
          if (e instanceof GridtuneError && !e.retryable) {
            return await this.giveUp(a, `the ${a.kind} upload was refused: ${last}`);
          }
          this.logger.warn(`late ${a.kind} upload failed; will try again`, {
            jobId: a.jobId,
            attempt: a.attempt,
            try: n,
            error: last,
          });
        }
      }
      await this.giveUp(
        a,
        this.abort.signal.aborted
          ? `the agent stopped before the ${a.kind} could be uploaded (last error: ${last})`
          : `the ${a.kind} could not be uploaded in ${policy.attempts} tries: ${last}`,
      );
    } finally {
      await rm(file, { force: true });
    }
  }

  private async giveUp(a: LateArtifact, reason: string): Promise<void> {
    this.logger.error(`late ${a.kind} given up`, { jobId: a.jobId, attempt: a.attempt, reason });
    await this.link
      .report({ type: "artifact", jobId: a.jobId, attempt: a.attempt, kind: a.kind, artifact: null, reason })
      .catch((e: unknown) =>
        this.logger.error("could not report a given-up artifact", {
          jobId: a.jobId,
          error: toWireError(e).message,
        }),
      );
  }

  /** Waits `ms`, or until close(); never keeps the process alive on its own. */
  private wait(ms: number): Promise<void> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
