// Making a directory and its missing parents, one mkdir(2) at a time. Node's own recursive mkdir
// (fs.mkdir and fs.mkdirSync with recursive: true, Node 20) never returns for a path under /proc:
// mkdir there fails with ENOENT although the parent exists, and Node answers ENOENT by making the
// parent and trying again, forever (`phpo download --dest /proc/x` spun at 90 % CPU for minutes).
import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import { join, parse, resolve } from "node:path";
import { ValidationError } from "./errors.ts";

/** A directory that cannot be made or written; the message names the path and the reason. */
export class DirectoryError extends ValidationError {
  override name = "DirectoryError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_ARGUMENT", message, options);
  }
}

const REASONS: Record<string, string> = {
  ENOENT: "this file system does not take new directories (like /proc or /sys)",
  EACCES: "permission denied",
  EPERM: "not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  ENOTDIR: "a part of the path is not a directory",
};

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return REASONS[code] ?? (e instanceof Error ? e.message : String(e));
}

/** Makes path (and its missing parents) and checks that files can be written in it. */
export function makeDirs(path: string): void {
  const abs = resolve(path);
  const { root } = parse(abs);
  let cur = root;
  for (const part of abs.slice(root.length).split("/").filter(Boolean)) {
    cur = join(cur, part);
    let st;
    try {
      st = statSync(cur, { throwIfNoEntry: false });
    } catch (e) {
      throw new DirectoryError(`cannot look at ${cur}: ${reason(e)}`, { cause: e });
    }
    if (st?.isDirectory()) continue;
    if (st) throw new DirectoryError(`${cur} exists and is not a directory`);
    try {
      mkdirSync(cur);
    } catch (e) {
      // made by someone else meanwhile: fine
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && statSync(cur).isDirectory()) continue;
      throw new DirectoryError(`cannot create ${cur}: ${reason(e)}`, { cause: e });
    }
  }
  try {
    accessSync(abs, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new DirectoryError(`cannot write in ${abs}: ${reason(e)}`, { cause: e });
  }
}
