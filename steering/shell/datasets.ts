// The API side of `phpo dataset`: users bring their own training data without S3 keys. Steering
// mints presigned URLs for the user's own scope only (`user.<user>.*`, PanDA/Rucio naming),
// checks the user's dataset quota (core/limits.ts) before any upload, and at the end of each file's
// upload reads the object back and records its size and sha256 in a manifest
// (`datasetmeta/<name>.json`) only when they match what the user declared: the manifest's
// checksums are steering's, never the client's word. Datasets outside the `user.` scope are an
// admin's (written with steering's keys) and readable by every user. `ls` reads the dataset index
// (datasetIndex.ts), one entry per dataset; the quota counts unfinished multipart uploads too
// (datasetUploads.ts), until they are finished or the sweep aborts them.
import { z } from "zod";
import { GridtuneError, ValidationError } from "../../protocol/errors.ts";
import {
  type DatasetFile,
  type DatasetReplies,
  MAX_PARTS,
  Sha256,
  userScope,
} from "../../protocol/datasets.ts";
import type { Logger } from "../../protocol/log.ts";
import type { ApiRequest } from "../../protocol/messages.ts";
import { checkDatasetQuota } from "../core/limits.ts";
import type { LiveUpload } from "../core/decide/uploads.ts";
import { DatasetIndex } from "./datasetIndex.ts";
import { liveUploads } from "./datasetUploads.ts";
import type { TenantLimitsReader } from "./limits.ts";
import { keys, type Storage } from "./storage.ts";

type Req<V extends ApiRequest["verb"]> = Extract<ApiRequest, { verb: V }>;
type Reply<V extends keyof typeof DatasetReplies> = z.input<(typeof DatasetReplies)[V]>;

const Manifest = z.object({
  name: z.string(),
  files: z.record(z.string(), z.object({ size: z.number().int().nonnegative(), sha256: Sha256 })),
});
type Manifest = z.infer<typeof Manifest>;

/** A dataset's manifest: the sizes and sha256 steering read back; empty when none (or unreadable). */
export async function readManifest(storage: Storage, name: string): Promise<Manifest> {
  const text = await storage.getText(keys.datasetManifest(name));
  if (text === null) return { name, files: {} };
  let raw: unknown = null;
  try {
    raw = JSON.parse(text);
  } catch {
    // as unreadable, below
  }
  const parsed = Manifest.safeParse(raw);
  // Only steering writes it; an unreadable one is treated as empty (files show no checksum).
  return parsed.success ? parsed.data : { name, files: {} };
}

/** Writes the manifest, then the dataset's index entry (its files and bytes as recorded). */
export async function writeManifest(storage: Storage, m: Manifest, index: DatasetIndex): Promise<void> {
  await storage.put(keys.datasetManifest(m.name), JSON.stringify(m));
  const files = Object.values(m.files);
  await index.put({ name: m.name, files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) });
}

export { isPublishedName } from "./datasetIndex.ts";

/** The scope rule: a user writes `user.<user>.<name>` only. `field` names the option to fix. */
export function assertWritable(user: string, name: string, field: string): void {
  const scope = userScope(user);
  if (name.startsWith(scope) && name.length > scope.length) return;
  throw new GridtuneError(
    "FORBIDDEN",
    `${field} ${name}: you may write only datasets of your own scope, ${scope}<name> ` +
      `(PanDA/Rucio naming; other scopes are published by an admin), e.g. ${field} ${scope}mydata`,
  );
}

/** The read rule: the user's own scope, or any scope but another user's (an admin's datasets). */
export function assertReadable(user: string, name: string, field: string): void {
  if (!name.startsWith("user.") || name.startsWith(userScope(user))) return;
  const owner = name.split(".")[1] ?? "";
  throw new GridtuneError(
    "FORBIDDEN",
    `${field} ${name} is a private dataset of user ${owner}: use a dataset of your own ` +
      `(phpo dataset put DIR --name ${userScope(user)}<name>) or one an admin published`,
  );
}

/** The parts of a file of `size` bytes in parts of `partSize`; more than S3 takes is refused. */
function partCount(path: string, size: number, partSize: number): number {
  const parts = Math.max(1, Math.ceil(size / partSize));
  if (parts > MAX_PARTS)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `partSize ${partSize}: ${path} would need ${parts} parts (S3 takes at most ${MAX_PARTS}); ` +
        `use a larger part size (at least ${Math.ceil(size / MAX_PARTS)} bytes)`,
    );
  return parts;
}

export class Datasets {
  /** Manifest updates of one dataset, one after the other (commits of parallel uploads). */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Each dataset's files and bytes, so that `ls` lists datasets, not every file (datasetIndex.ts). */
  readonly index: DatasetIndex;

  constructor(
    private readonly storage: Storage,
    private readonly limiter: Pick<TenantLimitsReader, "limitsOf">,
    /** Bytes one page of show or get may take (a reply stays under NATS's max_payload). */
    private readonly pageBytes: () => number,
    logger: Pick<Logger, "warn"> | null = null,
  ) {
    this.index = new DatasetIndex(storage, logger);
  }

