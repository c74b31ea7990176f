// The messages between steering and the agents, one schema per message, unions split on `type`
// (the client API's messages are in api.ts).
//   gt.jobs.<site>                  Job                (JetStream JOBS, work queue)
//   gt.hb.<site>.<agent>            AgentRequest → AgentReply   (core request/reply)
//   gt.results.<site>.<agent>.<job> AgentReport        (JetStream RESULTS)
//   gt.ctl.<site>.<agent|all>       ControlMessage     (core)
import { z } from "zod";
import { WireError } from "./errors.ts";
import { JOB_ID_RE, TASK_ID_RE } from "./names.ts";
import { Point } from "./points.ts";
import { INLINE_OUTPUT_BYTES } from "./files.ts";
import { FailureClass } from "./failures.ts";

const JobId = z.string().regex(JOB_ID_RE, "job ids look like t12-p3-j1");
export const TaskId = z.string().regex(TASK_ID_RE, "task ids are decimal numbers");
const Attempt = z.number().int().positive();
/** Named numbers of one report: at most MAX_METRICS, names up to 128 characters (they are logged). */
export const MAX_METRICS = 64;
const Metrics = z
  .record(z.string().max(128), z.number())
  .refine((m) => Object.keys(m).length <= MAX_METRICS, `at most ${MAX_METRICS} metrics per report`);

// ---------------------------------------------------------------------------------- jobs
export const ArtifactKind = z.enum(["checkpoint", "metrics", "log", "meta", "output"]);
export type ArtifactKind = z.infer<typeof ArtifactKind>;

/**
 * What the agent needs to run one attempt: the payload, its files and limits. Steering compiles it
 * once per task (durations in ms, sizes in bytes, the exec string as argv tokens).
 */
export const JobEvaluation = z.object({
  container: z.string(),
  argv: z.array(z.string()).min(1),
  inputFile: z.string(),
  trainingDataFile: z.string(),
  outputFile: z.string(),
  metaFile: z.string().nullable(),
  metricsFile: z.string().nullable(),
  checkPointToSave: z.array(z.string()),
  checkPointToLoad: z.string().nullable(),
  checkPointIntervalMs: z.number().positive(),
  checkPointLimitBytes: z.number().int().positive(),
  timeoutMs: z.number().positive(),
  memoryBytes: z.number().int().positive(),
  nanoCpus: z.number().int().positive(),
  network: z.enum(["none", "bridge"]),
});
export type JobEvaluation = z.infer<typeof JobEvaluation>;

/**
 * One attempt of one evaluation job, published to the site's work queue. It carries only what the
 * agent reads (protocol version 2 dropped the fields it never read: the agent gets its training
 * files, sandbox and checkpoint from the claim grant, and forwards every progress report).
 */
export const Job = z.object({
  jobId: JobId,
  attempt: Attempt,
  /** The payload sees it as GRIDTUNE_TASK_ID. */
  taskId: TaskId,
  /** A process-runtime agent runs only the jobs of the users it trusts. */
  user: z.string(),
  /** The point as input.json receives it (with the resource key set for ASHA jobs). */
  point: Point,
  evaluation: JobEvaluation,
  /**
   * The resource levels at which a stopping scheduler judges the running trial (its rungs). At the
   * first report at or past each one the agent pauses the payload until steering's verdict (a stop,
   * or a `continue` for that report), so a pruned trial trains no further than that report.
   */
  judgeAt: z.array(z.number().finite()).max(64).default([]),
  /**
   * Agents of the site that already failed this job: such an agent puts the retry back a few
   * times, for another agent of the site to take it (steering lists them only while one has room).
   */
  avoidAgents: z.array(z.string()).max(64).default([]),
});
export type Job = z.infer<typeof Job>;

// -------------------------------------------------------- agent → steering (request/reply)
export const RunningAttempt = z.object({ jobId: JobId, attempt: Attempt });
export type RunningAttempt = z.infer<typeof RunningAttempt>;

export const AgentRequest = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("register"),
    v: z.number().int(),
    slots: z.number().int().positive(),
    gpus: z.array(z.string()),
    runtime: z.enum(["docker", "process"]),
    software: z.string(),
  }),
  z.object({
    type: z.literal("heartbeat"),
    running: z.array(RunningAttempt),
    freeSlots: z.number().int().nonnegative(),
    draining: z.boolean(),
  }),
  /** Before running a job: steering checks the lease and returns presigned input URLs. */
  z.object({ type: z.literal("claim"), jobId: JobId, attempt: Attempt }),
  /** Before uploading: presigned PUT URLs for exactly these artifacts of this attempt. */
  z.object({
    type: z.literal("presign"),
    jobId: JobId,
    attempt: Attempt,
    artifacts: z.array(z.object({ kind: ArtifactKind, size: z.number().int().nonnegative() })).min(1),
  }),
  z.object({ type: z.literal("bye"), running: z.array(RunningAttempt) }),
]);
export type AgentRequest = z.infer<typeof AgentRequest>;

