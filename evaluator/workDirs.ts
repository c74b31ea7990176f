// The directories of one attempt and the payload's files in them. For a short evaluation these
// file-system calls are much of an agent's CPU (each is a system call, about 30 to 60 µs on a
// small VM), so they take as few calls as stay safe:
// - the scratch directory (log, tarballs) is made only when something is written there;
// - a tree is removed by readdir + unlink + rmdir, not by fs.rm's lstat-first walk (half the calls
//   for a working directory of a few files);
// - a payload's file is resolved once: realpath, then one open. The payload wrote it, possibly in a
//   container, but the agent reads it on the host: a symlink output.json → /etc/shadow (or a
//   symlinked directory on the way) must not make the agent read, inline or upload a host file.
import { constants, type Dirent } from "node:fs";
import { mkdir, open, readdir, realpath, rm, rmdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { GridtuneError } from "../protocol/errors.ts";

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** An empty directory at dir: usually one mkdir (a leftover of a crashed attempt is removed first). */
export async function freshDir(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") await mkdir(dir, { recursive: true });
    else if (errno(e) === "EEXIST") {
      await removeTree(dir);
      await mkdir(dir);
    } else throw e;
  }
}

/** Removes dir and everything below it (symlinks are removed, never followed); absent is fine. */
export async function removeTree(dir: string): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === "ENOENT") return;
    if (errno(e) === "ENOTDIR") return unlink(dir);
    throw e;
  }
  try {
    await Promise.all(
      entries.map((d) => (d.isDirectory() ? removeTree(join(dir, d.name)) : unlink(join(dir, d.name)))),
    );
    await rmdir(dir);
  } catch {
    // e.g. a directory the payload made read-only, or one it still writes to: fs.rm retries
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

const realRoots = new Map<string, Promise<string>>();

/**
 * The real path of an attempt's working directory: its parent (the agent's work root) is resolved
 * once per process, the directory itself is ours (made by freshDir, never a symlink).
 */
export function realPathOf(dir: string): Promise<string> {
  const parent = dirname(dir);
  let p = realRoots.get(parent);
  if (!p) {
    p = realpath(parent);
    realRoots.set(parent, p);
    p.catch(() => realRoots.delete(parent));
  }
  return p.then((r) => join(r, basename(dir)));
}

/** A directory made on first use; ensure() is idempotent and cheap after the first call. */
export class LazyDir {
  private made: Promise<string> | null = null;
  constructor(readonly path: string) {}
  ensure(): Promise<string> {
    this.made ??= mkdir(this.path, { recursive: true }).then(() => this.path);
    return this.made;
  }
}

/** A payload's file: its real path (inside the working directory) and size. */
export interface PayloadFile {
  path: string;
  size: number;
}

/** path with every symlink resolved, if it exists and lies inside realRoot; refused if outside. */
async function resolveInside(realRoot: string, path: string): Promise<string | null> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    if (["ENOENT", "ENOTDIR", "ELOOP"].includes(errno(e) ?? "")) return null;
    throw e;
  }
  if (!real.startsWith(realRoot + sep))
    throw new GridtuneError(
      "OUTPUT_INVALID",
      `${basename(path)} resolves outside the working directory (a symlink?); it is not read`,
    );
  return real;
}

/**
 * The regular file at path if, with every symlink resolved, it lies inside the working directory
 * whose real path is realRoot; null if there is none (or it is not a regular file). A file that
 * resolves outside is refused with OUTPUT_INVALID.
 */
export async function payloadFile(realRoot: string, path: string): Promise<PayloadFile | null> {
  const real = await resolveInside(realRoot, path);
  if (real === null) return null;
  const st = await stat(real);
  return st.isFile() ? { path: real, size: st.size } : null;
}

/**
 * Reads a payload's file of at most max bytes: one realpath and one open. O_NOFOLLOW keeps a
 * symlink swapped in after the realpath from being followed, O_NONBLOCK keeps a FIFO from
 * blocking the open.
 */
export async function readPayloadFile(realRoot: string, path: string, max: number): Promise<Buffer | null> {
  const real = await resolveInside(realRoot, path);
  if (real === null) return null;
  const f = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await f.stat();
    if (!st.isFile()) return null;
    if (st.size > max)
      throw new GridtuneError("OUTPUT_INVALID", `${basename(path)} is ${st.size} bytes; the limit is ${max}`);
    return await f.readFile();
  } finally {
    await f.close();
  }
}
