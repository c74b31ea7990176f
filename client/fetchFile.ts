// Presigned GETs from S3 (download, logs): errors name the artifact, never the signed URL.
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";

/** A presigned GET's response, checked: errors name the artifact, never the signed URL. */
export async function fetchResponse(url: string, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new UnavailableError(
      `cannot fetch ${what} from ${new URL(url).origin}: ${(err as Error).message}; is the S3 server running?`,
      { cause: err },
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new GridtuneError(
      "STORAGE_FAILED",
      `S3 refused ${what} (HTTP ${res.status}); the presigned link may have expired: run the command again`,
    );
  }
  return res;
}

export async function fetchBytes(url: string, what: string): Promise<Buffer> {
  return Buffer.from(await (await fetchResponse(url, what)).arrayBuffer());
}

/** Streams to `<path>.part`, then renames: an interrupted download never looks complete. */
export async function fetchToFile(url: string, path: string, what: string): Promise<number> {
  const res = await fetchResponse(url, what);
  const part = `${path}.part`;
  let bytes = 0;
  try {
    const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
    body.on("data", (c: Buffer) => (bytes += c.length));
    await pipeline(body, createWriteStream(part));
    await rename(part, path);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  return bytes;
}
