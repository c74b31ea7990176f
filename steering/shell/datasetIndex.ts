// The dataset index: one small object per dataset (`datasetindex/<users|published>/<name>.json`,
// its file count and bytes), so that `phpo dataset ls` lists a user's datasets and the published
// ones by listing those entries, O(datasets), instead of every object under `datasets/`,
// O(all files of all users). Steering writes an entry with each manifest it writes (a file
// committed, a dataset removed); `admin dataset publish|unpublish` write the published ones.
//
// Datasets older than the index have no entry: the first listing without the marker
// `datasetindex/built.json` lists `datasets/` once in full, writes the missing entries and the
// marker (a migration on first use, logged as a warning). Files written with raw S3 keys after
// that are not counted until `admin dataset reindex` lists everything again.
import { z } from "zod";
import type { DatasetSummary } from "../../protocol/datasets.ts";
import type { Logger } from "../../protocol/log.ts";
import { keys, type Storage } from "./storage.ts";

export const DatasetIndexEntry = z.object({
  name: z.string(),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});
export type DatasetIndexEntry = z.infer<typeof DatasetIndexEntry>;

/** Entries read at once (S3 GETs in flight together). */
const READ_AHEAD = 32;

/** Published datasets: every scope but `user.` (written with steering's keys). */
export const isPublishedName = (name: string) => name !== "" && !name.startsWith("user.");

/** A dataset's name from one of its object keys (`datasets/<name>/<path>`). */
const datasetOfKey = (key: string) => key.slice("datasets/".length).split("/")[0] ?? "";

/** Datasets and their file counts and bytes, from a listing of their objects. */
export function summarise(
  objects: ReadonlyArray<{ key: string; size: number }>,
  keep: (name: string) => boolean,
  published: boolean,
): DatasetSummary[] {
  const by = new Map<string, DatasetSummary>();
  for (const o of objects) {
    const name = datasetOfKey(o.key);
    if (!keep(name)) continue;
    const s = by.get(name) ?? { name, files: 0, bytes: 0, published };
    s.files++;
    s.bytes += o.size;
    by.set(name, s);
  }
  return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Every dataset, from a listing of every object under `datasets/` (what the index replaces). */
export async function scanDatasets(storage: Storage): Promise<DatasetSummary[]> {
  const objects = await storage.list("datasets/");
  return [
    ...summarise(objects, (n) => n.startsWith("user."), false),
    ...summarise(objects, isPublishedName, true),
  ];
}

export class DatasetIndex {
  /** The migration of this process, once (null until asked for, or after it failed). */
  private built: Promise<void> | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly logger: Pick<Logger, "warn"> | null = null,
  ) {}

  /** Records a dataset's summary; a dataset with no file has no entry. */
  async put(entry: DatasetIndexEntry): Promise<void> {
    if (entry.files === 0) return this.remove(entry.name);
    await this.storage.put(keys.datasetIndex(entry.name), JSON.stringify(entry));
  }

  async remove(name: string): Promise<void> {
    await this.storage.remove(keys.datasetIndex(name));
  }

  /** The datasets of one user (scope `user.<user>.`), by their index entries. */
  async ofScope(scope: string): Promise<DatasetSummary[]> {
    await this.ensureBuilt();
    return this.read(keys.datasetIndexUsers + scope);
  }

  /** The published datasets, by their index entries. */
  async published(): Promise<DatasetSummary[]> {
    await this.ensureBuilt();
    return this.read(keys.datasetIndexPublished);
  }

  /** Lists every object once and writes the entries; with `all`, rewrites existing ones too. */
  async rebuild(all: boolean): Promise<{ datasets: number; written: number }> {
    const found = await scanDatasets(this.storage);
    const existing = all
      ? new Set<string>()
      : new Set(
          [
            ...(await this.storage.list(keys.datasetIndexUsers)),
            ...(await this.storage.list(keys.datasetIndexPublished)),
          ].map((o) => o.key),
        );
    let written = 0;
    for (const d of found) {
      // an entry steering wrote since (a commit) is newer than this listing: kept
      if (existing.has(keys.datasetIndex(d.name))) continue;
      await this.put({ name: d.name, files: d.files, bytes: d.bytes });
      written++;
    }
    if (all) {
      // entries of datasets that no longer have files
      const names = new Set(found.map((d) => keys.datasetIndex(d.name)));
      for (const o of [
        ...(await this.storage.list(keys.datasetIndexUsers)),
        ...(await this.storage.list(keys.datasetIndexPublished)),
      ])
        if (!names.has(o.key)) await this.storage.remove(o.key);
    }
    await this.storage.put(
      keys.datasetIndexBuilt,
      JSON.stringify({ datasets: found.length, written, complete: all }),
    );
    return { datasets: found.length, written };
  }

  /** The migration: once per bucket (the marker), once per process (the promise). */
  private ensureBuilt(): Promise<void> {
    this.built ??= (async () => {
      if ((await this.storage.head(keys.datasetIndexBuilt)) !== null) return;
      const r = await this.rebuild(false);
      // nothing to say when every dataset had its entry (a bucket new with the index)
      if (r.written > 0)
        this.logger?.warn(
          "datasets had no index: listed every object under datasets/ once and indexed them",
          r,
        );
    })().catch((e: unknown) => {
      this.built = null; // tried again by the next listing
      throw e;
    });
    return this.built;
  }

  private async read(prefix: string): Promise<DatasetSummary[]> {
    const entries = (await this.storage.list(prefix)).map((o) => o.key);
    const out: DatasetSummary[] = [];
    for (let i = 0; i < entries.length; i += READ_AHEAD)
      for (const d of await Promise.all(entries.slice(i, i + READ_AHEAD).map((k) => this.entry(k))))
        if (d) out.push(d);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One entry; one that cannot be read is made again from its dataset's own listing. */
  private async entry(key: string): Promise<DatasetSummary | null> {
    const text = await this.storage.getText(key);
    if (text === null) return null; // removed since the listing
    let raw: unknown = null;
    try {
      raw = JSON.parse(text);
    } catch {
      // as unreadable, below
    }
    const parsed = DatasetIndexEntry.safeParse(raw);
    if (parsed.success && keys.datasetIndex(parsed.data.name) === key)
      return { ...parsed.data, published: isPublishedName(parsed.data.name) };
    const name = key.slice(key.lastIndexOf("/") + 1).replace(/\.json$/, "");
    const objects = await this.storage.list(keys.dataset(name));
    const entry = { name, files: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0) };
    this.logger?.warn("a dataset index entry was unreadable: made again from the dataset's listing", {
      key,
      files: entry.files,
    });
    await this.put(entry);
    return entry.files === 0 ? null : { ...entry, published: isPublishedName(name) };
  }
}
