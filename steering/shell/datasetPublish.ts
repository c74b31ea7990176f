// Datasets an admin publishes (`gridtune-steering admin dataset …`): copied from a user's dataset
// (S3 server-side copy) or uploaded from a local directory into a scope other than `user.`, which
// every user may read. This runs with steering's S3 keys and has no API verb: a user cannot reach
// it. Each file is read back from S3 and its size and sha256 recorded in the dataset's manifest,
// as steering does for users' uploads, so `phpo dataset get` verifies what it fetches.
import { stat } from "node:fs/promises";
import { DatasetName, type DatasetSummary } from "../../protocol/datasets.ts";
import { GridtuneError, ValidationError } from "../../protocol/errors.ts";
import { localFiles, type LocalFile } from "../../protocol/localFiles.ts";
import type { Logger } from "../../protocol/log.ts";
import { DatasetIndex, isPublishedName } from "./datasetIndex.ts";
import { readManifest, writeManifest } from "./datasets.ts";
import { keys, type Storage } from "./storage.ts";

/** Where the files of a published dataset come from. */
export type PublishSource = { type: "dataset"; name: string } | { type: "dir"; dir: string };

export interface PublishedFile {
  path: string;
  size: number;
  sha256: string;
}

/** NAME of a published dataset: a dataset name outside the users' scope. */
export function parsePublishedName(name: string, field = "NAME"): string {
  const p = DatasetName.safeParse(name);
  if (!p.success)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${field} ${JSON.stringify(name)}: ${p.error.issues[0]?.message ?? "invalid"}`,
    );
  if (!isPublishedName(p.data))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${field} ${name}: user.* is the users' own scope (each user writes user.<user>.*); ` +
        `publish under another scope, e.g. public.${p.data.split(".").slice(2).join(".") || "mydata"}`,
    );
  return p.data;
}

/** `--from`: a user's dataset (copied in S3) or a local directory. */
export function parseSource(from: string): PublishSource {
  if (from.startsWith("user.")) {
    const p = DatasetName.safeParse(from);
    if (!p.success)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `--from ${JSON.stringify(from)}: ${p.error.issues[0]?.message ?? "invalid"}`,
      );
    return { type: "dataset", name: p.data };
  }
  return { type: "dir", dir: from };
}

/** `--from DIR`: a directory's regular files, as `phpo dataset put DIR` takes them. */
async function dirFiles(dir: string): Promise<LocalFile[]> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory())
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--from ${dir}: not a directory; give a directory or a user's dataset (user.<user>.<name>)`,
    );
  return localFiles([dir]);
}

async function objectsOf(storage: Storage, name: string) {
  const prefix = keys.dataset(name);
  return (await storage.list(prefix)).map((o) => ({ key: o.key, path: o.key.slice(prefix.length) }));
}

/**
 * Publishes `name` from `source`; an existing published dataset is refused unless `replace`
 * (then its old files are removed first, so none of them lingers under the new manifest).
 */
export async function publishDataset(
  storage: Storage,
  nameArg: string,
  source: PublishSource,
  replace: boolean,
): Promise<{ name: string; files: PublishedFile[] }> {
  const name = parsePublishedName(nameArg);
  const existing = await objectsOf(storage, name);
  if (existing.length > 0 && !replace)
    throw new GridtuneError(
      "CONFLICT",
      `dataset ${name} is published already (${existing.length} files): pass --replace to overwrite it, ` +
        `or unpublish it first`,
    );
  // Sources are read before anything is removed: a bad --from leaves the old dataset as it was.
  let copies: Array<{ path: string; write: (key: string) => Promise<void> }>;
  switch (source.type) {
    case "dataset": {
      const from = await objectsOf(storage, source.name);
      if (from.length === 0)
        throw new GridtuneError("NOT_FOUND", `--from ${source.name}: no such dataset (or it has no files)`);
      copies = from.map((o) => ({ path: o.path, write: (key) => storage.copy(o.key, key) }));
      break;
    }
    case "dir":
      copies = (await dirFiles(source.dir)).map((f) => ({
        path: f.path,
        write: (key) => storage.putFile(key, f.abs, f.size),
      }));
      break;
    default: {
      const never: never = source;
      throw new Error(`unknown source ${JSON.stringify(never)}`);
    }
  }
  const index = new DatasetIndex(storage);
  for (const o of existing) await storage.remove(o.key);
  await storage.remove(keys.datasetManifest(name));
  const files: PublishedFile[] = [];
  for (const c of copies) {
    const key = keys.dataset(name) + c.path;
    await c.write(key);
    // Read back: the manifest records what S3 holds, as for a user's upload.
    const got = await storage.sha256(key);
    files.push({ path: c.path, size: got.size, sha256: got.sha256 });
  }
  await writeManifest(
    storage,
    { name, files: Object.fromEntries(files.map((f) => [f.path, { size: f.size, sha256: f.sha256 }])) },
    index,
  );
  return { name, files };
}

export async function unpublishDataset(
  storage: Storage,
  nameArg: string,
): Promise<{ name: string; files: number }> {
  const name = parsePublishedName(nameArg);
  const objects = await objectsOf(storage, name);
  if (objects.length === 0)
    throw new GridtuneError("NOT_FOUND", `dataset ${name} is not published; see admin dataset list`);
  for (const o of objects) await storage.remove(o.key);
  await storage.remove(keys.datasetManifest(name));
  await new DatasetIndex(storage).remove(name);
  return { name, files: objects.length };
}

/** Published datasets (by the index), with how many files have a recorded checksum. */
export async function listPublished(
  storage: Storage,
  logger: Pick<Logger, "warn"> | null = null,
): Promise<Array<DatasetSummary & { checksummed: number }>> {
  const all = await new DatasetIndex(storage, logger).published();
  return Promise.all(
    all.map(async (d) => ({
      ...d,
      checksummed: Object.keys((await readManifest(storage, d.name)).files).length,
    })),
  );
}
