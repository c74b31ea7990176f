// Steering's S3 adapter: the only holder of S3 keys. Agents and users get presigned URLs for
// exactly the objects of one job attempt or one download; uploads are checked with HeadObject.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  UploadPartCommand,
  CreateBucketCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { GridtuneError, UnavailableError } from "../../protocol/errors.ts";
import type { ArtifactKind } from "../../protocol/messages.ts";

// package-lock.json pins an SDK release that supports Node 20; its notice that later releases will
// need Node 22 is for whoever upgrades the SDK (docs/architecture.md says so), not for every log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export interface StorageConfig {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Lifetime of presigned URLs (minutes per attempt; re-minted on request). */
  presignTtlSeconds: number;
}

/** The S3 layout, in one place (docs/architecture.md shows it). */
export const keys = {
  sandbox: (taskId: string) => `tasks/${taskId}/sandbox.tgz`,
  upload: (user: string, nonce: string) => `uploads/${user}/${nonce}.tgz`,
  dataset: (name: string) => `datasets/${name}/`,
  /** A steering-program run's stdout/stderr: its segment, the points before it, its failures before it. */
  steeringLog: (taskId: string, segment: number, generated: number, failures: number) =>
    `tasks/${taskId}/steering/s${segment}-g${generated}-f${failures}.log.txt`,
  /** Steering's record of a dataset's files and their sha256 (phpo dataset). */
  datasetManifest: (name: string) => `datasetmeta/${name}.json`,
  /** A dataset's index entry (datasetIndex.ts): users' and published datasets under their own prefix. */
  datasetIndex: (name: string) =>
    `datasetindex/${name.startsWith("user.") ? "users" : "published"}/${name}.json`,
  datasetIndexUsers: "datasetindex/users/",
  datasetIndexPublished: "datasetindex/published/",
  /** Written once every dataset older than the index has its entry (the migration ran). */
  datasetIndexBuilt: "datasetindex/built.json",
  /** A task's snapshot at log sequence `seq`, and the checkpoint manifest naming them (checkpoint.ts). */
  taskSnapshot: (taskId: string, seq: number) => `state/tasks/${taskId}/${seq}.json`,
  checkpoint: (seq: number) => `state/checkpoints/${seq}.json`,
  artifact: (taskId: string, pointId: number, jobId: string, attempt: number, kind: ArtifactKind) =>
    `tasks/${taskId}/points/${pointId}/${jobId}/a${attempt}/${ARTIFACT_FILE[kind]}`,
};

const ARTIFACT_FILE: Record<ArtifactKind, string> = {
  checkpoint: "checkpoint.tgz",
  metrics: "metrics.tgz",
  log: "log.txt",
  meta: "meta.json",
  output: "output.json",
};

