// Runs one attempt of one job with the PanDA file protocol: a fresh working directory with
// input.json, input_ds.json, the sandbox and the restored checkpoint; the payload runs through the
// runtime; progress lines and periodic checkpoints are forwarded while it runs; then output.json,
// metadata, metrics and the log are uploaded through presigned URLs and the result is published.
import { join } from "node:path";
import { GridtuneError, toWireError, type WireError } from "../protocol/errors.ts";
import { classOfError } from "../protocol/failures.ts";
import { CheckpointSaver } from "./checkpoints.ts";
import { runKey, type JobContext } from "./jobContext.ts";
import { prepare } from "./jobInputs.ts";
import { readVerdict, uploadOutputs } from "./jobOutputs.ts";
import { JudgeGate, VERDICT_WAIT_MS } from "./judgeGate.ts";
import type { StopReason } from "./link.ts";
import { ProgressForwarder, PROGRESS_POLL_MS, watchProgress } from "./progressForwarder.ts";
import type { RunOutcome } from "./runtime/types.ts";
import { freshDir, LazyDir, removeLeftover, removeTree } from "./workDirs.ts";

export { runKey, type JobContext, type SitePolicy } from "./jobContext.ts";
export { PROGRESS_POLL_MS } from "./progressForwarder.ts";

/**
 * Defence in depth behind steering's site policy: the process runtime runs the payload as the
 * agent's own user, unconfined, so it runs only the jobs of users this agent trusts, whatever
 * steering (or anyone able to publish to the site's queue) sent.
 */
function checkTrusted(ctx: JobContext): void {
  if (ctx.runtime.kind !== "process" || ctx.trustedUsers.includes(ctx.job.user)) return;
  throw new GridtuneError(
    "FORBIDDEN",
    `this agent's process runtime does not run jobs of user ${ctx.job.user}: it trusts only ` +
      `${ctx.trustedUsers.join(", ") || "nobody"} (--trusted-users); the job was not run`,
  );
}

export async function runJob(ctx: JobContext): Promise<void> {
  const { job } = ctx;
  const key = runKey(ctx.instance, job.jobId, job.attempt);
  const workDir = join(ctx.workRoot, key);
  // log, tarballs: beside the working directory (the payload never sees it), made on first use
  const scratch = new LazyDir(join(ctx.workRoot, `.${key}`));
  const startedAt = Date.now();
  const checkpoints = new CheckpointSaver(ctx, workDir, scratch);
  let outcome: RunOutcome | null = null;
  let error: WireError | null = null;
  let lastResource: number | null = null;
  try {
    checkTrusted(ctx);
    await freshDir(workDir);
    await removeLeftover(scratch.path); // of a crashed attempt
    await prepare(ctx, workDir, scratch);
    const gate = ctx.verdicts
      ? new JudgeGate(
          job.judgeAt,
          ctx.verdicts,
          ctx.signal,
          ctx.verdictWaitMs ?? VERDICT_WAIT_MS,
          ctx.logger,
          job.jobId,
        )
      : null;
    const progress = new ProgressForwarder(ctx, workDir, (r) => {
      lastResource = r;
      return gate?.reported(r) ?? false;
    });
    const timer = job.evaluation.checkPointToSave.length
      ? setInterval(() => void checkpoints.save(lastResource), job.evaluation.checkPointIntervalMs)
      : null;
    const poll = setInterval(() => void progress.poll(), PROGRESS_POLL_MS);
    const watcher = watchProgress(workDir, () => void progress.poll());
    try {
      outcome = await ctx.runtime.run(
        {
          key,
          image: job.evaluation.container,
          argv: job.evaluation.argv,
          workDir,
          env: {
            GRIDTUNE_JOB_ID: job.jobId,
            GRIDTUNE_ATTEMPT: String(job.attempt),
            GRIDTUNE_TASK_ID: job.taskId,
          },
          limits: {
            wallClockMs: Math.min(job.evaluation.timeoutMs, ctx.policy.maxWallClockMs),
            memoryBytes: Math.min(job.evaluation.memoryBytes, ctx.policy.maxMemoryBytes),
            nanoCpus: Math.min(job.evaluation.nanoCpus, ctx.policy.maxNanoCpus),
            pidsLimit: ctx.policy.pidsLimit,
          },
          network: ctx.policy.allowNetwork ? job.evaluation.network : "none",
          gpus: ctx.gpus,
          logFile: join(scratch.path, "log.txt"),
          maxLogBytes: ctx.policy.maxLogBytes,
          stopGraceMs: ctx.policy.stopGraceMs,
        },
        {
          signal: ctx.signal,
          onStdoutLine: (line) => progress.stdoutLine(line),
          onStarted: (control) => gate?.started(control),
        },
      );
    } finally {
      if (timer) clearInterval(timer);
      clearInterval(poll);
      watcher?.close();
      await progress.poll();
      await progress.flushed();
      await gate?.end();
      await checkpoints.idle();
    }
  } catch (e) {
    error = toWireError(e);
    ctx.logger.warn("attempt failed before or while running", {
      jobId: job.jobId,
      attempt: job.attempt,
      error: error.message,
    });
  }
  const reason = ctx.signal.aborted ? (ctx.signal.reason as StopReason) : null;
  if (reason === "stale") {
    ctx.logger.info("stale attempt stopped; no result is sent", { jobId: job.jobId, attempt: job.attempt });
    await cleanup(workDir, scratch);
    return;
  }
  const verdict =
    outcome && !error
      ? readVerdict(ctx, workDir, outcome, reason)
      : {
          status: "failed" as const,
          loss: null,
          error,
          // no outcome: the run never started (image, daemon, S3) or the agent failed around it
          failureClass: error ? classOfError(error.code) : ("infrastructure" as const),
          output: null,
        };
  // Keep the last state for a resume: on a hand-back, on success (ASHA promotions resume from it)
  // and on failure (the retry resumes from it).
  if (job.evaluation.checkPointToSave.length) await checkpoints.save(lastResource, true);
  // A computed loss is never thrown away: what S3 does not take now is listed as missing in the
  // result (which commits with the loss) and uploaded later on its own (lateUploads.ts).
  const { uploaded: artifacts, missing } = await uploadOutputs(
    ctx,
    workDir,
    scratch,
    verdict.output !== null,
  );
  for (const m of missing)
    ctx.logger.error(`${m.kind} not uploaded; the result is reported without it`, {
      jobId: job.jobId,
      attempt: job.attempt,
      error: m.reason,
    });
  const status = reason === "drain" || reason === "shutdown" ? "preempted" : verdict.status;
  const { loss, error: resultError } = verdict;
  await ctx.link.report({
    type: "result",
    jobId: job.jobId,
    attempt: job.attempt,
    status,
    loss,
    metrics: loss === null ? {} : { loss },
    resource: lastResource,
    error: resultError,
    artifacts,
    missing: missing.map(({ kind, reason }) => ({
      kind,
      reason: ctx.late ? `${reason} (the agent keeps trying)` : reason,
    })),
    output: verdict.output,
    failureClass: status === "preempted" ? "preempted" : verdict.failureClass,
    startedAt,
    finishedAt: Date.now(),
    exitCode: outcome?.exitCode ?? null,
  });
  // handed over before the attempt's folders are removed (the files move out of them)
  for (const m of missing)
    await ctx.late?.add({ jobId: job.jobId, attempt: job.attempt, kind: m.kind, file: m.path });
  await cleanup(workDir, scratch);
}

async function cleanup(workDir: string, scratch: LazyDir): Promise<void> {
  await removeTree(workDir);
  await removeLeftover(scratch.path);
}
