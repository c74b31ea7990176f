// HTTP transfers against presigned S3 URLs: agents hold no S3 keys. Every request has a deadline;
// network errors and 5xx answers are retried with exponential backoff, then fail clearly.
// URLs are bearer tokens: they never appear in errors or logs (only the object path does).
import { createReadStream, createWriteStream } from "node:fs";
import { stat, unlink } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GridtuneError } from "../protocol/errors.ts";

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  requestTimeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 15_000,
  requestTimeoutMs: 120_000,
};

/** Inputs of a claimed attempt: about 7.5 minutes of tries, so an S3 outage of minutes is waited out. */
export const DEFAULT_INPUT_RETRY: RetryPolicy = {
  attempts: 20,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  requestTimeoutMs: 120_000,
};

/** The object path of a presigned URL, without its query (the signature). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/** The back-off between tries: rejects with the signal's reason when it aborts (the tries end). */
function backOff(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason as Error)), {
      once: true,
    });
  });
}

async function withRetry<T>(
  what: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  fn: (s: AbortSignal) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < policy.attempts; i++) {
    if (i > 0) await backOff(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (i - 1)), signal);
    const s = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(policy.requestTimeoutMs)])
      : AbortSignal.timeout(policy.requestTimeoutMs);
    try {
      return await fn(s);
    } catch (e) {
      if (signal?.aborted) throw e;
      if (e instanceof GridtuneError && !e.retryable) throw e;
      last = e;
    }
  }
  const reason = last instanceof Error ? last.message : String(last);
  throw new GridtuneError("STORAGE_FAILED", `${what} failed after ${policy.attempts} tries: ${reason}`, {
    cause: last,
  });
}

function httpError(status: number, what: string, body: string): GridtuneError {
  const expired = status === 403 && /expired/i.test(body);
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? "";
  const msg = expired
    ? `${what}: the presigned URL has expired`
    : `${what}: HTTP ${status}${code ? ` ${code}` : ""}`;
  return new GridtuneError("STORAGE_FAILED", msg, { retryable: status >= 500 || status === 429 });
}

/** Downloads to a file, refusing more than maxBytes. */
export async function download(
  url: string,
  dest: string,
  opts: { maxBytes: number; signal?: AbortSignal; retry?: RetryPolicy },
): Promise<number> {
  const what = `download of ${describeUrl(url)}`;
  return withRetry(what, opts.retry ?? DEFAULT_RETRY, opts.signal, async (signal) => {
    const res = await fetch(url, { signal });
    if (!res.ok || !res.body) throw httpError(res.status, what, await res.text().catch(() => ""));
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > opts.maxBytes) {
      await res.body.cancel();
      throw new GridtuneError(
        "TOO_LARGE",
        `${what}: ${declared} bytes exceeds the limit of ${opts.maxBytes}`,
      );
    }
    let n = 0;
    const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
    body.on("data", (chunk: Buffer) => {
      n += chunk.length;
      if (n > opts.maxBytes)
        body.destroy(new GridtuneError("TOO_LARGE", `${what}: more than ${opts.maxBytes} bytes`));
    });
    try {
      await pipeline(body, createWriteStream(dest));
    } catch (e) {
      await unlink(dest).catch(() => undefined); // no partial file is left behind
      throw e;
    }
    return n;
  });
}

/**
 * What to upload: the agent's own file by path, or a payload's file already opened and checked
 * (payloadFs.ts): its first `size` bytes are sent, read through the descriptor, never reopened by
 * path. The caller closes the descriptor.
 */
export type UploadSource = string | { fd: number; size: number };

/** A stream of the source's bytes; an opened file is read by position from its first byte (its fd stays open). */
export function bodyOf(source: UploadSource, size: number): Readable {
  if (typeof source === "string") return createReadStream(source);
  if (size === 0) return Readable.from([]);
  // start: positional reads, so each retry sends the file from its first byte again
  return createReadStream("", { fd: source.fd, start: 0, end: size - 1, autoClose: false });
}

/** Uploads a file with a presigned PUT; returns its size and the ETag S3 answered. */
export async function upload(
  url: string,
  source: UploadSource,
  opts: { signal?: AbortSignal; retry?: RetryPolicy; contentType?: string } = {},
): Promise<{ size: number; etag: string }> {
  const what = `upload to ${describeUrl(url)}`;
  const size = typeof source === "string" ? (await stat(source)).size : source.size;
  return withRetry(what, opts.retry ?? DEFAULT_RETRY, opts.signal, async (signal) => {
    const res = await fetch(url, {
      method: "PUT",
      signal,
      headers: {
        "content-length": String(size),
        "content-type": opts.contentType ?? "application/octet-stream",
      },
      body: Readable.toWeb(bodyOf(source, size)),
      duplex: "half",
    });
    if (!res.ok) throw httpError(res.status, what, await res.text().catch(() => ""));
    await res.body?.cancel();
    return { size, etag: (res.headers.get("etag") ?? "").replaceAll('"', "") };
  });
}
