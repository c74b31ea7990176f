// The sandbox PanDA's phpo sends with a task: every *.json, *.py, *.sh and *.yaml file under the
// submitting directory, recursively (as `find .` finds them), in one tar.gz that is unpacked in
// each evaluation's working directory. node_modules and .git are skipped (never payload, often
// huge); symbolic links are skipped so a link cannot pull in files from outside the directory.
import { readdirSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import * as tar from "tar";
import { GridtuneError, UnavailableError, ValidationError } from "../protocol/errors.ts";

export const SANDBOX_EXTENSIONS = [".json", ".py", ".sh", ".yaml"] as const;
const SKIP_DIRS = new Set(["node_modules", ".git"]);
/** The steering service refuses larger uploads (protocol: upload size ≤ 512 MiB). */
export const MAX_SANDBOX_BYTES = 512 * 1024 * 1024;

/** Relative paths (with "/") of the files that go into the sandbox, sorted. */
export function sandboxFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `cannot read ${dir} for the sandbox: ${(err as Error).message}`,
        { cause: err },
      );
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(p);
      } else if (e.isFile() && SANDBOX_EXTENSIONS.some((x) => e.name.endsWith(x))) {
        out.push(relative(root, p).split(sep).join("/"));
      }
    }
  };
  walk(root);
  return out.sort();
}

export interface Sandbox {
  files: string[];
  data: Buffer;
}

/** Builds the tar.gz in memory (it is small: scripts and JSON), or null when there is nothing to send. */
export async function buildSandbox(root: string): Promise<Sandbox | null> {
  const files = sandboxFiles(root);
  if (files.length === 0) return null;
  let total = 0;
  for (const f of files) total += (await stat(join(root, f))).size;
  if (total > MAX_SANDBOX_BYTES) {
    throw new ValidationError(
      "TOO_LARGE",
      `the sandbox files under ${root} add up to ${Math.round(total / 1048576)} MB (limit 512 MB): move large *.json files out of the directory or use --sandboxDir`,
    );
  }
  const chunks: Buffer[] = [];
  const stream = tar.create({ gzip: true, cwd: root, portable: true, noDirRecurse: true }, files);
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return { files, data: Buffer.concat(chunks) };
}

/** Uploads the tarball with the presigned PUT URL the `upload` verb returned. */
export async function uploadSandbox(url: string, data: Buffer): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "PUT",
      body: data,
      headers: { "content-length": String(data.length), "content-type": "application/gzip" },
    });
  } catch (err) {
    throw new UnavailableError(
      `cannot upload the sandbox to ${new URL(url).origin}: ${(err as Error).message}; is the S3 server running?`,
      {
        cause: err,
      },
    );
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => "")).slice(0, 300);
    throw new GridtuneError("STORAGE_FAILED", `sandbox upload refused by S3 (HTTP ${res.status}): ${body}`);
  }
}

/** Lists a tar.gz (used by tests and by `phpo download` to check metrics tarballs). */
export async function listTarGz(file: string): Promise<string[]> {
  const names: string[] = [];
  // strict: a damaged or truncated archive is an error, not a warning.
  await tar.list({ file, strict: true, onReadEntry: (e) => names.push(e.path) });
  return names;
}