export const PresignedUrl = z.object({ name: z.string(), url: z.string() });
export type PresignedUrl = z.infer<typeof PresignedUrl>;

export const ClaimGrant = z.object({
  sandbox: z.string().nullable(),
  trainingData: z.array(PresignedUrl),
  checkpoint: z.string().nullable(),
});
export type ClaimGrant = z.infer<typeof ClaimGrant>;

export const UploadGrant = z.object({ kind: ArtifactKind, key: z.string(), url: z.string() });
export type UploadGrant = z.infer<typeof UploadGrant>;

export const AgentReply = z.discriminatedUnion("type", [
  z.object({ type: z.literal("registered"), leaseMs: z.number(), heartbeatMs: z.number() }),
  /** Heartbeat answer: attempts this agent runs that are no longer current (stop them). */
  z.object({ type: z.literal("ack"), stale: z.array(RunningAttempt) }),
  z.object({ type: z.literal("claimed"), grant: ClaimGrant }),
  z.object({ type: z.literal("presigned"), uploads: z.array(UploadGrant) }),
  z.object({ type: z.literal("error"), error: WireError }),
]);
export type AgentReply = z.infer<typeof AgentReply>;

// ------------------------------------------------------- agent → steering (result stream)
export const UploadedArtifact = z.object({
  kind: ArtifactKind,
  key: z.string(),
  size: z.number().int().nonnegative(),
  etag: z.string(),
});
export type UploadedArtifact = z.infer<typeof UploadedArtifact>;

/** Longest reason kept for a missing artifact (it is shown by phpo show and download). */
export const MAX_MISSING_REASON = 1024;
const MissingReason = z
  .string()
  .transform((m) => (m.length > MAX_MISSING_REASON ? `${m.slice(0, MAX_MISSING_REASON)}…` : m));

/**
 * An artifact of an attempt that could not be uploaded when the attempt ended (S3 unreachable):
 * the result commits without it and the agent uploads it later on its own (an `artifact` report).
 */
export const MissingArtifact = z.object({ kind: ArtifactKind, reason: MissingReason });
export type MissingArtifact = z.infer<typeof MissingArtifact>;

/** What an attempt ended with: the agent's result report and steering's job-finished event share it. */
export const ResultOutcome = z.object({
  /** preempted: the agent was drained and handed the attempt back (not counted as a failure). */
  status: z.enum(["ok", "failed", "stopped", "preempted"]),
  loss: z.number().nullable(),
  metrics: Metrics,
  /** The resource level the evaluation reached (ASHA), when known. */
  resource: z.number().nullable(),
  error: WireError.nullable(),
  artifacts: z.array(UploadedArtifact).max(8),
  /** Artifacts not uploaded yet (the loss counts without them); absent in older reports and events. */
  missing: z.array(MissingArtifact).max(8).default([]),
  /** output.json as written, when it is small enough to travel inline (else it is an artifact). */
  output: z.string().max(INLINE_OUTPUT_BYTES).nullable().default(null),
  startedAt: z.number(),
  finishedAt: z.number(),
  exitCode: z.number().int().nullable(),
  /**
   * Why a failed attempt failed (it picks the retry policy, docs/steering.md "Failures"); null for
   * one that did not fail, and in a report from an older agent (steering derives it from `error`).
   */
  failureClass: FailureClass.nullable().default(null),
});
export type ResultOutcome = z.infer<typeof ResultOutcome>;

export const AgentReport = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("progress"),
    jobId: JobId,
    attempt: Attempt,
    resource: z.number(),
    metrics: Metrics,
    /** The agent paused the payload at this report (a judged level): it waits for a verdict. */
    held: z.boolean().optional(),
  }),
  z.object({
    type: z.literal("checkpoint"),
    jobId: JobId,
    attempt: Attempt,
    artifact: UploadedArtifact,
    resource: z.number().nullable(),
  }),
  z.object({
    type: z.literal("result"),
    jobId: JobId,
    attempt: Attempt,
    ...ResultOutcome.shape,
  }),
  /**
   * A missing artifact of an ended attempt: uploaded at last (`artifact`), or given up (`artifact`
   * null and the `reason`).
   */
  z.object({
    type: z.literal("artifact"),
    jobId: JobId,
    attempt: Attempt,
    kind: ArtifactKind,
    artifact: UploadedArtifact.nullable(),
    reason: MissingReason.nullable(),
  }),
]);
export type AgentReport = z.infer<typeof AgentReport>;

// -------------------------------------------------------------------- steering → agents
export const ControlMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("stop"),
    jobId: JobId,
    attempt: Attempt,
    reason: z.enum(["pruned", "paused", "killed", "stale"]),
  }),
  z.object({ type: z.literal("drain") }),
  /** Steering judged the attempt's report at `resource` and did not stop it: a paused payload resumes. */
  z.object({ type: z.literal("continue"), jobId: JobId, attempt: Attempt, resource: z.number().finite() }),
]);
export type ControlMessage = z.infer<typeof ControlMessage>;
