// Reading a payload's working directory without following its links (issue 14).
//
// The payload wrote this tree, as uid 1000 in a container or as the agent's user; the agent reads
// it on the host, as root with the docker runtime. A symlink anywhere on a path (output.json →
// /etc/shadow, or a checkpoint directory replaced by a link to the agent's state directory) would
// make the agent read, pack, upload and restore a host file. So a path the payload controls is
// never handed to the kernel whole: a walk starts at a descriptor of the working directory and
// opens one component at a time relative to the descriptor of its parent (openat, spelled
// /proc/self/fd/<dir>/<name> since Node has no openat), each with O_NOFOLLOW. The kernel never
// follows a payload's link: a link's target is read (readlink) and resolved here, lexically, on the
// walk's own stack of directory descriptors, so a relative target that stays inside is walked and
// one that is absolute or climbs above the root is refused. The file read is the one opened: its
// type and size come from fstat on the descriptor and every byte is read through it, so a link
// swapped in after a check changes nothing. FIFOs, sockets and devices are refused unopened.
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  type Stats,
} from "node:fs";
import { GridtuneError } from "../protocol/errors.ts";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
// O_NONBLOCK: a FIFO swapped in after the lstat cannot block the open (fstat then refuses it).
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const DIR_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_DIRECTORY;
/** Links (and components that changed under the walk) resolved in one walk before it is refused. */
const MAX_LINKS = 40;
/** Deepest directory walked: each level holds a descriptor while the walk is below it. */
export const MAX_DEPTH = 128;

/** A payload's path that the agent will not read: outside, a loop, or not a regular file. */
export class PathRefusedError extends GridtuneError {
  override name = "PathRefusedError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("OUTPUT_INVALID", message, { ...options, retryable: false });
  }
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The path of name in the directory open at dirFd, for the *at-style calls. */
const at = (dirFd: number, name: string) => `/proc/self/fd/${dirFd}/${name}`;

function lstatAt(dirFd: number, name: string): Stats | null {
  try {
    return lstatSync(at(dirFd, name));
  } catch (e) {
    if (errno(e) === "ENOENT" || errno(e) === "ENOTDIR") return null;
    throw e;
  }
}

/** What a non-regular entry is, for messages. */
export function describeType(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isDirectory()) return "a directory";
  return "not a regular file";
}

function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** An entry opened by PayloadTree.open: the caller closes fd. */
export interface OpenEntry {
  fd: number;
  /** fstat of fd: what is read is what this describes. */
  stat: Stats;
  kind: "file" | "dir";
}

/** A file or directory found by PayloadTree.list (lstat data; nothing is held open). */
export interface TreeEntry {
  /** Path in the archive: the named path as given (normalized), then the names below it. */
  rel: string;
  kind: "file" | "dir";
  size: number;
  mtimeMs: number;
}

export interface TreeListing {
  entries: TreeEntry[];
  /** The named paths that exist (normalized), in the order given. */
  present: string[];
  /** Why each left-out path was left out (links, special files, paths that lead outside). */
  skipped: string[];
}

/** A descriptor on a working directory (the attempt's own directory, never a link) to walk from. */
export class PayloadTree {
  private constructor(readonly fd: number) {}

  static open(dir: string): PayloadTree {
    return new PayloadTree(openSync(dir, DIR_FLAGS));
  }

  close(): void {
    closeSync(this.fd);
  }

  /**
   * Opens rel ("a/b", "./a", "a/../b") beneath the root without letting the kernel follow a link.
   * null when nothing (or a non-directory on the way) is there; PathRefusedError when it resolves
   * outside, loops, or ends on a FIFO, socket or device.
   */
  open(rel: string): OpenEntry | null {
    const stack: number[] = []; // descriptors of the directories entered below the root
    const queue = components(rel);
    let links = 0;
    let via = ""; // the last link followed, for the message
    const top = () => stack.at(-1) ?? this.fd;
    const again = (what: string): void => {
      if (++links > MAX_LINKS)
        throw new PathRefusedError(`${rel}: ${what} more than ${MAX_LINKS} times (a loop?); it is not read`);
    };
    try {
      while (queue.length > 0) {
        const name = queue.shift()!;
        if (name === "..") {
          const up = stack.pop();
          if (up === undefined) throw outside(rel, via);
          closeSync(up);
          continue;
        }
        const st = lstatAt(top(), name);
        if (st === null) return null;
        if (st.isSymbolicLink()) {
          again("a symbolic link was followed");
          let target: string;
          try {
            target = readlinkSync(at(top(), name));
          } catch (e) {
            // no longer a link (EINVAL) or gone (ENOENT) since the lstat: look at it again
            if (errno(e) !== "EINVAL" && errno(e) !== "ENOENT") throw e;
            queue.unshift(name);
            continue;
          }
          via = `(the symlink ${JSON.stringify(name)} points to ${JSON.stringify(target)})`;
          if (target.startsWith("/")) throw outside(rel, via);
          queue.unshift(...components(target));
          continue;
        }
        const last = queue.length === 0;
        if (!st.isDirectory()) {
          if (!last) return null; // a file where a directory is needed: nothing at rel
          if (!st.isFile())
            throw new PathRefusedError(`${rel} is ${describeType(st)}; only a regular file is read`);
        }
        let fd: number;
        try {
          fd = openSync(at(top(), name), st.isDirectory() ? DIR_FLAGS : FILE_FLAGS);
        } catch (e) {
          // Replaced since the lstat (by a link: ELOOP): look at it again.
          if (!["ELOOP", "ENOTDIR", "ENOENT"].includes(errno(e) ?? "")) throw e;
          again("a path component changed while it was opened");
          queue.unshift(name);
          continue;
        }
        if (!last) {
          stack.push(fd);
          if (stack.length > MAX_DEPTH)
            throw new PathRefusedError(`${rel} is more than ${MAX_DEPTH} directories deep; it is not read`);
          continue;
        }
        return checked(fd, rel);
      }
      return checked(openSync(at(top(), "."), DIR_FLAGS), rel); // rel named the root itself
    } finally {
      for (const fd of stack) closeSync(fd);
    }
  }