export class Storage {
  readonly s3: S3Client;
  constructor(readonly config: StorageConfig) {
    this.s3 = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: true,
      // Without these the SDK signs an empty-body CRC32 into presigned PUTs (real S3 rejects
      // them) and streams aws-chunked bodies that s3rver stores with their framing.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      maxAttempts: 4,
    });
    // Bucket-level requests (ListObjectsV2) go to "/<bucket>/"; S3 treats that path and
    // "/<bucket>" alike, but some S3 servers (the embedded s3rver fork) verify the signature over
    // "/<bucket>" only. Signing the path without the slash works on both.
    this.s3.middlewareStack.add(
      (next) => (args) => {
        const req = args.request as { path?: unknown };
        if (typeof req.path === "string" && req.path === `/${config.bucket}/`) req.path = `/${config.bucket}`;
        return next(args);
      },
      { step: "build", name: "gridtuneBucketPath" },
    );
  }

  async ensureBucket(): Promise<void> {
    const Bucket = this.config.bucket;
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket }));
    } catch (e) {
      if (isNotFound(e)) {
        await this.wrap(() => this.s3.send(new CreateBucketCommand({ Bucket })), "create the bucket");
        return;
      }
      throw this.unavailable(e, "reach the bucket");
    }
  }

  presignGet(key: string, ttlSeconds = this.config.presignTtlSeconds): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), {
      expiresIn: ttlSeconds,
    });
  }

  /** A presigned PUT; with `size`, content-length is signed so only that many bytes are accepted. */
  presignPut(key: string, size?: number, ttlSeconds = this.config.presignTtlSeconds): Promise<string> {
    return getSignedUrl(
      this.s3,
      new PutObjectCommand({ Bucket: this.config.bucket, Key: key, ContentLength: size }),
      { expiresIn: ttlSeconds },
    );
  }

  /** Size and ETag of an object, or null when it does not exist. */
  async head(key: string): Promise<{ size: number; etag: string } | null> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: key }));
      return { size: r.ContentLength ?? 0, etag: (r.ETag ?? "").replaceAll('"', "") };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw this.unavailable(e, `read ${key}`);
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.wrap(
      () => this.s3.send(new PutObjectCommand({ Bucket: this.config.bucket, Key: key, Body: body })),
      `write ${key}`,
    );
  }

  /** A local file streamed into one object (S3 takes up to 5 GiB in one PUT). */
  async putFile(key: string, file: string, size: number): Promise<void> {
    await this.wrap(
      () =>
        this.s3.send(
          new PutObjectCommand({
            Bucket: this.config.bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: size,
          }),
        ),
      `write ${key}`,
    );
  }

  /** A server-side copy: the bytes never leave S3 (up to 5 GiB an object). */
  async copy(fromKey: string, toKey: string): Promise<void> {
    const source = `${this.config.bucket}/${fromKey.split("/").map(encodeURIComponent).join("/")}`;
    await this.wrap(
      () =>
        this.s3.send(new CopyObjectCommand({ Bucket: this.config.bucket, Key: toKey, CopySource: source })),
      `copy ${fromKey} to ${toKey}`,
    );
  }

  /**
   * An object's bytes, refused (TOO_LARGE) past `maxBytes` before they are read; null when it does
   * not exist.
   */
  async getBytes(key: string, maxBytes: number): Promise<Buffer | null> {
    let r;
    try {
      r = await this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw this.unavailable(e, `read ${key}`);
    }
    if ((r.ContentLength ?? 0) > maxBytes) {
      r.Body?.transformToWebStream()
        .cancel()
        .catch(() => undefined);
      throw new GridtuneError(
        "TOO_LARGE",
        `${key} is ${r.ContentLength} bytes, over the ${maxBytes} allowed here`,
      );
    }
    const bytes = await this.wrap(
      async () => Buffer.from((await r.Body?.transformToByteArray()) ?? []),
      `read ${key}`,
    );
    if (bytes.length > maxBytes)
      throw new GridtuneError("TOO_LARGE", `${key} is over the ${maxBytes} bytes allowed here`);
    return bytes;
  }

  async list(prefix: string): Promise<Array<{ key: string; size: number }>> {
    const out: Array<{ key: string; size: number }> = [];
    let token: string | undefined;
    do {
      const r = await this.wrap(
        () =>
          this.s3.send(
            new ListObjectsV2Command({
              Bucket: this.config.bucket,
              Prefix: prefix,
              ContinuationToken: token,
            }),
          ),
        `list ${prefix}`,
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async remove(key: string): Promise<void> {
    await this.wrap(
      () => this.s3.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key })),
      `delete ${key}`,
    );
  }

  /** The object's text, or null when it does not exist. */
  async getText(key: string): Promise<string | null> {
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }));
      return (await r.Body?.transformToString("utf8")) ?? "";
    } catch (e) {
      if (isNotFound(e)) return null;
      throw this.unavailable(e, `read ${key}`);
    }
  }

  /** The sha256 (hex) and byte count of an object, read as a stream. */
  async sha256(key: string): Promise<{ sha256: string; size: number }> {
    return this.wrap(async () => {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }));
      const h = createHash("sha256");
      let size = 0;
      for await (const c of r.Body as Readable) {
        const b = c as Buffer;
        size += b.length;
        h.update(b);
      }
      return { sha256: h.digest("hex"), size };
    }, `read ${key}`);
  }

  async createMultipart(key: string): Promise<string> {
    const r = await this.wrap(
      () => this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.config.bucket, Key: key })),
      `start a multipart upload of ${key}`,
    );
    if (!r.UploadId) throw new GridtuneError("STORAGE_FAILED", `S3 gave no upload id for ${key}`);
    return r.UploadId;
  }

  /** A presigned PUT of one part; `size` is signed (content-length), so only that many bytes are accepted. */
  presignPart(key: string, uploadId: string, partNumber: number, size: number): Promise<string> {
    return getSignedUrl(
      this.s3,
      new UploadPartCommand({
        Bucket: this.config.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        ContentLength: size,
      }),
      { expiresIn: this.config.presignTtlSeconds },
    );
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: ReadonlyArray<{ n: number; etag: string }>,
  ): Promise<void> {
    await this.wrap(
      () =>
        this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.config.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
          }),
        ),
      `complete the multipart upload of ${key}`,
    );
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    await this.wrap(
      () =>
        this.s3.send(
          new AbortMultipartUploadCommand({ Bucket: this.config.bucket, Key: key, UploadId: uploadId }),
        ),
      `abort the multipart upload of ${key}`,
    );
  }

  /** The multipart uploads started under `prefix` and neither completed nor aborted. */
  async listMultipartUploads(
    prefix: string,
  ): Promise<Array<{ key: string; uploadId: string; initiated: number }>> {
    const out: Array<{ key: string; uploadId: string; initiated: number }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const r = await this.wrap(
        () =>
          this.s3.send(
            new ListMultipartUploadsCommand({
              Bucket: this.config.bucket,
              Prefix: prefix,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
          ),
        `list the multipart uploads under ${prefix}`,
      );
      for (const u of r.Uploads ?? [])
        if (u.Key && u.UploadId)
          out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 });
      if (!r.IsTruncated) return out;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
    }
  }

  /** The parts a multipart upload holds so far; null when the upload is gone (completed or aborted). */
  async listParts(
    key: string,
    uploadId: string,
  ): Promise<Array<{ n: number; size: number; lastModified: number }> | null> {
    const out: Array<{ n: number; size: number; lastModified: number }> = [];
    let marker: string | undefined;
    for (;;) {
      let r;
      try {
        r = await this.s3.send(
          new ListPartsCommand({
            Bucket: this.config.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumberMarker: marker,
          }),
        );
      } catch (e) {
        if (e instanceof S3ServiceException && e.name === "NoSuchUpload") return null;
        throw this.unavailable(e, `list the parts of ${key}`);
      }
      for (const p of r.Parts ?? [])
        out.push({ n: p.PartNumber ?? 0, size: p.Size ?? 0, lastModified: p.LastModified?.getTime() ?? 0 });
      if (!r.IsTruncated) return out;
      marker = r.NextPartNumberMarker;
    }
  }

  close(): void {
    this.s3.destroy();
  }

  private async wrap<T>(fn: () => Promise<T>, what: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.unavailable(e, what);
    }
  }

  private unavailable(e: unknown, what: string): GridtuneError {
    if (e instanceof S3ServiceException) {
      return new GridtuneError("STORAGE_FAILED", `S3 refused to ${what} (${e.name}: ${e.message})`, {
        cause: e,
      });
    }
    return new UnavailableError(
      `cannot ${what} on S3 at ${this.config.endpoint}: ${e instanceof Error ? e.message : String(e)}; ` +
        `check S3_ENDPOINT and that the server is running`,
      { cause: e },
    );
  }
}

function isNotFound(e: unknown): boolean {
  if (!(e instanceof S3ServiceException)) return false;
  return (
    e.name === "NotFound" ||
    e.name === "NoSuchKey" ||
    e.name === "NoSuchBucket" ||
    e.$metadata.httpStatusCode === 404
  );
}
