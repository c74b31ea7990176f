// Runs one attempt of one job with the PanDA file protocol: a fresh working directory with
// input.json, input_ds.json, the sandbox and the restored checkpoint; the payload runs through the
// runtime; progress lines and periodic checkpoints are forwarded while it runs; then output.json,
// metadata, metrics and the log are uploaded through presigned URLs and the result is published.
import {
  closeSync,
  createWriteStream,
  lstatSync,
  mkdirSync,
  read,
  statSync,
  watch,
  type FSWatcher,
} from "node:fs";
import { open, stat, copyFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { sleep } from "../protocol/async.ts";
import { GridtuneError, UnavailableError, toWireError, type WireError } from "../protocol/errors.ts";
import { classOfError, type FailureClass } from "../protocol/failures.ts";
import {
  EvaluationOutput,
  INLINE_OUTPUT_BYTES,
  MAX_META_BYTES,
  MAX_OUTPUT_BYTES,
  PROGRESS_FILE,
  PROGRESS_STDOUT_MARKER,
} from "../protocol/files.ts";
import type { Logger } from "../protocol/log.ts";
import type {
  AgentReply,
  AgentRequest,
  ArtifactKind,
  ClaimGrant,
  Job,
  UploadedArtifact,
  UploadGrant,
} from "../protocol/messages.ts";
import { createTarball, fingerprint, safeExtract } from "./archive.ts";
import { openPayloadFile, readPayloadFile, type OpenedFile } from "./payloadFs.ts";
import type { StopReason, SteeringLink } from "./link.ts";
import { JudgeGate, VERDICT_WAIT_MS, type Verdicts } from "./judgeGate.ts";
import { parseProgressLine } from "./progress.ts";
import type { Runtime, RunOutcome } from "./runtime/types.ts";
import type { LateUploads } from "./lateUploads.ts";
import { bodyOf, DEFAULT_INPUT_RETRY, download, upload, type RetryPolicy } from "./transfer.ts";
import { freshDir, LazyDir, removeLeftover, removeTree, writeSmallFile } from "./workDirs.ts";

const readAt = promisify(read);

/** A checkpoint is restored with at most this many times its size limit in bytes... */
const CHECKPOINT_EXPANSION = 20;
/** ...and at most this many entries; a bigger one is not saved, as it could never be restored. */
const CHECKPOINT_ENTRIES = 100_000;
/**
 * How often the progress file is read while the payload runs. A stopping scheduler's verdict can
 * only follow a report steering has seen: at 1 s, a payload with fast epochs trained on for a
 * second's worth of epochs before its report even left the agent. A read of an unchanged file is
 * one lstat and one fstat, so 100 ms costs little; it runs only while the payload runs.
 */
export const PROGRESS_POLL_MS = 100;

export interface SitePolicy {
  allowNetwork: boolean;
  maxMemoryBytes: number;
  maxNanoCpus: number;
  pidsLimit: number;
  maxLogBytes: number;
  maxWallClockMs: number;
  stopGraceMs: number;
  maxInputBytes: number;
}

export interface JobContext {
  job: Job;
  grant: ClaimGrant;
  link: SteeringLink;
  runtime: Runtime;
  workRoot: string;
  gpus: string[];
  policy: SitePolicy;
  logger: Logger;
  /** Aborted with a StopReason as its reason. */
  signal: AbortSignal;
  /** Takes the artifacts S3 did not accept when the attempt ended (absent: they are dropped). */
  late?: LateUploads;
  /** Retries of each input download (DEFAULT_INPUT_RETRY when absent: it waits out an S3 outage). */
  inputRetry?: RetryPolicy;
  /** Retries of each upload when the attempt ends (what still fails is uploaded later by `late`). */
  uploadRetry?: RetryPolicy;
  /** The agent instance (agentInstance()): the first part of every run key and working dir. */
  instance: string;
  /** Users whose jobs the process runtime runs; any other user's job fails with FORBIDDEN. */
  trustedUsers: readonly string[];
  /** Steering's `continue` verdicts for this attempt (absent: the payload is never paused). */
  verdicts?: Verdicts;
  /** How long a payload paused at a judged level waits for its verdict (VERDICT_WAIT_MS when absent). */
  verdictWaitMs?: number;
}

/** The run key of an attempt: the container name and working-directory name derive from it. */
export const runKey = (instance: string, jobId: string, attempt: number): string =>
  `${instance}-${jobId}-a${attempt}`;

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

/**
 * A request to steering that outlives a steering restart: UNAVAILABLE (no answer) is retried with
 * backoff for up to 10 minutes, so a finished evaluation is not lost while steering is down.
 */
async function requestSteering(ctx: JobContext, req: AgentRequest): Promise<AgentReply> {
  const deadline = Date.now() + 10 * 60_000;
  for (let i = 0; ; i++) {
    try {
      return await ctx.link.request(req);
    } catch (e) {
      if (!(e instanceof UnavailableError) || Date.now() > deadline) throw e;
      if (i % 5 === 0)
        ctx.logger.warn(`steering does not answer ${req.type}; retrying`, { jobId: ctx.job.jobId });
      await sleep(Math.min(10_000, 250 * 2 ** i));
    }
  }
}

async function cleanup(workDir: string, scratch: LazyDir): Promise<void> {
  await removeTree(workDir);
  await removeLeftover(scratch.path);
}

function insideDir(dir: string, name: string, field: string): string {
  const p = resolve(dir, name);
  if (!p.startsWith(resolve(dir) + sep))
    throw new GridtuneError(
      "INVALID_ARGUMENT",
      `${field} ${JSON.stringify(name)} is outside the working directory`,
    );
  return p;
}

/** name relative to dir, refused if it is outside (lexically; links are PayloadTree's business). */
function relativeInside(dir: string, name: string, field: string): string {
  return relative(resolve(dir), insideDir(dir, name, field));
}

async function prepare(ctx: JobContext, workDir: string, scratch: LazyDir): Promise<void> {
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

function readVerdict(
  ctx: JobContext,
  workDir: string,
  o: RunOutcome,
  reason: StopReason | null,
): {
  status: "ok" | "failed" | "stopped";
  loss: number | null;
  error: WireError | null;
  failureClass: FailureClass | null;
  /** output.json's text when it is small enough to travel inline. */
  output: string | null;
} {
  let output: string | null = null;
  const fail = (code: WireError["code"], message: string, failureClass: FailureClass = "payload") => ({
    status: "failed" as const,
    loss: null,
    error: { code, message, retryable: false },
    failureClass,
    output,
  });
  if (reason === "pruned" || reason === "killed" || reason === "paused")
    return { status: "stopped", loss: null, error: null, failureClass: null, output };
  if (o.timedOut)
    return fail(
      "EVALUATION_FAILED",
      `the evaluation ran past its wall-clock limit and was stopped`,
      "timeout",
    );
  if (o.oomKilled)
    return fail(
      "EVALUATION_FAILED",
      `the evaluation ran out of memory (limit ${ctx.job.evaluation.memoryBytes} bytes)`,
      "oom",
    );
  if (o.exitCode !== 0)
    return fail(
      "EVALUATION_FAILED",
      `the evaluation exited with code ${o.exitCode}; see its log (phpo logs)`,
    );
  const name = ctx.job.evaluation.outputFile;
  let raw: Buffer | null;
  try {
    raw = readPayloadFile(workDir, relativeInside(workDir, name, "evaluationOutput"), MAX_OUTPUT_BYTES);
  } catch (e) {
    return fail("OUTPUT_INVALID", toWireError(e).message);
  }
  if (!raw) return fail("OUTPUT_INVALID", `the evaluation wrote no ${name}`);
  if (raw.length <= INLINE_OUTPUT_BYTES) output = raw.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    return fail("OUTPUT_INVALID", `${name} is not valid JSON (a NaN or Infinity loss is not JSON either)`);
  }
  const r = EvaluationOutput.safeParse(json);
  if (!r.success)
    return fail(
      "OUTPUT_INVALID",
      `${name}: ${r.error.issues[0]?.path.join(".") ?? ""} ${r.error.issues[0]?.message ?? ""}`.trim(),
    );
  if (r.data.status !== 0)
    return fail(
      "EVALUATION_FAILED",
      `${name} says status ${r.data.status}${r.data.message ? `: ${r.data.message}` : ""}`,
    );
  if (r.data.loss === null || r.data.loss === undefined) return fail("OUTPUT_INVALID", `${name} has no loss`);
  return { status: "ok", loss: r.data.loss, error: null, failureClass: null, output };
}

/** An artifact that S3 did not take when the attempt ended, with why. */
interface NotUploaded {
  kind: ArtifactKind;
  path: string;
  reason: string;
}

/**
 * Uploads the attempt's files through presigned URLs, each on its own: one that fails is returned
 * as missing (with the reason), the others still count. Nothing that is empty or travels inline
 * is uploaded: a quiet evaluation with a small output.json needs no S3 round trip at all.
 */
async function uploadOutputs(
  ctx: JobContext,
  workDir: string,
  scratch: LazyDir,
  outputInline: boolean,
): Promise<{ uploaded: UploadedArtifact[]; missing: NotUploaded[] }> {
  const ev = ctx.job.evaluation;
  // The payload's files are opened here (no link followed out of the working directory) and
  // uploaded through these descriptors, so what is sent is what was checked.
  const present: Array<{ kind: ArtifactKind; source: string | OpenedFile; size: number }> = [];
  const opened: OpenedFile[] = [];
  const add = (kind: ArtifactKind, source: string | OpenedFile, size: number, max: number) => {
    // nothing to keep in an empty file (a quiet run's log)
    if (size === 0) return;
    if (size > max) {
      ctx.logger.warn(`${kind} file too large; not uploaded`, { jobId: ctx.job.jobId, size, limit: max });
      return;
    }
    present.push({ kind, source, size });
  };
  /** The payload's file, opened inside the working directory; one that leads outside is skipped. */
  const fromPayload = (kind: ArtifactKind, name: string, field: string, max: number) => {
    let f: OpenedFile | null;
    try {
      f = openPayloadFile(workDir, relativeInside(workDir, name, field));
    } catch (e) {
      ctx.logger.warn(`${field} not uploaded: ${toWireError(e).message}`, { jobId: ctx.job.jobId });
      return;
    }
    if (f === null) return;
    opened.push(f);
    add(kind, f, f.size, max);
  };
  const uploaded: UploadedArtifact[] = [];
  const missing: NotUploaded[] = [];
  /**
   * A file S3 did not take waits for a later upload as a file of the agent's own (the scratch
   * folder, outside the payload's reach): a payload file is copied there from its checked
   * descriptor, never moved by a path the payload could have swapped for a link.
   */
  const notUploaded = async (
    f: { kind: ArtifactKind; source: string | OpenedFile },
    reason: string,
  ): Promise<void> => {
    if (typeof f.source === "string") {
      missing.push({ kind: f.kind, path: f.source, reason });
      return;
    }
    const copy = join(await scratch.ensure(), `late-${f.kind}`);
    try {
      await copyFromDescriptor(f.source, copy);
      missing.push({ kind: f.kind, path: copy, reason });
    } catch (e) {
      missing.push({ kind: f.kind, path: copy, reason: `${reason}; not kept: ${toWireError(e).message}` });
    }
  };
  try {
    const log = join(scratch.path, "log.txt");
    const logStat = statSync(log, { throwIfNoEntry: false }); // the agent's own file
    if (logStat?.isFile()) add("log", log, logStat.size, Number.POSITIVE_INFINITY);
    if (!outputInline && ev.outputFile)
      fromPayload("output", ev.outputFile, "evaluationOutput", MAX_OUTPUT_BYTES);
    if (ev.metaFile) fromPayload("meta", ev.metaFile, "evaluationMeta", MAX_META_BYTES);
    if (ev.metricsFile) fromPayload("metrics", ev.metricsFile, "evaluationMetrics", 5 * 1024 ** 3);
    if (present.length === 0) return { uploaded, missing };
    let grants: UploadGrant[];
    try {
      const reply = await requestSteering(ctx, {
        type: "presign",
        jobId: ctx.job.jobId,
        attempt: ctx.job.attempt,
        artifacts: present.map(({ kind, size }) => ({ kind, size })),
      });
      if (reply.type !== "presigned")
        throw GridtuneError.fromWire(
          reply.type === "error"
            ? reply.error
            : { code: "INTERNAL", message: `unexpected ${reply.type}`, retryable: false },
        );
      grants = reply.uploads;
    } catch (e) {
      const reason = `no upload URL from steering: ${toWireError(e).message}`;
      for (const f of present) await notUploaded(f, reason);
      return { uploaded, missing };
    }
    for (const f of present) {
      const g = grants.find((x) => x.kind === f.kind);
      try {
        if (!g) throw new GridtuneError("INTERNAL", `steering sent no upload URL for the ${f.kind}`);
        const r = await upload(g.url, f.source, { retry: ctx.uploadRetry });
        uploaded.push({ kind: g.kind, key: g.key, size: r.size, etag: r.etag });
      } catch (e) {
        await notUploaded(f, toWireError(e).message);
      }
    }
    return { uploaded, missing };
  } finally {
    for (const f of opened) closeSync(f.fd);
  }
}

/** Copies an opened payload file, through its descriptor, into a new file of the agent's own. */
function copyFromDescriptor(f: OpenedFile, dest: string): Promise<void> {
  return pipeline(bodyOf(f, f.size), createWriteStream(dest, { flags: "wx", mode: 0o600 }));
}

/** Periodic checkpoints: tar the checkPointToSave paths when they changed, upload, report. */
class CheckpointSaver {
  private last = "";
  /** Reasons for left-out paths already written to the job's log. */
  private readonly noted = new Set<string>();
  private running: Promise<void> = Promise.resolve();
  constructor(
    private readonly ctx: JobContext,
    private readonly workDir: string,
    private readonly scratch: LazyDir,
  ) {}

  idle(): Promise<void> {
    return this.running;
  }

  save(resource: number | null, final = false): Promise<void> {
    this.running = this.running
      .then(() => this.saveNow(resource, final))
      .catch((e: unknown) => {
        this.ctx.logger.warn("checkpoint not saved; the previous one is kept", {
          jobId: this.ctx.job.jobId,
          error: toWireError(e).message,
        });
      });
    return this.running;
  }

  /**
   * Links and special files are never packed (a link could name a host file): the payload goes
   * on, and its log says what its checkpoint lacks, once per reason and attempt.
   */
  private async note(log: string, skipped: string[]): Promise<void> {
    for (const why of skipped) {
      if (this.noted.has(why)) continue;
      this.noted.add(why);
      await this.scratch.ensure(); // a quiet payload has no log (nor its directory) yet
      await appendLog(log, `[gridtune] checkpoint: ${why}\n`);
    }
  }

  private async saveNow(resource: number | null, final: boolean): Promise<void> {
    const { job } = this.ctx;
    const paths = job.evaluation.checkPointToSave;
    const limit = job.evaluation.checkPointLimitBytes;
    const log = join(this.scratch.path, "log.txt");
    const fp = fingerprint(this.workDir, paths);
    await this.note(log, fp.skipped);
    if (fp.value === "" || fp.value === this.last) return;
    const file = join(await this.scratch.ensure(), "checkpoint.tgz");
    // what is restored is extracted under 20x the limit: a bigger checkpoint could never be used
    const packed = await createTarball(this.workDir, paths, file, {
      maxBytes: limit * CHECKPOINT_EXPANSION,
      maxEntries: CHECKPOINT_ENTRIES,
    }).catch(async (e: unknown) => {
      const msg = `checkpoint not saved: ${toWireError(e).message}; the previous checkpoint is kept`;
      await appendLog(log, `[gridtune] ${msg}\n`);
      throw e;
    });
    await this.note(log, packed.skipped);
    if (packed.present.length === 0) return;
    const size = (await stat(file)).size;
    if (size > limit) {
      const msg = `checkpoint of ${size} bytes exceeds the limit of ${limit}; the previous checkpoint is kept`;
      await appendLog(log, `[gridtune] ${msg}\n`);
      throw new GridtuneError("TOO_LARGE", msg);
    }
    const reply = await requestSteering(this.ctx, {
      type: "presign",
      jobId: job.jobId,
      attempt: job.attempt,
      artifacts: [{ kind: "checkpoint", size }],
    });
    if (reply.type !== "presigned" || !reply.uploads[0])
      throw new GridtuneError(
        "STALE_ATTEMPT",
        `no upload URL for the checkpoint${reply.type === "error" ? `: ${reply.error.message}` : ""}`,
      );
    const g = reply.uploads[0];
    const r = await upload(g.url, file);
    await this.ctx.link.report({
      type: "checkpoint",
      jobId: job.jobId,
      attempt: job.attempt,
      artifact: { kind: "checkpoint", key: g.key, size: r.size, etag: r.etag },
      resource,
    });
    this.last = fp.value;
    this.ctx.logger.info(final ? "final checkpoint saved" : "checkpoint saved", {
      jobId: job.jobId,
      attempt: job.attempt,
      size,
      resource,
    });
  }
}

async function appendLog(path: string, text: string): Promise<void> {
  const f = await open(path, "a");
  await f.write(text);
  await f.close();
}

/**
 * Reads the progress file as soon as the payload writes it (inotify on the working directory),
 * so a stopping scheduler's pause lands within a report, not within a poll; the 100 ms poll stays
 * as the fallback where watching fails (no inotify watches left). Events of other files only
 * cost a read that finds nothing new, and a burst of them joins one queued read.
 */
function watchProgress(workDir: string, onChange: () => void): FSWatcher | null {
  try {
    const w = watch(workDir, { persistent: false }, (_event, name) => {
      if (name === null || name === PROGRESS_FILE) onChange();
    });
    w.on("error", () => w.close());
    return w;
  } catch {
    return null;
  }
}

/** Forwards progress from the progress file and marked stdout lines, in order, one report each. */
class ProgressForwarder {
  private offset = 0;
  private partial = "";
  private chain: Promise<void> = Promise.resolve();
  private count = 0;
  private lastReported = Number.NEGATIVE_INFINITY;
  /** Set when the progress file was refused (a link out, a FIFO): it is not read again. */
  private refused = false;
  constructor(
    private readonly ctx: JobContext,
    private readonly workDir: string,
    /** Returns whether the payload is held at this report for steering's verdict. */
    private readonly onResource: (r: number) => boolean,
  ) {}

  stdoutLine(line: string): void {
    if (line.startsWith(PROGRESS_STDOUT_MARKER))
      this.forward(line.slice(PROGRESS_STDOUT_MARKER.length), "stdout");
  }

  /** The read in progress: reads run one after another, never two at the same offset. */
  private reading: Promise<void> = Promise.resolve();
  /** A read is queued and not started: another poll joins it (a payload's burst of file events). */
  private queued: Promise<void> | null = null;

  /**
   * Reads what was appended to the progress file; never rejects (it runs from a timer). A poll
   * while a read is still in progress (a slow disk, a loaded host) waits for it, then reads on
   * from where it ended, so the same lines are never forwarded twice and the final poll after the
   * payload ended sees every line.
   */
  poll(): Promise<void> {
    if (this.queued) return this.queued;
    this.reading = this.reading
      .then(() => {
        this.queued = null;
        return this.readAppended();
      })
      .catch((e: unknown) =>
        this.ctx.logger.warn(`${PROGRESS_FILE} could not be read: ${toWireError(e).message}`, {
          jobId: this.ctx.job.jobId,
        }),
      );
    this.queued = this.reading;
    return this.reading;
  }

  private async readAppended(): Promise<void> {
    // usually absent: a check that raises no error when it is (lstat: a link is PayloadTree's)
    if (this.refused || !lstatSync(join(this.workDir, PROGRESS_FILE), { throwIfNoEntry: false })) return;
    let f: OpenedFile | null;
    try {
      f = openPayloadFile(this.workDir, PROGRESS_FILE);
    } catch (e) {
      this.refused = true;
      this.ctx.logger.warn(`${PROGRESS_FILE} is not read: ${toWireError(e).message}`, {
        jobId: this.ctx.job.jobId,
      });
      return;
    }
    if (f === null) return;
    try {
      if (f.size <= this.offset) return;
      const len = Math.min(f.size - this.offset, 1024 * 1024);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await readAt(f.fd, buf, 0, len, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buf.subarray(0, bytesRead).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) this.forward(l, "file");
    } catch (e) {
      this.ctx.logger.warn(`${PROGRESS_FILE} could not be read: ${toWireError(e).message}`, {
        jobId: this.ctx.job.jobId,
      });
    } finally {
      closeSync(f.fd);
    }
  }

  flushed(): Promise<void> {
    return this.chain;
  }

  private forward(text: string, source: "file" | "stdout"): void {
    // The payload may write both the file and the stdout marker for the same step: a report is
    // forwarded once, the first time its resource level is seen (levels only grow within an attempt).
    const p = parseProgressLine(text, source === "file" ? ++this.count : this.count + 1);
    if (!p || p.resource <= this.lastReported) return;
    this.lastReported = p.resource;
    const held = this.onResource(p.resource);
    const { job } = this.ctx;
    this.chain = this.chain
      .then(() =>
        this.ctx.link.report({
          type: "progress",
          jobId: job.jobId,
          attempt: job.attempt,
          resource: p.resource,
          metrics: p.metrics,
          ...(held ? { held } : {}),
        }),
      )
      .catch((e: unknown) =>
        this.ctx.logger.warn("progress report lost", { jobId: job.jobId, error: toWireError(e).message }),
      );
  }
}
