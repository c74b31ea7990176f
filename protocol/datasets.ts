// User datasets (`phpo dataset`): names, file paths and the API messages that move them through
// presigned URLs minted by steering. A user writes only their own scope, `user.<user>.<name>`
// (PanDA/Rucio naming); any other scope is published by an admin (`gridtune-steering admin
// dataset publish`, with steering's S3 keys) and readable by every user.
import { z } from "zod";

/** The smallest multipart part S3 accepts (all but the last part). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's most parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** phpo uploads files over this size in parts (resumable); smaller ones in one PUT. */
export const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
/** Most part URLs in one `datasetParts` reply (a reply stays far under NATS's max_payload). */
export const MAX_PART_URLS = 200;
/** The largest file of a dataset (S3's limit for one object). */
export const MAX_DATASET_FILE_BYTES = 5 * 1024 ** 4;

/** `user.<user>.<name>`: the user's own scope. */
export const userScope = (user: string) => `user.${user}.`;

const DATASET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
export const DatasetName = z
  .string()
  .regex(DATASET_NAME_RE, "a dataset name uses letters, digits, '.', '_' and '-' (user.<you>.<name>)")
  .refine((n) => !n.includes(".."), "a dataset name has no '..'");

/**
 * A file of a dataset, relative to it: segments of letters, digits, '.', '_' and '-' joined by
 * '/', none of them "." or ".." (an S3 key is not a path, but URL clients normalise dot
 * segments, so "a/../b" would reach another key).
 */
export const DatasetPath = z
  .string()
  .min(1)
  // S3 keys are at most 1024 bytes: datasets/<name up to 255>/<path>
  .max(750)
  .refine(
    (p) => p.split("/").every((s) => /^[A-Za-z0-9._-]+$/.test(s) && s !== "." && s !== ".."),
    "a dataset file is a relative path of letters, digits, '.', '_' and '-' (no '.', '..' or empty segment)",
  );

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "sha256 is 64 lowercase hex digits");
const Bytes = z.number().int().nonnegative().max(MAX_DATASET_FILE_BYTES);
const PartNumber = z.number().int().min(1).max(MAX_PARTS);

export const DatasetRequests = [
  /**
   * Starts (or resumes) the upload of one file: steering checks the scope and the quota. Without
   * `partSize` the file goes in one PUT; with it, in parts (`uploadId`: resume that upload).
   */
  z.object({
    verb: z.literal("datasetPut"),
    name: DatasetName,
    path: DatasetPath,
    size: Bytes,
    sha256: Sha256,
    partSize: z.number().int().min(MIN_PART_BYTES).max(MAX_DATASET_FILE_BYTES).optional(),
    uploadId: z
      .string()
      .regex(/^[A-Za-z0-9._~+/=-]{1,1024}$/)
      .optional(),
  }),
  /** Presigned PUTs of some parts of a multipart upload that datasetPut started. */
  z.object({
    verb: z.literal("datasetParts"),
    name: DatasetName,
    path: DatasetPath,
    uploadId: z.string().regex(/^[A-Za-z0-9._~+/=-]{1,1024}$/),
    /** The file's size and part size: each part's length is signed into its URL. */
    size: Bytes,
    partSize: z.number().int().min(MIN_PART_BYTES).max(MAX_DATASET_FILE_BYTES),
    partNumbers: z.array(PartNumber).min(1).max(MAX_PART_URLS),
  }),
  /** Ends the upload of one file: steering completes the parts, checks size and sha256, records it. */
  z.object({
    verb: z.literal("datasetCommit"),
    name: DatasetName,
    path: DatasetPath,
    size: Bytes,
    sha256: Sha256,
    uploadId: z
      .string()
      .regex(/^[A-Za-z0-9._~+/=-]{1,1024}$/)
      .optional(),
    parts: z
      .array(z.object({ n: PartNumber, etag: z.string().min(1).max(256) }))
      .max(MAX_PARTS)
      .optional(),
  }),
  /** The user's datasets and the published ones (every scope but `user.`); `mine`: the user's only. */
  z.object({ verb: z.literal("datasetList"), mine: z.boolean().optional() }),
  /** A page of a dataset's files from index `from` (a reply stays under NATS's max_payload). */
  z.object({
    verb: z.literal("datasetShow"),
    name: DatasetName,
    from: z.number().int().nonnegative().default(0),
  }),
  z.object({ verb: z.literal("datasetRemove"), name: DatasetName }),
  /** Presigned GETs of every file of a dataset the user may read, with their checksums. */
  z.object({
    verb: z.literal("datasetGet"),
    name: DatasetName,
    from: z.number().int().nonnegative().default(0),
  }),
] as const;

/** Where the next page of files starts, or null on the last page. */
const PageNext = z.number().int().nonnegative().nullable().default(null);

export const DatasetFile = z.object({
  path: z.string(),
  size: z.number().int().nonnegative(),
  /** Null for a file not put through `phpo dataset put` (an admin's upload with S3 keys). */
  sha256: Sha256.nullable(),
});
export type DatasetFile = z.infer<typeof DatasetFile>;

export const DatasetSummary = z.object({
  name: z.string(),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** Published by an admin (readable by all) rather than the user's own; older steering: false. */
  published: z.boolean().default(false),
});
export type DatasetSummary = z.infer<typeof DatasetSummary>;

const Usage = z.object({
  /** Bytes and files of the user's datasets and unfinished multipart uploads (both count). */
  bytes: z.number().int().nonnegative(),
  files: z.number().int().nonnegative(),
  maxBytes: z.number().int().positive(),
  maxFiles: z.number().int().positive(),
  /** Unfinished multipart uploads (a put interrupted) and their parts' bytes; older steering: 0. */
  uploads: z.number().int().nonnegative().default(0),
  uploadBytes: z.number().int().nonnegative().default(0),
});

export const DatasetPutReply = z.discriminatedUnion("type", [
  /** The file is in the dataset already, with this size and sha256: nothing to send. */
  z.object({ type: z.literal("complete") }),
  z.object({ type: z.literal("single"), url: z.string() }),
  z.object({ type: z.literal("multipart"), uploadId: z.string(), partSize: z.number().int().positive() }),
]);
export type DatasetPutReply = z.infer<typeof DatasetPutReply>;

export const DatasetReplies = {
  datasetPut: DatasetPutReply,
  datasetParts: z.object({ urls: z.array(z.object({ n: PartNumber, url: z.string() })) }),
  datasetCommit: DatasetFile,
  datasetList: z.object({ datasets: z.array(DatasetSummary), usage: Usage }),
  datasetShow: z.object({ name: z.string(), files: z.array(DatasetFile), next: PageNext }),
  datasetRemove: z.object({ name: z.string(), files: z.number().int().nonnegative() }),
  datasetGet: z.object({
    name: z.string(),
    files: z.array(DatasetFile.extend({ url: z.string() })),
    next: PageNext,
  }),
} as const;
