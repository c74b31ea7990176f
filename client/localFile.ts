// Files phpo writes where the user says (plot --out, --dumpJson): checked before any request, so a
// typo or a read-only directory is a usage error naming the option, never an "unexpected error"
// after the work was done.
import { accessSync, constants, existsSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ValidationError } from "../protocol/errors.ts";

const why = (e: unknown) => {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOENT") return "no such directory";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EROFS") return "read-only file system";
  return e instanceof Error ? e.message : String(e);
};

/** Throws a ValidationError naming `option` unless `file` can be created or overwritten. */
export function checkWritable(file: string, option: string): string {
  const path = resolve(file);
  const fail = (reason: string, cause?: unknown): never => {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${option} ${file}: cannot write ${path} (${reason}); give a path in a directory you can write to`,
      { cause },
    );
  };
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) fail("it is a directory");
    try {
      accessSync(path, constants.W_OK);
    } catch (e) {
      fail(why(e), e);
    }
    return path;
  }
  const dir = dirname(path);
  if (!existsSync(dir)) fail(`no such directory ${dir}`);
  if (!statSync(dir).isDirectory()) fail(`${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    fail(why(e), e);
  }
  return path;
}

/** Writes the file; a failure is a ValidationError naming `option` and the reason. */
export function writeUserFile(file: string, data: string, option: string): void {
  try {
    writeFileSync(file, data);
  } catch (e) {
    throw new ValidationError("INVALID_ARGUMENT", `${option} ${file}: cannot write it (${why(e)})`, {
      cause: e,
    });
  }
}
