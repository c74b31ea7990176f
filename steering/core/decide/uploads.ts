// Abandoned multipart uploads of datasets (a `phpo dataset put` interrupted and never resumed):
// their parts hold storage until the upload is completed or aborted, which nothing else would
// ever do. The sweep aborts every upload under `datasets/` idle for longer than maxAgeMs (no part
// since, nor the start): a decision on the upload list the shell read from S3 and `now`.
import type { Decision } from "../decision.ts";
import type { Effect } from "../effects.ts";

/** The only multipart uploads steering starts are dataset files' (datasets.ts). */
export const DATASET_UPLOAD_PREFIX = "datasets/";

/** A multipart upload S3 holds now, with its parts (ListMultipartUploads, ListParts). */
export interface LiveUpload {
  readonly key: string;
  readonly uploadId: string;
  /** When the upload was started (ms since the epoch). */
  readonly initiated: number;
  /** When its latest part arrived; null before the first. */
  readonly lastPartAt: number | null;
  /** Bytes of its parts so far. */
  readonly bytes: number;
}

export type UploadCommand = {
  readonly type: "upload-sweep";
  readonly uploads: readonly LiveUpload[];
  /** An upload idle for longer than this is abandoned. */
  readonly maxAgeMs: number;
};

export interface UploadSweepReply {
  readonly aborted: number;
  readonly kept: number;
  /** Bytes of the parts of the aborted uploads. */
  readonly freedBytes: number;
}

/** The last sign of life of an upload: its latest part, else its start. */
export const lastActivity = (u: LiveUpload): number => Math.max(u.initiated, u.lastPartAt ?? u.initiated);

/** Every dataset upload idle for longer than maxAgeMs is aborted; the others are kept. */
export function decideUploadSweep(c: UploadCommand, now: number): Decision<UploadSweepReply> {
  const effects: Effect[] = [];
  let aborted = 0;
  let kept = 0;
  let freedBytes = 0;
  for (const u of c.uploads) {
    // someone else's upload in the bucket (not a dataset file's) is not steering's to end
    if (!u.key.startsWith(DATASET_UPLOAD_PREFIX)) continue;
    const idle = now - lastActivity(u);
    if (idle <= c.maxAgeMs) {
      kept++;
      continue;
    }
    aborted++;
    freedBytes += u.bytes;
    effects.push(
      {
        type: "log",
        level: "info",
        message: "abandoned dataset upload aborted",
        fields: { key: u.key, uploadId: u.uploadId, idleMs: idle, bytes: u.bytes },
      },
      { type: "abort-upload", key: u.key, uploadId: u.uploadId },
    );
  }
  return { events: [], effects, reply: { aborted, kept, freedBytes } };
}
