// An attempt's inputs, before its payload runs: the sandbox, the training files, the restored
// checkpoint and input.json, each downloaded through its presigned URL into the working directory.
import { mkdirSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { safeExtract } from "./archive.ts";
import { insideDir, type JobContext } from "./jobContext.ts";
import { DEFAULT_INPUT_RETRY, download } from "./transfer.ts";
import { writeSmallFile, type LazyDir } from "./workDirs.ts";

/** A checkpoint is restored with at most this many times its size limit in bytes... */
export const CHECKPOINT_EXPANSION = 20;
/** ...and at most this many entries; a bigger one is not saved, as it could never be restored. */
export const CHECKPOINT_ENTRIES = 100_000;

export async function prepare(ctx: JobContext, workDir: string, scratch: LazyDir): Promise<void> {
  const { job, grant, signal } = ctx;
  const maxBytes = ctx.policy.maxInputBytes;
  // An input S3 cannot serve now is waited for (the claim is held by heartbeats): an attempt that
  // failed for an outage would be retried elsewhere into the same outage.
  const retry = ctx.inputRetry ?? DEFAULT_INPUT_RETRY;
  if (grant.sandbox) {
    const f = join(await scratch.ensure(), "sandbox.tgz");
    await download(grant.sandbox, f, { maxBytes, signal, retry });
    await safeExtract(f, workDir);
  }
  for (const d of grant.trainingData) {
    const dest = insideDir(workDir, d.name, "training file");
    // a file of a constituent dataset (segments' `datasets`) keeps its folder: <dataset>/<file>
    if (d.name.includes("/")) mkdirSync(dirname(dest), { recursive: true });
    await download(d.url, dest, { maxBytes, signal, retry });
  }
  writeSmallFile(
    insideDir(workDir, job.evaluation.trainingDataFile, "evaluationTrainingData"),
    JSON.stringify(grant.trainingData.map((d) => d.name)),
  );
  if (grant.checkpoint) {
    const f = join(await scratch.ensure(), "restore.tgz");
    await download(grant.checkpoint, f, { maxBytes: job.evaluation.checkPointLimitBytes, signal, retry });
    if (job.evaluation.checkPointToLoad)
      await copyFile(f, insideDir(workDir, job.evaluation.checkPointToLoad, "checkPointToLoad"));
    else
      await safeExtract(f, workDir, {
        maxBytes: job.evaluation.checkPointLimitBytes * CHECKPOINT_EXPANSION,
        maxEntries: CHECKPOINT_ENTRIES,
      });
  }
  writeSmallFile(insideDir(workDir, job.evaluation.inputFile, "evaluationInput"), JSON.stringify(job.point));
}
