// phpo dataset put DIR|FILES --name user.<me>.<name>: uploads training data into the user's own
// scope through presigned URLs (client/datasetTransfer.ts says how a re-run resumes).
import {
  DatasetName,
  DEFAULT_MULTIPART_THRESHOLD,
  MIN_PART_BYTES,
  userScope,
} from "../../../protocol/datasets.ts";
import { ValidationError } from "../../../protocol/errors.ts";
import type { VerbContext } from "../../context.ts";
import {
  defaultStateDir,
  localFiles,
  type PutOptions,
  type PutResult,
  putFile,
} from "../../datasetTransfer.ts";
import { renderTable } from "../../format.ts";
import { printJson } from "../../io.ts";

export interface PutFlags {
  name: string;
  multipartThreshold?: string;
  partSize?: string;
  stateDir?: string;
}

const MiB = 1024 * 1024;

function mib(value: string | undefined, option: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n * MiB < min)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${option} ${value}: give a size in MiB of at least ${min / MiB}, e.g. ${option} 64`,
    );
  return Math.floor(n * MiB);
}

/** The name, checked before any upload: a plain user writes only user.<user>.<name>. */
export function checkPutName(name: string, user: string): string {
  const p = DatasetName.safeParse(name);
  if (!p.success)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--name ${name}: ${p.error.issues[0]?.message ?? "invalid"}`,
    );
  const scope = userScope(user);
  if (!name.startsWith(scope) || name.length === scope.length)
    throw new ValidationError(
      "FORBIDDEN",
      `--name ${name}: your datasets are named ${scope}<name> (PanDA/Rucio naming: a user writes only their own scope), e.g. --name ${scope}mydata`,
    );
  return name;
}

export async function datasetPutVerb(
  ctx: VerbContext,
  args: readonly string[],
  flags: PutFlags,
  hooks: Pick<PutOptions, "onPart"> = {},
): Promise<number> {
  const files = localFiles(args);
  const threshold = mib(
    flags.multipartThreshold,
    "--multipart-threshold",
    DEFAULT_MULTIPART_THRESHOLD,
    MIN_PART_BYTES,
  );
  const partSize = mib(flags.partSize, "--part-size", 16 * MiB, MIN_PART_BYTES);
  const api = await ctx.api();
  const name = checkPutName(flags.name, api.user);
  const options: PutOptions = {
    threshold,
    partSize,
    stateDir: flags.stateDir ?? defaultStateDir(ctx.env),
    progress: (line) => ctx.io.stderr.write(`${line}\n`),
    ...hooks,
  };
  const results: PutResult[] = [];
  for (const f of files) {
    const r = await putFile(api, name, f, options);
    results.push(r);
    if (!ctx.json)
      ctx.io.stderr.write(`${name}/${r.path}: ${r.how === "skipped" ? "already there" : "stored"}\n`);
  }
  if (ctx.json) {
    printJson(ctx.io, { name, files: results });
    return 0;
  }
  ctx.io.stdout.write(
    renderTable(
      ["file", "bytes", "sha256", "upload"],
      results.map((r) => [
        r.path,
        r.size,
        r.sha256,
        r.how === "multipart" && r.partsResumed > 0 ? "resumed" : r.how,
      ]),
      { align: ["l", "r", "l", "l"] },
    ),
  );
  ctx.io.stdout.write(`dataset ${name}: ${results.length} files; use it with --trainingDS ${name}\n`);
  return 0;
}
