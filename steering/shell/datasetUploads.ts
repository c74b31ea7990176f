// Multipart uploads of dataset files that S3 holds unfinished: read here (ListMultipartUploads,
// then ListParts for their bytes and their latest part), counted in their user's quota
// (datasets.ts) and, once idle past the configured age, aborted by the sweep. What to abort is
// the decider's (core/decide/uploads.ts, on the list and the clock's `now`); the abort is an
// effect run by the EffectRunner.
import { GridtuneError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import { decide } from "../core/decider.ts";
import type { Decision } from "../core/decision.ts";
import { DATASET_UPLOAD_PREFIX, type LiveUpload, type UploadSweepReply } from "../core/decide/uploads.ts";
import type { World } from "../core/world.ts";
import type { Cancel, Clock } from "./clock.ts";
import type { Effects } from "./effects.ts";
import type { Storage } from "./storage.ts";

/** Parts listings in flight together. */
const READ_AHEAD = 16;

/** The unfinished multipart uploads under `prefix`, with their parts' bytes and latest part. */
export async function liveUploads(
  storage: Pick<Storage, "listMultipartUploads" | "listParts">,
  prefix: string,
): Promise<LiveUpload[]> {
  const uploads = await storage.listMultipartUploads(prefix);
  const out: LiveUpload[] = [];
  for (let i = 0; i < uploads.length; i += READ_AHEAD) {
    const batch = await Promise.all(
      uploads.slice(i, i + READ_AHEAD).map(async (u) => {
        const parts = await storage.listParts(u.key, u.uploadId);
        if (parts === null) return null; // completed or aborted since the listing
        return {
          ...u,
          bytes: parts.reduce((n, p) => n + p.size, 0),
          lastPartAt: parts.length === 0 ? null : Math.max(...parts.map((p) => p.lastModified)),
        };
      }),
    );
    for (const u of batch) if (u) out.push(u);
  }
  return out;
}

/** The EffectRunner's abort port: an upload completed or aborted since is done; others are logged. */
export function abortUploadPort(
  storage: Pick<Storage, "abortMultipart">,
  logger: Pick<Logger, "warn">,
): (key: string, uploadId: string) => Promise<void> {
  return async (key, uploadId) => {
    try {
      await storage.abortMultipart(key, uploadId);
    } catch (e) {
      if (e instanceof GridtuneError && /NoSuchUpload/.test(e.message)) return;
      // one failed abort does not stop the others; the next sweep tries it again
      logger.warn("could not abort a dataset upload; the next sweep tries again", {
        key,
        uploadId,
        error: String(e),
      });
    }
  };
}

/** How often the sweep runs: a quarter of the age, between a second and an hour. */
export const uploadSweepEveryMs = (maxAgeMs: number): number =>
  Math.min(3_600_000, Math.max(1_000, Math.floor(maxAgeMs / 4)));

export interface UploadSweepDeps {
  readonly storage: Pick<Storage, "listMultipartUploads" | "listParts">;
  /** Committer.run: the decision in the serial queue, its effects once its events are durable. */
  readonly run: <R>(decide: () => Decision<R>, effects: Effects) => Promise<R>;
  readonly world: () => World;
  readonly effects: Effects;
  readonly clock: Clock;
  /** An upload idle for longer than this is aborted (config datasetUploadMaxAgeMs). */
  readonly maxAgeMs: number;
  readonly logger: Pick<Logger, "error">;
}

export class UploadSweep {
  private running: Promise<UploadSweepReply> | null = null;

  constructor(private readonly d: UploadSweepDeps) {}

  /** Sweeps every uploadSweepEveryMs(maxAgeMs) on the clock until cancelled. */
  start(): Cancel {
    return this.d.clock.every(uploadSweepEveryMs(this.d.maxAgeMs), () => {
      this.sweep().catch((e: unknown) =>
        this.d.logger.error("the sweep of abandoned dataset uploads failed", { error: String(e) }),
      );
    });
  }

  /** One sweep (a sweep asked for while one runs gets that one's result). */
  sweep(): Promise<UploadSweepReply> {
    this.running ??= this.once().finally(() => (this.running = null));
    return this.running;
  }

  private async once(): Promise<UploadSweepReply> {
    const uploads = await liveUploads(this.d.storage, DATASET_UPLOAD_PREFIX);
    return this.d.run(
      () =>
        decide(
          this.d.world(),
          { type: "upload-sweep", uploads, maxAgeMs: this.d.maxAgeMs },
          this.d.clock.now(),
        ),
      this.d.effects,
    );
  }
}
