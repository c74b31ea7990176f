// The directories of one attempt and the payload's files in them.
//
// Cost: for a short evaluation these file-system calls were a third of an agent's CPU. Each async
// fs call costs the event loop a thread-pool hand-off (a futex wake to queue it, an eventfd write
// and an epoll wake to complete it) on top of the system call itself, which for these small
// operations on a local disk is the cheaper part. So the metadata operations of an attempt (make
// and remove its directories, write input.json, stat and read output.json) are synchronous: each is
// one system call of tens of µs. Large or unbounded work stays asynchronous: downloads, uploads,
// tarballs, and removing a tree of more than SYNC_REMOVE_ENTRIES entries.
// A work directory on a file system that hangs (a stuck NFS mount) then stalls the agent's event
// loop, heartbeats included: its leases lapse and steering gives its jobs to other agents, which
// is what should happen to a node that cannot write its work directory.
//
// Safety: a payload's file is resolved once (realpath) and must lie inside the working directory.
// The payload wrote it, possibly in a container, but the agent reads it on the host: a symlink
// output.json → /etc/shadow (or a symlinked directory on the way) must not make the agent read,
// inline or upload a host file.
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Dirent,
} from "node:fs";
import { mkdir, realpath, rm } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { GridtuneError } from "../protocol/errors.ts";

/** Trees with more entries than this (a payload's many outputs) are removed asynchronously. */
const SYNC_REMOVE_ENTRIES = 256;

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** An empty directory at dir: usually one mkdir (a leftover of a crashed attempt is removed first). */
export async function freshDir(dir: string): Promise<void> {
  try {
    mkdirSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") await mkdir(dir, { recursive: true });
    else if (errno(e) === "EEXIST") {
      await removeTree(dir);
      mkdirSync(dir);
    } else throw e;
  }
}

/** Writes a small file the agent hands to the payload (input.json, the training file list). */
export function writeSmallFile(path: string, text: string): void {
  writeFileSync(path, text);
}

/** Removes dir and everything below it (symlinks are removed, never followed); absent is fine. */
export async function removeTree(dir: string): Promise<void> {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === "ENOENT") return;
    if (errno(e) === "ENOTDIR") return unlinkSync(dir);
    throw e;
  }
  try {
    if (entries.length > SYNC_REMOVE_ENTRIES || entries.some((d) => d.isDirectory())) {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      return;
    }
    for (const d of entries) unlinkSync(join(dir, d.name));
    rmdirSync(dir);
  } catch {
    // e.g. a file the payload made undeletable, or one it still writes to: fs.rm retries
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Removes dir if it exists (the existence check raises no error, unlike readdir on nothing). */
export async function removeLeftover(dir: string): Promise<void> {
  if (statSync(dir, { throwIfNoEntry: false })) await removeTree(dir);
}

/**
 * Removes the working and scratch directories (`<instance>-…`, `.<instance>-…`) that an earlier run
 * of this agent instance left under workRoot; another instance's entries are left alone. Returns
 * how many were removed.
 */
export async function removeOwnWorkDirs(workRoot: string, instance: string): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(workRoot);
  } catch (e) {
    if (errno(e) === "ENOENT") return 0;
    throw e;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(`${instance}-`) && !name.startsWith(`.${instance}-`)) continue;
    await removeTree(join(workRoot, name));
    removed++;
  }
  return removed;
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

/** A payload's file: its real path (inside the working directory) and size. */
export interface PayloadFile {
  path: string;
  size: number;
}

/** path with every symlink resolved, if it exists and lies inside realRoot; refused if outside. */
function resolveInside(realRoot: string, path: string): string | null {
  let real: string;
  try {
    real = realpathSync.native(path);
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
export function payloadFile(realRoot: string, path: string): PayloadFile | null {
  const real = resolveInside(realRoot, path);
  if (real === null) return null;
  const st = statSync(real);
  return st.isFile() ? { path: real, size: st.size } : null;
}

/**
 * Reads a payload's file of at most max bytes: one realpath and one open. O_NOFOLLOW keeps a
 * symlink swapped in after the realpath from being followed, O_NONBLOCK keeps a FIFO from
 * blocking the open.
 */
export function readPayloadFile(realRoot: string, path: string, max: number): Buffer | null {
  const real = resolveInside(realRoot, path);
  if (real === null) return null;
  const fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return null;
    if (st.size > max)
      throw new GridtuneError("OUTPUT_INVALID", `${basename(path)} is ${st.size} bytes; the limit is ${max}`);
    // one read of the size fstat gave (plus one byte, to see a file that grew meanwhile)
    const buf = Buffer.allocUnsafe(st.size + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > max)
      throw new GridtuneError("OUTPUT_INVALID", `${basename(path)} is over the limit of ${max} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
