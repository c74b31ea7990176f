// Tarballs from outside the agent (sandboxes, checkpoints) are untrusted: they are extracted into
// a fresh temporary directory, only regular files and directories are kept (no links, devices or
// FIFOs), setuid/setgid bits and owners are dropped, absolute and `..` paths are refused, and the
// total size and entry count are capped before any byte is written.
import { lstat, mkdtemp, readdir, rename, rm, mkdir } from "node:fs/promises";
import { closeSync, createReadStream, createWriteStream, read } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import * as tar from "tar";
import { GridtuneError } from "../protocol/errors.ts";
import { PathRefusedError, PayloadTree, withTree, type OpenEntry, type TreeEntry } from "./payloadFs.ts";

export interface ExtractLimits {
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 2 * 1024 ** 3, maxEntries: 100_000 };

/**
 * Extracts `file` into `dest` (merging with what is there) under the limits; throws ARCHIVE_REJECTED.
 * Two passes: every header is checked by listing the archive first (nothing written), then it is
 * extracted into a scratch directory beside `dest` and moved in, never through a symlink.
 */
export async function safeExtract(
  file: string,
  dest: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<string[]> {
  await mkdir(dest, { recursive: true });
  await scan(file, limits);
  const tmp = await mkdtemp(join(dirname(resolve(dest)), ".extract-"));
  try {
    // The filter repeats the checks: the file could have changed between the passes.
    let refusal: string | null = null;
    const x = tar.x({
      cwd: tmp,
      strict: true,
      preserveOwner: false,
      maxDecompressionRatio: 1000,
      filter: (path, entry) => {
        const why = refusalOf(path, entry as tar.ReadEntry);
        if (why) refusal ??= why;
        const e = entry as tar.ReadEntry;
        if (typeof e.mode === "number") e.mode &= 0o755;
        return why === null;
      },
    });
    await pipeline(createReadStream(file), x);
    if (refusal !== null) throw new GridtuneError("ARCHIVE_REJECTED", refusal);
    return await mergeInto(tmp, dest);
  } catch (e) {
    if (e instanceof GridtuneError) throw e;
    throw new GridtuneError(
      "ARCHIVE_REJECTED",
      `the archive was rejected: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  } finally {
    await rm(tmp, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}

function refusalOf(path: string, e: tar.ReadEntry): string | null {
  if (path.startsWith("/") || path.split("/").includes(".."))
    return `entry ${JSON.stringify(path)} escapes the directory (absolute or '..')`;
  if (e.type !== "File" && e.type !== "OldFile" && e.type !== "Directory") {
    return `entry ${JSON.stringify(path)} is a ${e.type}; only regular files and directories are allowed`;
  }
  return null;
}

/** The listing pass: refuses bad entries and archives over the limits before anything is written. */
async function scan(file: string, limits: ExtractLimits): Promise<void> {
  let total = 0;
  let count = 0;
  let refusal: string | null = null;
  try {
    await tar.t({
      file,
      strict: true,
      maxDecompressionRatio: 1000,
      onReadEntry: (e) => {
        if (refusal) return;
        refusal = refusalOf(e.path, e);
        total += e.size ?? 0;
        if (++count > limits.maxEntries) refusal ??= `more than ${limits.maxEntries} entries`;
        else if (total > limits.maxBytes) refusal ??= `more than ${limits.maxBytes} bytes when extracted`;
      },
    });
  } catch (e) {
    throw new GridtuneError(
      "ARCHIVE_REJECTED",
      `the archive was rejected: ${refusal ?? (e instanceof Error ? e.message : String(e))}`,
      { cause: e },
    );
  }
  if (refusal !== null) throw new GridtuneError("ARCHIVE_REJECTED", refusal);
}

/** Refuses to write through a symlink that already exists in dest (e.g. one a payload made). */
async function assertPlainParents(dest: string, rel: string): Promise<void> {
  let cur = resolve(dest);
  for (const part of rel.split(sep).slice(0, -1)) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => null);
    if (st?.isSymbolicLink())
      throw new GridtuneError(
        "ARCHIVE_REJECTED",
        `entry ${rel} would be written through the symlink ${part}`,
      );
  }
}

async function mergeInto(src: string, dest: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const from = join(dir, name);
      const rel = relative(src, from);
      const to = resolve(dest, rel);
      if (!to.startsWith(resolve(dest) + sep))
        throw new GridtuneError("ARCHIVE_REJECTED", `entry ${rel} escapes the directory`);
      await assertPlainParents(dest, rel);
      const st = await lstat(from);
      const existing = await lstat(to).catch(() => null);
      if (existing?.isSymbolicLink())
        throw new GridtuneError("ARCHIVE_REJECTED", `entry ${rel} would replace a symlink`);
      if (st.isDirectory()) {
        await mkdir(to, { recursive: true });
        await walk(from);
      } else {
        await mkdir(dirname(to), { recursive: true });
        await rm(to, { recursive: true, force: true });
        await rename(from, to);
        out.push(rel);
      }
    }
  };
  await walk(src);
  return out;
}

/** What createTarball packed, and what it left out (and why), for the job's log. */
export interface TarballResult {
  /** The named paths that exist, normalized; [] means no tarball was written. */
  present: string[];
  skipped: string[];
}

export interface TarballLimits {
  /** Most bytes of file data packed (before compression). */
  maxBytes: number;
  maxEntries: number;
}

/** Refuses a named path that is outside cwd before anything is read. */
function assertInside(cwd: string, p: string): void {
  const abs = resolve(cwd, p);
  if (abs !== resolve(cwd) && !abs.startsWith(resolve(cwd) + sep))
    throw new GridtuneError("INVALID_ARGUMENT", `path ${p} is outside the working directory`);
}

/**
 * Creates a gzipped tarball of `paths` (files or directories relative to cwd, a payload's working
 * directory); missing paths are skipped. The tar is written here, not by a tar that opens paths:
 * every file is found and opened through PayloadTree (no link followed by the kernel, nothing
 * outside cwd), its header comes from fstat on that descriptor and its bytes are read through it.
 * Links and special files inside the trees are left out (restoring refuses them anyway), and so
 * is a named path that leads outside; `skipped` says which and why. Only regular files and
 * directories are stored, without owners (like tar's portable mode).
 */
export async function createTarball(
  cwd: string,
  paths: string[],
  file: string,
  limits: TarballLimits = { maxBytes: DEFAULT_EXTRACT_LIMITS.maxBytes, maxEntries: 100_000 },
): Promise<TarballResult> {
  for (const p of paths) assertInside(cwd, p);
  const tree = PayloadTree.open(cwd);
  try {
    const listing = tree.list(paths, limits);
    if (listing.present.length === 0) return { present: [], skipped: listing.skipped };
    const total = listing.entries.reduce((n, e) => n + e.size, 0);
    if (total > limits.maxBytes)
      throw new GridtuneError(
        "TOO_LARGE",
        `${total} bytes of files to pack exceed the limit of ${limits.maxBytes} (uncompressed)`,
      );
    await pipeline(Readable.from(tarStream(tree, listing.entries)), createGzip(), createWriteStream(file));
    return { present: listing.present, skipped: listing.skipped };
  } catch (e) {
    await rm(file, { force: true });
    throw e;
  } finally {
    tree.close();
  }
}

const BLOCK = 512;
const CHUNK = 256 * 1024;
const readAt = promisify(read);

/** The tar stream of entries, each file read through the descriptor that was checked. */
async function* tarStream(tree: PayloadTree, entries: TreeEntry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (e.kind === "dir") {
      yield* header({
        path: `${e.rel}/`,
        type: "Directory",
        mode: 0o755,
        size: 0,
        mtime: new Date(e.mtimeMs),
      });
      continue;
    }
    // listed as a file: anything else now (gone, a link out, a FIFO) is a change under the walk
    let f: OpenEntry | null;
    try {
      f = tree.open(e.rel);
    } catch (err) {
      if (err instanceof PathRefusedError) throw changed(e.rel);
      throw err;
    }
    if (f?.kind !== "file") {
      if (f) closeSync(f.fd);
      throw changed(e.rel);
    }
    try {
      const size = f.stat.size;
      yield* header({ path: e.rel, type: "File", mode: f.stat.mode & 0o755, size, mtime: f.stat.mtime });
      // exactly the size in the header: a file that grows is cut there, one that shrinks fails
      for (let pos = 0; pos < size;) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
        const { bytesRead } = await readAt(f.fd, buf, 0, buf.length, pos);
        if (bytesRead === 0) throw changed(e.rel);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
      if (size % BLOCK) yield Buffer.alloc(BLOCK - (size % BLOCK));
    } finally {
      closeSync(f.fd);
    }
  }
  yield Buffer.alloc(2 * BLOCK); // end of archive
}

function* header(h: tar.HeaderData): Generator<Buffer> {
  const hd = new tar.Header(h);
  // a path over the ustar fields' 100+155 bytes needs a PAX header before it
  if (hd.encode()) yield new tar.Pax({ path: h.path, size: h.size, mtime: h.mtime }).encode();
  if (!hd.block) throw new GridtuneError("INTERNAL", `cannot encode a tar header for ${h.path}`);
  yield hd.block;
}

function changed(rel: string): GridtuneError {
  return new GridtuneError(
    "CONFLICT",
    `${rel} changed while the checkpoint was written (removed, shrunk or replaced); it is taken again next time`,
    { retryable: true },
  );
}

export interface Fingerprint {
  /** "" when no file is there. */
  value: string;
  /** What a tarball of the paths would leave out, and why (as TarballResult.skipped). */
  skipped: string[];
}

/**
 * A cheap change fingerprint of a set of paths: names, sizes and mtimes of every regular file
 * under them, from the same walk as createTarball (no link followed out of cwd; links and special
 * files inside are not part of a checkpoint, so not of its fingerprint either).
 */
export function fingerprint(cwd: string, paths: string[]): Fingerprint {
  for (const p of paths) assertInside(cwd, p);
  const listing = withTree(cwd, (t) => t.list(paths));
  return {
    value: listing.entries
      .filter((e) => e.kind === "file")
      .map((e) => `${e.rel}:${e.size}:${e.mtimeMs}`)
      .join("|"),
    skipped: listing.skipped,
  };
}
