// Tarballs from outside the agent (sandboxes, checkpoints) are untrusted: they are extracted into
// a fresh temporary directory, only regular files and directories are kept (no links, devices or
// FIFOs), setuid/setgid bits and owners are dropped, absolute and `..` paths are refused, and the
// total size and entry count are capped before any byte is written.
import { mkdtemp, readdir, rename, rm, stat, mkdir } from "node:fs/promises";
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

/** Extracts `file` into `dest` (merging with what is there) under the limits; throws ARCHIVE_REJECTED. */
export async function safeExtract(file: string, dest: string, limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS): Promise<string[]> {
  await mkdir(dest, { recursive: true });
  const tmp = await mkdtemp(join(dest, ".extract-"));
  let total = 0;
  let count = 0;
  let refusal: string | null = null;
  const refuse = (why: string) => {
    refusal ??= why;
    x.abort(new GridtuneError("ARCHIVE_REJECTED", why));
  };
  const x = tar.x({
    cwd: tmp,
    strict: true,
    preserveOwner: false,
    maxDecompressionRatio: 1000,
    filter: (path, entry) => {
      const e = entry as tar.ReadEntry;
      if (path.startsWith("/") || path.split("/").includes("..")) {
        refuse(`entry ${JSON.stringify(path)} escapes the directory (absolute or '..')`);
        return false;
      }
      if (e.type !== "File" && e.type !== "OldFile" && e.type !== "Directory") {
        refuse(`entry ${JSON.stringify(path)} is a ${e.type}; only regular files and directories are allowed`);
        return false;
      }
      if (typeof e.mode === "number") e.mode &= 0o755;
      total += e.size ?? 0;
      if (++count > limits.maxEntries) refuse(`more than ${limits.maxEntries} entries`);
      else if (total > limits.maxBytes) refuse(`more than ${limits.maxBytes} bytes when extracted`);
      return refusal === null;
    },
  });
  try {
    await pipeline(createReadStream(file), x);
    if (refusal !== null) throw new GridtuneError("ARCHIVE_REJECTED", refusal);
    const moved = await mergeInto(tmp, dest);
    return moved;
  } catch (e) {
    if (e instanceof GridtuneError) throw e;
    const msg = refusal ?? (e instanceof Error ? e.message : String(e));
    throw new GridtuneError("ARCHIVE_REJECTED", `the archive was rejected: ${msg}`, { cause: e });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function mergeInto(src: string, dest: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const from = join(dir, name);
      const rel = relative(src, from);
      const to = resolve(dest, rel);
      if (!to.startsWith(resolve(dest) + sep)) throw new GridtuneError("ARCHIVE_REJECTED", `entry ${rel} escapes the directory`);
      const st = await stat(from);
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
    if (!abs.startsWith(resolve(cwd) + sep)) throw new GridtuneError("INVALID_ARGUMENT", `path ${p} is outside the working directory`);
    if (await stat(abs).then(() => true, () => false)) present.push(relative(cwd, abs));
  }
  if (present.length === 0) return [];
  // portable: no uid/gid/mtime noise; follow: false keeps symlinks as links (refused on restore).
  await tar.c({ gzip: true, file, cwd, portable: true }, present);
  return present;
}

/** A cheap change fingerprint of a set of paths: names, sizes and mtimes of every file under them. */
export async function fingerprint(cwd: string, paths: string[]): Promise<string> {
  const parts: string[] = [];
  const walk = async (abs: string): Promise<void> => {
    const st = await stat(abs).catch(() => null);
    if (!st) return;
    if (st.isDirectory()) {
      for (const n of (await readdir(abs)).sort()) await walk(join(abs, n));
    } else parts.push(`${relative(cwd, abs)}:${st.size}:${st.mtimeMs}`);
  };
  for (const p of paths) await walk(resolve(cwd, p));
  return parts.join("|");
}