  async put(user: string, req: Req<"datasetPut">): Promise<Reply<"datasetPut">> {
    assertWritable(user, req.name, "--name");
    const key = keys.dataset(req.name) + req.path;
    const [manifest, head] = await Promise.all([this.manifest(req.name), this.storage.head(key)]);
    const had = manifest.files[req.path];
    // Already stored, checked and recorded: a re-run of put skips it.
    if (had && had.sha256 === req.sha256 && had.size === req.size && head?.size === req.size)
      return { type: "complete" };
    const uploads = await this.checkQuota(user, key, req.path, req.size, head, req.uploadId ?? null);
    if (req.partSize === undefined)
      return { type: "single", url: await this.storage.presignPut(key, req.size) };
    partCount(req.path, req.size, req.partSize);
    // An upload to resume that S3 no longer holds (aborted as abandoned, or not this file's) is
    // not resumed: a new one starts, and phpo, given another upload id, sends every part again.
    const live = uploads.some((u) => u.key === key && u.uploadId === req.uploadId);
    const uploadId = live && req.uploadId ? req.uploadId : await this.storage.createMultipart(key);
    return { type: "multipart", uploadId, partSize: req.partSize };
  }

  async parts(user: string, req: Req<"datasetParts">): Promise<Reply<"datasetParts">> {
    assertWritable(user, req.name, "--name");
    const key = keys.dataset(req.name) + req.path;
    // The size is checked against the quota again (it may differ from datasetPut's), and each
    // part's length is signed into its URL: the parts together cannot exceed it.
    await this.checkQuota(user, key, req.path, req.size, await this.storage.head(key), req.uploadId);
    const count = partCount(req.path, req.size, req.partSize);
    const beyond = req.partNumbers.filter((n) => n > count);
    if (beyond.length > 0)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `partNumbers: ${req.size} bytes in parts of ${req.partSize} make ${count} parts, not ${Math.max(...beyond)}`,
      );
    const urls = await Promise.all(
      req.partNumbers.map(async (n) => {
        const length = n < count ? req.partSize : req.size - (count - 1) * req.partSize;
        return { n, url: await this.storage.presignPart(key, req.uploadId, n, length) };
      }),
    );
    return { urls };
  }

  async commit(user: string, req: Req<"datasetCommit">): Promise<Reply<"datasetCommit">> {
    assertWritable(user, req.name, "--name");
    const key = keys.dataset(req.name) + req.path;
    if (req.uploadId !== undefined) {
      const parts = [...(req.parts ?? [])].sort((a, b) => a.n - b.n);
      if (parts.length === 0 || parts.some((p, i) => p.n !== i + 1))
        throw new ValidationError(
          "INVALID_ARGUMENT",
          `parts: a multipart upload is completed with parts 1..N, each once (got ${parts.map((p) => p.n).join(",")})`,
        );
      await this.storage.completeMultipart(key, req.uploadId, parts);
    }
    // Read back: what the manifest records is what S3 holds, whatever the client said or sent.
    const got = await this.storage.sha256(key).catch((e: unknown) => {
      if (e instanceof GridtuneError && /NoSuchKey|NotFound/.test(e.message))
        throw new GridtuneError("NOT_FOUND", `${req.path} was not uploaded to ${req.name}: put it again`);
      throw e;
    });
    if (got.sha256 !== req.sha256 || got.size !== req.size) {
      await this.storage.remove(key);
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `sha256: ${req.path} arrived as ${got.size} bytes with sha256 ${got.sha256}, not the ${req.size} bytes ` +
          `with sha256 ${req.sha256} declared; it was removed: put it again`,
      );
    }
    await this.serial(req.name, async () => {
      const m = await this.manifest(req.name);
      m.files[req.path] = { size: got.size, sha256: got.sha256 };
      await writeManifest(this.storage, m, this.index);
    });
    return { path: req.path, size: got.size, sha256: got.sha256 };
  }

  async list(user: string, req: Req<"datasetList">): Promise<Reply<"datasetList">> {
    // The index: one entry per dataset, never a listing of every file (datasetIndex.ts).
    const scope = keys.dataset(userScope(user)).slice(0, -1);
    const [mine, published, limits, uploads] = await Promise.all([
      this.index.ofScope(userScope(user)),
      req.mine === true ? Promise.resolve([]) : this.index.published(),
      this.limiter.limitsOf(user),
      liveUploads(this.storage, scope),
    ]);
    // as the quota counts them (usage() below): a file still in parts is one more file
    const pendingKeys = [...new Set(uploads.map((u) => u.key))];
    const pending = (await Promise.all(pendingKeys.map((k) => this.storage.head(k)))).filter((h) => !h);
    const uploadBytes = uploads.reduce((n, u) => n + u.bytes, 0);
    return {
      datasets: [...mine, ...published],
      usage: {
        bytes: mine.reduce((n, d) => n + d.bytes, 0) + uploadBytes,
        files: mine.reduce((n, d) => n + d.files, 0) + pending.length,
        maxBytes: limits.datasetBytes,
        maxFiles: limits.datasetFiles,
        uploads: uploads.length,
        uploadBytes,
      },
    };
  }

  async show(user: string, req: Req<"datasetShow">): Promise<Reply<"datasetShow">> {
    assertReadable(user, req.name, "dataset");
    const files = await this.files(req.name);
    const { page, next } = await this.page(files, req.from, (f) => Promise.resolve(f));
    return { name: req.name, files: page, next };
  }

  async get(user: string, req: Req<"datasetGet">): Promise<Reply<"datasetGet">> {
    assertReadable(user, req.name, "dataset");
    const files = await this.files(req.name);
    // URLs are minted a page at a time: phpo fetches a page's files before asking for the next
    const { page, next } = await this.page(files, req.from, async (f) => ({
      ...f,
      url: await this.storage.presignGet(keys.dataset(req.name) + f.path),
    }));
    return { name: req.name, files: page, next };
  }

  /** Items from `from` while the page's JSON stays within pageBytes (at least one, so pages move on). */
  private async page<T, V>(
    items: readonly T[],
    from: number,
    view: (t: T) => Promise<V>,
  ): Promise<{ page: V[]; next: number | null }> {
    const budget = this.pageBytes() - 512;
    const page: V[] = [];
    let bytes = 0;
    let i = from;
    for (; i < items.length; i++) {
      const v = await view(items[i]!);
      bytes += Buffer.byteLength(JSON.stringify(v)) + 1;
      if (bytes > budget && page.length > 0) break;
      page.push(v);
    }
    return { page, next: i < items.length ? i : null };
  }

  async remove(user: string, name: string): Promise<Reply<"datasetRemove">> {
    assertWritable(user, name, "dataset");
    const files = await this.files(name);
    await this.serial(name, async () => {
      for (const f of files) await this.storage.remove(keys.dataset(name) + f.path);
      await this.storage.remove(keys.datasetManifest(name));
      // last: a removal cut short stays listed, and `rm` again finishes it
      await this.index.remove(name);
    });
    return { name, files: files.length };
  }

  /** The dataset's files with their recorded checksums; NOT_FOUND when it has none. */
  private async files(name: string): Promise<DatasetFile[]> {
    const prefix = keys.dataset(name);
    const [objects, manifest] = await Promise.all([this.storage.list(prefix), this.manifest(name)]);
    if (objects.length === 0)
      throw new GridtuneError(
        "NOT_FOUND",
        `dataset ${name} does not exist (or has no files); see phpo dataset ls`,
      );
    return objects.map((o) => {
      const path = o.key.slice(prefix.length);
      const m = manifest.files[path];
      // A checksum recorded for other bytes (the file was replaced since) is not this file's.
      return { path, size: o.size, sha256: m && m.size === o.size ? m.sha256 : null };
    });
  }

  /**
   * The user's datasets once `size` bytes replace `head` (the object there now, if any) at `key`.
   * Unfinished multipart uploads count too, abandoned ones included until the sweep aborts them
   * (datasetUploads.ts): their parts are storage the user holds. The upload being resumed
   * (`uploadId`) is not counted twice: its parts become the file of `size`.
   */
  private async checkQuota(
    user: string,
    key: string,
    path: string,
    size: number,
    head: { size: number } | null,
    uploadId: string | null,
  ): Promise<LiveUpload[]> {
    const [usage, limits] = await Promise.all([this.usage(user, key, uploadId), this.limiter.limitsOf(user)]);
    checkDatasetQuota(
      user,
      limits,
      { bytes: usage.bytes - (head?.size ?? 0) + size, files: usage.files + (head ? 0 : 1) },
      `${path} (${size} bytes)`,
    );
    return usage.uploads;
  }

  /** Bytes and files of the user's objects and unfinished uploads (but `uploadId`'s, and a file at `key`). */
  private async usage(
    user: string,
    key: string,
    uploadId: string | null,
  ): Promise<{ bytes: number; files: number; uploads: LiveUpload[] }> {
    const prefix = keys.dataset(userScope(user)).slice(0, -1);
    const [objects, uploads] = await Promise.all([
      this.storage.list(prefix),
      liveUploads(this.storage, prefix),
    ]);
    const stored = new Set(objects.map((o) => o.key));
    // a file in parts is a file once, whether stored already or not; `key` is counted by the caller
    const pending = new Set(uploads.filter((u) => !stored.has(u.key) && u.key !== key).map((u) => u.key));
    const partBytes = uploads.filter((u) => u.uploadId !== uploadId).reduce((n, u) => n + u.bytes, 0);
    return {
      bytes: objects.reduce((n, o) => n + o.size, 0) + partBytes,
      files: objects.length + pending.size,
      uploads,
    };
  }

  private manifest(name: string): Promise<Manifest> {
    return readManifest(this.storage, name);
  }

  private async serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.queues.set(name, next);
    try {
      return await next;
    } finally {
      if (this.queues.get(name) === next) this.queues.delete(name);
    }
  }
}
