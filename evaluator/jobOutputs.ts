// An attempt's outcome once its payload ended: the verdict read from the run and output.json, and
// the uploads of its output, meta, metrics and log through presigned URLs.
import { closeSync, createWriteStream, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { GridtuneError, toWireError, type WireError } from "../protocol/errors.ts";
import type { FailureClass } from "../protocol/failures.ts";
import {
  EvaluationOutput,
  INLINE_OUTPUT_BYTES,
  MAX_META_BYTES,
  MAX_OUTPUT_BYTES,
} from "../protocol/files.ts";
import type { ArtifactKind, UploadedArtifact, UploadGrant } from "../protocol/messages.ts";
import { relativeInside, requestSteering, type JobContext } from "./jobContext.ts";
import type { StopReason } from "./link.ts";
import { openPayloadFile, readPayloadFile, type OpenedFile } from "./payloadFs.ts";
import type { RunOutcome } from "./runtime/types.ts";
import { bodyOf, upload } from "./transfer.ts";
import type { LazyDir } from "./workDirs.ts";

export function readVerdict(
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
export interface NotUploaded {
  kind: ArtifactKind;
  path: string;
  reason: string;
}

/**
 * Uploads the attempt's files through presigned URLs, each on its own: one that fails is returned
 * as missing (with the reason), the others still count. Nothing that is empty or travels inline
 * is uploaded: a quiet evaluation with a small output.json needs no S3 round trip at all.
 */
export async function uploadOutputs(
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
