// `phpo dataset ls` on the real S3 server (the embedded SigV4-checking one, alone): --datasets
// datasets of --files files each (a quarter published, the rest spread over --users users), then
// one user's listing as steering answers it, by the old way (every object under `datasets/`,
// O(all files of all users)) and by the dataset index (one entry per dataset,
// steering/shell/datasetIndex.ts), interleaved round by round. Also the one-time migration (the
// full listing that writes the entries of datasets older than the index). Seconds are medians.
//   node --import tsx bench/datasetListing.ts [--datasets 200] [--files 50] [--users 10] [--rounds 5]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { userScope } from "../protocol/datasets.ts";
import { DEFAULT_BUCKET } from "../stack/embedded.ts";
import { startS3Server } from "../stack/s3Server.ts";
import { isPublishedName, summarise } from "../steering/shell/datasetIndex.ts";
import { Datasets } from "../steering/shell/datasets.ts";
import { DEFAULT_TENANT_LIMITS } from "../steering/core/limits.ts";
import { TenantLimitsReader } from "../steering/shell/limits.ts";
import { keys, Storage } from "../steering/shell/storage.ts";
import { arg } from "./args.ts";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { s: (performance.now() - t) / 1000, value };
}

/** The listing as steering did it before the index: the user's files, then every file. */
async function oldList(storage: Storage, user: string) {
  const mine = summarise(await storage.list(keys.dataset(userScope(user)).slice(0, -1)), () => true, false);
  const published = summarise(await storage.list("datasets/"), isPublishedName, true);
  return [...mine, ...published];
}

export async function benchDatasetListing(): Promise<void> {
  const nDatasets = arg("datasets", 200);
  const nFiles = arg("files", 50);
  const nUsers = arg("users", 10);
  const rounds = arg("rounds", 5);
  const work = await mkdtemp(join(tmpdir(), "gt-bench-dsls-"));
  const s3 = await startS3Server({ dir: join(work, "s3", "data"), buckets: [DEFAULT_BUCKET] });
  const storage = new Storage({
    endpoint: s3.endpoint,
    region: "us-east-1",
    bucket: DEFAULT_BUCKET,
    ...s3.credentials,
    presignTtlSeconds: 600,
  });
  try {
    const names = Array.from({ length: nDatasets }, (_, i) =>
      i % 4 === 3 ? `public.ds${i}` : `user.u${i % nUsers}.ds${i}`,
    );
    const objects = names.flatMap((n) =>
      Array.from({ length: nFiles }, (_, f) => keys.dataset(n) + `f${f}.bin`),
    );
    const fill = await timed(async () => {
      for (let i = 0; i < objects.length; i += 32)
        await Promise.all(objects.slice(i, i + 32).map((k) => storage.put(k, "x".repeat(100))));
    });
    const datasets = new Datasets(storage, new TenantLimitsReader(DEFAULT_TENANT_LIMITS), () => 1024 * 1024);
    // the first listing finds no index: it migrates (lists everything once, writes the entries)
    const migrate = await timed(() => datasets.list("u0", { verb: "datasetList" }));
    const t = { old: [] as number[], index: [] as number[] };
    let same = true;
    for (let r = 0; r < rounds; r++) {
      const a = await timed(() => oldList(storage, "u0"));
      const b = await timed(() => datasets.list("u0", { verb: "datasetList" }));
      t.old.push(a.s);
      t.index.push(b.s);
      same &&= JSON.stringify(a.value) === JSON.stringify(b.value.datasets);
    }
    const listed = (await datasets.list("u0", { verb: "datasetList" })).datasets.length;
    console.log(
      `phpo dataset ls of one user: ${nDatasets} datasets x ${nFiles} files (${objects.length} objects, ` +
        `${nUsers} users, a quarter published), median of ${rounds} rounds; filled in ${fill.s.toFixed(1)} s`,
    );
    console.log(`datasets listed for the user                ${listed} (same answer both ways: ${same})`);
    console.log(`old: every object under datasets/           ${median(t.old).toFixed(3).padStart(7)} s`);
    console.log(`index: one entry per dataset                ${median(t.index).toFixed(3).padStart(7)} s`);
    console.log(
      `ratio old/index                             ${(median(t.old) / median(t.index)).toFixed(1)}x`,
    );
    console.log(`one-time migration (first ls, no index)     ${migrate.s.toFixed(3).padStart(7)} s`);
  } finally {
    storage.close();
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await benchDatasetListing();
