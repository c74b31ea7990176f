// The task's sandbox (the *.json *.sh *.py *.yaml files phpo uploads, PanDA's sandbox) in a
// steering iteration's working directory, so a user's own steering program can run from it
// (`python my_opt.py %IN %OUT` in an optimiser image). The tarball is the user's: hostile until
// checked. It is read from S3 through steering's own Storage (capped), and unpacked in memory:
// only regular files and directories, no absolute or `..` paths, capped in size and count; files
// are created exclusively (never through an existing entry) with mode 0444. The runner mounts
// each top-level entry read-only into a steering container. %IN and %OUT's names are skipped at
// the top (a leftover idds_output.json would stop the program writing its answer).
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import * as tar from "tar";
import { GridtuneError } from "../../protocol/errors.ts";
import type { Storage } from "../shell/storage.ts";

export interface SandboxLimits {
  /** The tarball as stored. */
  maxTarBytes: number;
  /** Every file's bytes together, unpacked. */
  maxBytes: number;
  maxEntries: number;
}

export const STEERING_SANDBOX_LIMITS: SandboxLimits = {
  maxTarBytes: 64 * 2 ** 20,
  maxBytes: 256 * 2 ** 20,
  maxEntries: 10_000,
};

/** Names at the top of the working directory that belong to the iteration, not to the sandbox. */
const RESERVED = new Set(["idds_input.json", "idds_output.json"]);

interface Entry {
  path: string;
  dir: boolean;
  data: Buffer;
}

/** The checked entries of a sandbox tarball (tar.gz), in archive order; throws ARCHIVE_REJECTED. */
export async function readSandbox(
  tgz: Buffer,
  limits: SandboxLimits = STEERING_SANDBOX_LIMITS,
): Promise<Entry[]> {
  const out: Entry[] = [];
  let total = 0;
  // set by the entry callback (typed so the checks after the parse are not narrowed to null)
  let refusal = null as string | null;
  const parser = new tar.Parser({
    strict: true,
    maxDecompressionRatio: 1000,
    onReadEntry: (e) => {
      const path = e.path.replace(/\/+$/, "");
      const why =
        refusal !== null
          ? refusal
          : path === "" || path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "")
            ? `entry ${JSON.stringify(e.path)} escapes the working directory (absolute, empty or '..')`
            : e.type !== "File" && e.type !== "OldFile" && e.type !== "Directory"
              ? `entry ${JSON.stringify(e.path)} is a ${e.type}; only regular files and directories are allowed`
              : out.length >= limits.maxEntries
                ? `more than ${limits.maxEntries} entries`
                : total + (e.size ?? 0) > limits.maxBytes
                  ? `more than ${limits.maxBytes} bytes when unpacked`
                  : null;
      if (why !== null) {
        refusal ??= why;
        e.resume();
        return;
      }
      total += e.size ?? 0;
      const chunks: Buffer[] = [];
      e.on("data", (c: Buffer) => chunks.push(c));
      e.on("end", () => out.push({ path, dir: e.type === "Directory", data: Buffer.concat(chunks) }));
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      parser.on("end", () => resolve());
      parser.on("error", reject);
      parser.end(tgz);
    });
  } catch (err) {
    throw new GridtuneError(
      "ARCHIVE_REJECTED",
      `the task's sandbox is not a readable tar.gz (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  if (refusal !== null)
    throw new GridtuneError("ARCHIVE_REJECTED", `the task's sandbox was refused: ${refusal}`);
  return out;
}

/**
 * Unpacks the checked entries into `dir` (fresh and empty), files read-only; returns the
 * top-level names placed (the runner mounts them read-only into a container).
 */
export async function unpackSandbox(entries: readonly Entry[], dir: string): Promise<string[]> {
  const top = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split("/");
    if (RESERVED.has(parts[0]!)) continue;
    top.add(parts[0]!);
    if (e.dir) {
      await mkdir(join(dir, e.path), { recursive: true, mode: 0o755 });
      continue;
    }
    if (parts.length > 1) await mkdir(join(dir, ...parts.slice(0, -1)), { recursive: true, mode: 0o755 });
    // "wx": a second entry of the same name, or anything already there, is refused, not followed
    const f = await open(join(dir, e.path), "wx", 0o444).catch((err: unknown) => {
      throw new GridtuneError(
        "ARCHIVE_REJECTED",
        `the task's sandbox was refused: entry ${JSON.stringify(e.path)} cannot be created (${String(err)})`,
        { cause: err },
      );
    });
    try {
      await f.writeFile(e.data);
    } finally {
      await f.close();
    }
  }
  return [...top].sort();
}

/** The task's sandbox (if it has one) in an iteration's directory; the top-level names placed. */
export async function placeSandbox(
  storage: Storage,
  key: string | undefined,
  dir: string,
): Promise<string[]> {
  if (key === undefined) return [];
  const tgz = await storage.getBytes(key, STEERING_SANDBOX_LIMITS.maxTarBytes).catch((err: unknown) => {
    if (err instanceof GridtuneError && err.code === "TOO_LARGE")
      throw new GridtuneError(
        "ARCHIVE_REJECTED",
        `the task's sandbox is over the ${STEERING_SANDBOX_LIMITS.maxTarBytes / 2 ** 20} MB a steering program is given; move large files out of the submit directory`,
      );
    throw err;
  });
  if (tgz === null)
    throw new GridtuneError("ARCHIVE_REJECTED", `the task's sandbox ${key} is not in S3 (removed?)`);
  return unpackSandbox(await readSandbox(tgz), dir);
}
