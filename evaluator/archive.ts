// Tarballs from outside the agent (sandboxes, checkpoints) are untrusted: they are extracted into
// a fresh temporary directory, only regular files and directories are kept (no links, devices or
// FIFOs), setuid/setgid bits and owners are dropped, absolute and `..` paths are refused, and the
// total size and entry count are capped before any byte is written.
import { lstat, mkdtemp, readdir, rename, rm, stat, mkdir } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import { GridtuneError } from "../protocol/errors.ts";

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

/** Creates a gzipped tarball of `paths` (relative to cwd); missing paths are skipped. */
export async function createTarball(cwd: string, paths: string[], file: string): Promise<string[]> {
  const present: string[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    if (!abs.startsWith(resolve(cwd) + sep))
      throw new GridtuneError("INVALID_ARGUMENT", `path ${p} is outside the working directory`);
    if (
      await stat(abs).then(
        () => true,
        () => false,
      )
    )
      present.push(relative(cwd, abs));
  }
  if (present.length === 0) return [];
  // portable: no uid/gid/mtime noise; follow: false keeps symlinks as links (refused on restore).
  await tar.c({ gzip: true, file, cwd, portable: true }, present);
  return present;
}

/**
 * A cheap change fingerprint of a set of paths: names, sizes and mtimes of every regular file
 * under them. Symlinks (which a payload could point anywhere) are not followed, and paths outside
 * cwd are refused.
 */
export async function fingerprint(cwd: string, paths: string[]): Promise<string> {
  const root = resolve(cwd);
  const parts: string[] = [];
  const walk = async (abs: string): Promise<void> => {
    const st = await lstat(abs).catch(() => null);
    if (!st || st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      for (const n of (await readdir(abs)).sort()) await walk(join(abs, n));
    } else if (st.isFile()) parts.push(`${relative(root, abs)}:${st.size}:${st.mtimeMs}`);
  };
  for (const p of paths) {
    const abs = resolve(root, p);
    if (abs !== root && !abs.startsWith(root + sep))
      throw new GridtuneError("INVALID_ARGUMENT", `path ${p} is outside the working directory`);
    await walk(abs);
  }
  return parts.join("|");
}
