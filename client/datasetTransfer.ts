// The transfers of `phpo dataset`: hashing, one-PUT and multipart uploads through the presigned
// URLs steering mints, and checked downloads. phpo never holds S3 keys.
//
// Resuming: a multipart upload's state (its upload id and the ETag of every part S3 accepted) is
// written after each part to a small JSON file in the state directory (one per dataset file,
// default ~/.local/state/gridtune/uploads). A re-run of `put` continues from it: the parts it
// lists are not sent again. Files already complete are skipped by steering (same size and sha256
// recorded in the dataset). The state file is removed once steering has checked the file.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { type DatasetFile, MAX_PART_URLS, MAX_PARTS, MIN_PART_BYTES } from "../protocol/datasets.ts";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";
import type { ApiClient } from "./api.ts";

// The file walk is shared with `gridtune-steering admin dataset publish DIR` (protocol/).
import type { LocalFile } from "../protocol/localFiles.ts";
export { localFiles, type LocalFile } from "../protocol/localFiles.ts";

export async function sha256File(abs: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(abs)) h.update(c as Buffer);
  return h.digest("hex");
}

/** The default state directory of resumable uploads. */
export function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME ?? join(env.HOME ?? homedir(), ".local", "state");
  return join(base, "gridtune", "uploads");
}

const UploadState = z.object({
  name: z.string(),
  path: z.string(),
  size: z.number(),
  sha256: z.string(),
  uploadId: z.string(),
  partSize: z.number(),
  parts: z.record(z.string(), z.string()),
});
type UploadState = z.infer<typeof UploadState>;

/**
 * The deadline of a commit: steering reads the whole file back through SHA-256 before it answers,
 * so the usual request deadline grows by a second per 20 MB (a slow link to S3).
 */
export function commitTimeoutMs(api: Pick<ApiClient, "timeoutMs">, size: number): number {
  return api.timeoutMs + Math.ceil(size / 20e6) * 1000;
}

export interface PutOptions {
  /** Files over this many bytes go in parts. */
  threshold: number;
  /** Bytes of each part (raised when the file would need more than S3's 10,000 parts). */
  partSize: number;
  stateDir: string;
  progress: (line: string) => void;
  /** Called after each part S3 accepted (tests stop an upload here to resume it). */
  onPart?: (n: number, of: number) => void;
}

export interface PutResult extends DatasetFile {
  /** "skipped": already in the dataset; "single"/"multipart": sent now. */
  how: "skipped" | "single" | "multipart";
  /** Parts sent by this run, and parts a previous run had sent. */
  partsSent: number;
  partsResumed: number;
}

export async function putFile(api: ApiClient, name: string, f: LocalFile, o: PutOptions): Promise<PutResult> {
  const sha256 = await sha256File(f.abs);
  const base = { name, path: f.path, size: f.size, sha256 };
  if (f.size <= o.threshold) {
    const r = await api.call("datasetPut", base);
    if (r.type === "complete")
      return { path: f.path, size: f.size, sha256, how: "skipped", partsSent: 0, partsResumed: 0 };
    if (r.type !== "single")
      throw new GridtuneError("PROTOCOL_MISMATCH", `steering answered ${r.type} to a one-PUT upload`);
    await putBytes(r.url, await readFile(f.abs), `${f.path}`);
    const c = await api.call("datasetCommit", base, commitTimeoutMs(api, f.size));
    return { ...c, how: "single", partsSent: 0, partsResumed: 0 };
  }
  const partSize = Math.max(o.partSize, MIN_PART_BYTES, Math.ceil(f.size / MAX_PARTS));
  const stateFile = join(
    o.stateDir,
    `${createHash("sha256").update(`${name}\0${f.path}`).digest("hex")}.json`,
  );
  let state = await readState(stateFile);
  if (
    state &&
    (state.size !== f.size || state.sha256 !== sha256 || state.partSize !== partSize || state.name !== name)
  )
    state = null; // the file changed since: start over
  const r = await api.call("datasetPut", {
    ...base,
    partSize,
    ...(state ? { uploadId: state.uploadId } : {}),
  });
  if (r.type === "complete") {
    await rm(stateFile, { force: true });
    return { path: f.path, size: f.size, sha256, how: "skipped", partsSent: 0, partsResumed: 0 };
  }
  if (r.type !== "multipart")
    throw new GridtuneError("PROTOCOL_MISMATCH", `steering answered ${r.type} to a multipart upload`);
  if (!state || state.uploadId !== r.uploadId)
    state = { name, path: f.path, size: f.size, sha256, uploadId: r.uploadId, partSize, parts: {} };
  await saveState(stateFile, state);
  const count = Math.max(1, Math.ceil(f.size / partSize));
  const resumed = Object.keys(state.parts).length;
  const todo = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !(String(n) in state.parts));
  if (resumed > 0) o.progress(`${name}/${f.path}: resuming, ${resumed}/${count} parts already sent`);
  const fh = await open(f.abs, "r");
  let sent = 0;
  try {
    for (let i = 0; i < todo.length; i += MAX_PART_URLS) {
      const batch = todo.slice(i, i + MAX_PART_URLS);
      const { urls } = await api.call("datasetParts", {
        name,
        path: f.path,
        uploadId: state.uploadId,
        size: f.size,
        partSize,
        partNumbers: batch,
      });
      for (const { n, url } of urls) {
        const start = (n - 1) * partSize;
        const len = Math.min(partSize, f.size - start);
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, start);
        state.parts[String(n)] = await putBytes(url, buf, `${f.path} part ${n}`);
        await saveState(stateFile, state);
        sent++;
        const done = Object.keys(state.parts).length;
        o.progress(`${name}/${f.path}: part ${done}/${count} (${Math.round((100 * done) / count)}%)`);
        o.onPart?.(n, count);
      }
    }
  } finally {
    await fh.close();
  }
  const parts = Object.entries(state.parts).map(([n, etag]) => ({ n: Number(n), etag }));
  const c = await api.call(
    "datasetCommit",
    { ...base, uploadId: state.uploadId, parts },
    commitTimeoutMs(api, f.size),
  );
  await rm(stateFile, { force: true });
  return { ...c, how: "multipart", partsSent: sent, partsResumed: resumed };
}

