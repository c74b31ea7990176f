// The files a dataset is made of from local paths: `phpo dataset put DIR|FILES` and
// `gridtune-steering admin dataset publish NAME --from DIR` take them the same way (regular files
// only: a symbolic link could bring in a file from outside the directory).
import { readdirSync, statSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { DatasetPath } from "./datasets.ts";
import { ValidationError } from "./errors.ts";

export interface LocalFile {
  /** Absolute path on this machine. */
  abs: string;
  /** Name in the dataset (relative to the directory given, or the file's base name). */
  path: string;
  size: number;
}

/** The files of `put DIR|FILES`: a directory's regular files recursively (links skipped), or files. */
export function localFiles(args: readonly string[]): LocalFile[] {
  const out: LocalFile[] = [];
  const add = (abs: string, path: string) => {
    const p = DatasetPath.safeParse(path);
    if (!p.success)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `${abs}: "${path}" cannot be a dataset file name (${p.error.issues[0]?.message ?? "invalid"}); rename it`,
      );
    out.push({ abs, path, size: statSync(abs).size });
  };
  for (const arg of args) {
    const root = resolve(arg);
    const st = statSync(root, { throwIfNoEntry: false });
    if (!st)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `${arg}: no such file or directory; give a directory or files`,
      );
    if (st.isFile()) {
      add(root, basename(root));
      continue;
    }
    if (!st.isDirectory()) throw new ValidationError("INVALID_ARGUMENT", `${arg}: not a file or directory`);
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const abs = join(dir, e.name);
        if (e.isDirectory()) walk(abs);
        else if (e.isFile()) add(abs, relative(root, abs).split(sep).join("/"));
      }
    };
    walk(root);
  }
  const seen = new Set<string>();
  for (const f of out) {
    if (seen.has(f.path))
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `two files would be named ${f.path} in the dataset: rename one`,
      );
    seen.add(f.path);
  }
  if (out.length === 0) throw new ValidationError("INVALID_ARGUMENT", `no files in ${args.join(" ")}`);
  // code-point order: the same on every machine, whatever its locale
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
