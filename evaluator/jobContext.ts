// What one attempt's parts share: the job's context (its job, grant, link, runtime, site policy),
// the run key its container and folders are named by, the request to steering that outlives a
// steering restart, and the check that a name the job gives stays inside its working directory.
import { relative, resolve, sep } from "node:path";
import { sleep } from "../protocol/async.ts";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/log.ts";
import type { AgentReply, AgentRequest, ClaimGrant, Job } from "../protocol/messages.ts";
import type { Verdicts } from "./judgeGate.ts";
import type { LateUploads } from "./lateUploads.ts";
import type { SteeringLink } from "./link.ts";
import type { Runtime } from "./runtime/types.ts";
import type { RetryPolicy } from "./transfer.ts";

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
 * A request to steering that outlives a steering restart: UNAVAILABLE (no answer) is retried with
 * backoff for up to 10 minutes, so a finished evaluation is not lost while steering is down.
 */
export async function requestSteering(ctx: JobContext, req: AgentRequest): Promise<AgentReply> {
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

export function insideDir(dir: string, name: string, field: string): string {
  const p = resolve(dir, name);
  if (!p.startsWith(resolve(dir) + sep))
    throw new GridtuneError(
      "INVALID_ARGUMENT",
      `${field} ${JSON.stringify(name)} is outside the working directory`,
    );
  return p;
}

/** name relative to dir, refused if it is outside (lexically; links are PayloadTree's business). */
export function relativeInside(dir: string, name: string, field: string): string {
  return relative(resolve(dir), insideDir(dir, name, field));
}