/** One presigned PUT; returns S3's ETag. Errors name the file, never the signed URL. */
async function putBytes(url: string, data: Buffer, what: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { method: "PUT", body: data, headers: { "content-length": String(data.length) } });
  } catch (err) {
    throw new UnavailableError(
      `cannot upload ${what} to ${new URL(url).origin}: ${(err as Error).message}; run the same put again to resume`,
      { cause: err },
    );
  }
  const body = (await res.text().catch(() => "")).slice(0, 300);
  if (!res.ok)
    throw new GridtuneError(
      "STORAGE_FAILED",
      `S3 refused ${what} (HTTP ${res.status}): ${body}; the presigned link may have expired: run the same put again`,
    );
  return (res.headers.get("etag") ?? "").replaceAll('"', "");
}

async function readState(file: string): Promise<UploadState | null> {
  const text = await readFile(file, "utf8").catch(() => null);
  if (text === null) return null;
  try {
    const r = UploadState.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null; // a damaged state file: start that file over
  }
}

async function saveState(file: string, s: UploadState): Promise<void> {
  await mkdir(resolve(file, ".."), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(s), { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Streams a presigned GET to `<dest>.part` while hashing it, and renames it to `dest` only when the
 * sha256 matches the one steering recorded (null: none recorded, nothing to check against).
 */
export async function getFile(
  url: string,
  dest: string,
  f: DatasetFile,
  progress: (line: string) => void,
): Promise<{ sha256: string; verified: boolean }> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new UnavailableError(
      `cannot fetch ${f.path} from ${new URL(url).origin}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new GridtuneError(
      "STORAGE_FAILED",
      `S3 refused ${f.path} (HTTP ${res.status}): run the command again`,
    );
  }
  await mkdir(resolve(dest, ".."), { recursive: true });
  const part = `${dest}.part`;
  const h = createHash("sha256");
  const out = await open(part, "w");
  let bytes = 0;
  let shown = 0;
  try {
    for await (const c of res.body as AsyncIterable<Uint8Array>) {
      h.update(c);
      await out.write(c);
      bytes += c.length;
      // about every tenth of a large file
      if (f.size >= 64 * 1024 * 1024 && bytes - shown >= f.size / 10) {
        shown = bytes;
        progress(`${f.path}: ${Math.round((100 * bytes) / f.size)}%`);
      }
    }
  } catch (err) {
    await out.close();
    await rm(part, { force: true });
    throw err;
  }
  await out.close();
  const sha256 = h.digest("hex");
  if (f.sha256 !== null && sha256 !== f.sha256) {
    await rm(part, { force: true });
    throw new GridtuneError(
      "STORAGE_FAILED",
      `${f.path}: received ${bytes} bytes with sha256 ${sha256}, but the dataset records ${f.sha256}; ` +
        `nothing was written: run the command again`,
    );
  }
  await rename(part, dest);
  return { sha256, verified: f.sha256 !== null };
}
