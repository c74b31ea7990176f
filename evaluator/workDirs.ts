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
// The payload's own files (output.json, meta, metrics, progress, checkpoints) are read through
// payloadFs.ts, which never follows a link out of the working directory.
import { mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync, writeFileSync, type Dirent } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../protocol/log.ts";
import type { Runtime } from "./runtime/types.ts";

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

/**
 * Removes what a previous run of this same agent left (it was killed mid-attempt): its
 * containers, by its instance label, and its working directories, by its instance prefix. Called
 * before any attempt of this process runs, so none of them is in use; steering retries those attempts.
 */
export async function removeLeftovers(
  runtime: Runtime,
  workRoot: string,
  instance: string,
  log: Logger,
): Promise<void> {
  const containers = await runtime.removeLeftovers?.().catch((e: unknown) => {
    log.warn("could not remove leftover containers", { error: String(e) });
    return 0;
  });
  const dirs = await removeOwnWorkDirs(workRoot, instance).catch((e: unknown) => {
    log.warn("could not remove leftover working directories", { error: String(e) });
    return 0;
  });
  if (containers || dirs)
    log.info("removed what a previous run of this agent left", {
      containers: containers ?? 0,
      workDirs: dirs,
    });
}
