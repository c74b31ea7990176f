// `gridtune-steering admin dataset publish|unpublish|list`: datasets readable by every user. They
// run with steering's S3 settings (flags, or S3_ENDPOINT, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// GRIDTUNE_BUCKET); without keys in the environment, the embedded stack's pair in
// `<dir>/s3/credentials.json` is used. There is no API verb: a phpo user cannot publish.
import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describeZodError, ValidationError } from "../../protocol/errors.ts";
import { z } from "zod";
import { SteeringConfig } from "../shell/config.ts";
import { DatasetIndex } from "../shell/datasetIndex.ts";
import { listPublished, parseSource, publishDataset, unpublishDataset } from "../shell/datasetPublish.ts";
import { Storage, type StorageConfig } from "../shell/storage.ts";

/** `<stack dir>/s3/credentials.json`, the embedded S3 server's only key pair. */
const S3Credentials = z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) });

interface S3Flags {
  s3Endpoint?: string;
  s3Bucket?: string;
  dir: string;
  json?: boolean;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Steering's S3 settings: flags > environment > the embedded stack's credentials file. */
export async function adminStorageConfig(o: S3Flags, env: NodeJS.ProcessEnv): Promise<StorageConfig> {
  let accessKeyId = env.AWS_ACCESS_KEY_ID;
  let secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    const file = join(o.dir, "s3", "credentials.json");
    const text = await readFile(file, "utf8").catch(() => null);
    const parsed = text === null ? null : S3Credentials.safeParse(parseJson(text));
    if (!parsed?.success)
      throw new ValidationError(
        "INVALID_CONFIG",
        `steering's S3 keys are needed: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --dir ` +
          `of an embedded stack (no readable ${file})`,
      );
    ({ accessKeyId, secretAccessKey } = parsed.data);
  }
  const r = SteeringConfig.shape.s3.safeParse({
    endpoint: o.s3Endpoint ?? env.S3_ENDPOINT ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    bucket: o.s3Bucket ?? env.GRIDTUNE_BUCKET ?? "gridtune",
    accessKeyId,
    secretAccessKey,
  });
  if (!r.success)
    throw new ValidationError(
      "INVALID_CONFIG",
      `S3 settings:\n${describeZodError(r.error)}\n(pass --s3-endpoint or set S3_ENDPOINT: steering's endpoint)`,
    );
  return r.data;
}

export function registerAdminDatasetCommands(
  admin: Command,
  write: (text: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const ds = admin
    .command("dataset")
    .description("datasets every user may read (any scope but user.*), with recorded sha256")
    .option("--s3-endpoint <url>", "steering's S3 endpoint (env S3_ENDPOINT)")
    .option("--s3-bucket <name>", "steering's bucket (env GRIDTUNE_BUCKET, default gridtune)");

  const withStorage = async <T>(cmd: Command, fn: (s: Storage, o: S3Flags) => Promise<T>): Promise<T> => {
    const o = cmd.optsWithGlobals<S3Flags>();
    const storage = new Storage(await adminStorageConfig(o, env));
    try {
      return await fn(storage, o);
    } finally {
      storage.close();
    }
  };

  const publish = ds
    .command("publish <name>")
    .description("copy a user's dataset (S3 server-side) or upload a directory; sha256 recorded")
    .requiredOption("--from <source>", "user.<u>.<name> (a user's dataset) or a local directory")
    .option("--replace", "overwrite a published dataset of that name");
  publish.action((name: string, f: { from: string; replace?: boolean }) =>
    withStorage(publish, async (s, o) => {
      const r = await publishDataset(s, name, parseSource(f.from), f.replace === true);
      const bytes = r.files.reduce((n, x) => n + x.size, 0);
      write(
        o.json
          ? JSON.stringify(r, null, 2) + "\n"
          : `published ${r.name}: ${r.files.length} files, ${bytes} bytes, sha256 recorded (readable by every user)\n`,
      );
    }),
  );
  const unpublish = ds.command("unpublish <name>").description("remove a published dataset");
  unpublish.action((name: string) =>
    withStorage(unpublish, async (s, o) => {
      const r = await unpublishDataset(s, name);
      write(o.json ? JSON.stringify(r) + "\n" : `unpublished ${r.name}: ${r.files} files removed\n`);
    }),
  );
  const reindex = ds
    .command("reindex")
    .description("list every dataset's files once and rewrite the dataset index that phpo dataset ls reads");
  reindex.action(() =>
    withStorage(reindex, async (s, o) => {
      const r = await new DatasetIndex(s).rebuild(true);
      write(o.json ? JSON.stringify(r) + "\n" : `dataset index rebuilt: ${r.datasets} datasets\n`);
    }),
  );
  const list = ds.command("list").description("the published datasets");
  list.action(() =>
    withStorage(list, async (s, o) => {
      const r = await listPublished(s);
      write(
        o.json
          ? JSON.stringify(r, null, 2) + "\n"
          : r.length === 0
            ? "no published datasets\n"
            : r
                .map(
                  (d) =>
                    `${d.name.padEnd(40)} ${d.files} files ${d.bytes} bytes, ${d.checksummed} with sha256`,
                )
                .join("\n") + "\n",
      );
    }),
  );
}