  /**
   * Lists the files and directories under each named path (a file or a directory). Inside the
   * named trees, links and special files are left out, each named in `skipped`, as is a named path
   * that resolves outside; a named path's own in-directory links are followed (see open()).
   */
  list(paths: string[], limits: { maxEntries: number } = { maxEntries: 100_000 }): TreeListing {
    const out: TreeListing = { entries: [], present: [], skipped: [] };
    const seen = new Set<string>();
    const add = (e: TreeEntry): void => {
      if (seen.has(e.rel)) return;
      seen.add(e.rel);
      out.entries.push(e);
      if (out.entries.length > limits.maxEntries)
        throw new GridtuneError("TOO_LARGE", `more than ${limits.maxEntries} files and directories`);
    };
    const walk = (dirFd: number, rel: string, depth: number): void => {
      if (depth > MAX_DEPTH) {
        out.skipped.push(`${rel} is more than ${MAX_DEPTH} directories deep; left out`);
        return;
      }
      for (const name of readdirSync(at(dirFd, ".")).sort()) {
        const r = rel ? `${rel}/${name}` : name; // rel "": the working directory itself
        const st = lstatAt(dirFd, name);
        if (st === null) continue; // removed meanwhile
        if (st.isFile()) add({ rel: r, kind: "file", size: st.size, mtimeMs: st.mtimeMs });
        else if (st.isDirectory()) {
          let fd: number;
          try {
            fd = openSync(at(dirFd, name), DIR_FLAGS);
          } catch (e) {
            if (["ELOOP", "ENOTDIR", "ENOENT"].includes(errno(e) ?? "")) continue; // swapped meanwhile
            throw e;
          }
          try {
            add({ rel: r, kind: "dir", size: 0, mtimeMs: st.mtimeMs });
            walk(fd, r, depth + 1);
          } finally {
            closeSync(fd);
          }
        } else out.skipped.push(`${r} is ${describeType(st)}; left out`);
      }
    };
    for (const p of paths) {
      const rel = components(p).join("/");
      let e: OpenEntry | null;
      try {
        e = this.open(rel);
      } catch (err) {
        if (!(err instanceof PathRefusedError)) throw err;
        out.skipped.push(`${err.message.replace(/; it is not read$/, "")}; left out`);
        continue;
      }
      if (e === null) continue;
      try {
        out.present.push(rel || ".");
        if (e.kind === "file") add({ rel, kind: "file", size: e.stat.size, mtimeMs: e.stat.mtimeMs });
        else {
          if (rel) add({ rel, kind: "dir", size: 0, mtimeMs: e.stat.mtimeMs });
          walk(e.fd, rel, 1);
        }
      } finally {
        closeSync(e.fd);
      }
    }
    return out;
  }
}

function outside(rel: string, via: string): PathRefusedError {
  return new PathRefusedError(
    `${rel} resolves outside the working directory${via ? ` ${via}` : ""}; it is not read`,
  );
}

/** The opened entry if fstat agrees that it is a regular file or a directory; closes it if not. */
function checked(fd: number, rel: string): OpenEntry {
  const st = fstatSync(fd);
  if (st.isFile() || st.isDirectory()) return { fd, stat: st, kind: st.isFile() ? "file" : "dir" };
  closeSync(fd);
  throw new PathRefusedError(`${rel} is ${describeType(st)}; only a regular file is read`);
}

/** Runs fn on a walk from dir; the root descriptor is closed afterwards. */
export function withTree<T>(dir: string, fn: (tree: PayloadTree) => T): T {
  const tree = PayloadTree.open(dir);
  try {
    return fn(tree);
  } finally {
    tree.close();
  }
}

/** A payload's regular file, opened: read and upload through fd, then close it. */
export interface OpenedFile {
  fd: number;
  size: number;
}

/**
 * The regular file at rel in the working directory dir, opened without following a link out;
 * null if there is none or it is a directory. PathRefusedError if it resolves outside or is a
 * FIFO, socket or device.
 */
export function openPayloadFile(dir: string, rel: string): OpenedFile | null {
  const e = withTree(dir, (t) => t.open(rel));
  if (e === null) return null;
  if (e.kind === "dir") {
    closeSync(e.fd);
    return null;
  }
  return { fd: e.fd, size: e.stat.size };
}

/** Reads the payload's file rel of at most max bytes (see openPayloadFile); null if absent. */
export function readPayloadFile(dir: string, rel: string, max: number): Buffer | null {
  const f = openPayloadFile(dir, rel);
  if (f === null) return null;
  try {
    if (f.size > max) throw new PathRefusedError(`${rel} is ${f.size} bytes; the limit is ${max}`);
    // one read of the size fstat gave (plus one byte, to see a file that grew meanwhile)
    const buf = Buffer.allocUnsafe(f.size + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(f.fd, buf, n, buf.length - n, n);
    if (n > max) throw new PathRefusedError(`${rel} is over the limit of ${max} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(f.fd);
  }
}
