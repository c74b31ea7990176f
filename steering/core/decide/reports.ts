// Agent reports (shell/channels/resultIngest.ts takes them from the RESULTS stream): a report counts
// only if its attempt is the one currently leased to that site and agent (the fence); what it
// becomes in the log (job-progress, job-checkpoint, job-finished, job-artifact); and what the
// agents are told about their attempts (stop requests, continue verdicts), the one place a
// send-stop effect is decided. The S3 checks of uploaded artifacts are I/O: the shell makes them
// first and passes in only the artifacts it verified.
//
// A progress report is decided in two commands, one after the other: `report` logs it, then
// `report-verdict` reads the scheduler's decision on it, which exists only once the job-progress
// event is folded into the engine (the engine cannot be copied to look ahead; see dispatch.ts).
// The shell runs the verdict's effects once the report's event is durable.
import { unreachable } from "../../../protocol/errors.ts";
import type { AgentReport, UploadedArtifact } from "../../../protocol/messages.ts";
import { taskIdOfJob } from "../../../protocol/names.ts";
import type { Decision } from "../decision.ts";
import type { Effect, StopReason } from "../effects.ts";
import type { LogEvent } from "../events.ts";
import { judgeLevels } from "../task/jobBuilder.ts";
import type { TaskEngine } from "../task/taskEngine.ts";
import type { World } from "../world.ts";

export type ReportCommand =
  | {
      readonly type: "report";
      /** Who sent it: the site and agent of the report's subject (its NATS permissions). */
      readonly site: string;
      readonly agent: string;
      readonly report: AgentReport;
      /** The report's artifacts that the shell found at this attempt's own key, as claimed. */
      readonly artifacts: readonly UploadedArtifact[];
    }
  | {
      readonly type: "report-verdict";
      readonly jobId: string;
      readonly attempt: number;
      readonly resource: number;
      /** The agent holds the payload at this report and waits for the verdict. */
      readonly held: boolean;
    };

/** A report that counts for nothing: why, and what names it in steering's log. */
export interface Ignored {
  readonly why: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface ReportReply {
  /** Null when the report was taken (a checkpoint without a verified artifact adds nothing). */
  readonly ignored: Ignored | null;
}

const ignored = (why: string, fields: Record<string, unknown>): Decision<ReportReply> => ({
  events: [],
  effects: [],
  reply: { ignored: { why, fields } },
});

/** The engine of the task a job id names (undefined for a retired or unknown task). */
function engineOf(w: World, jobId: string): TaskEngine | undefined {
  const taskId = taskIdOfJob(jobId);
  return taskId === null ? undefined : w.tasks.engines.get(taskId);
}

export function decideReport(
  w: World,
  c: Extract<ReportCommand, { type: "report" }>,
  now: number,
): Decision<ReportReply> {
  const r = c.report;
  const e = engineOf(w, r.jobId);
  if (r.type === "artifact") return decideLateArtifact(e, c, r, now);
  const f = e?.fence(r.jobId, r.attempt, c.site, c.agent);
  if (!e || !f?.ok) return fencedOut(f, c, r);
  const ref = { taskId: e.taskId, at: now, jobId: r.jobId, attempt: r.attempt };
  const taken = (events: LogEvent[], effects: Effect[] = []): Decision<ReportReply> => ({
    events,
    effects,
    reply: { ignored: null },
  });
  switch (r.type) {
    case "progress":
      // the scheduler's verdict on it is the next command (report-verdict)
      return taken([{ type: "job-progress", ...ref, resource: r.resource, metrics: r.metrics }]);
    case "checkpoint": {
      // an artifact the shell could not verify was already reported as ignored
      const artifact = c.artifacts[0];
      return taken(artifact ? [{ type: "job-checkpoint", ...ref, artifact, resource: r.resource }] : []);
    }
    case "result": {
      const { type: _type, jobId: _jobId, attempt: _attempt, ...outcome } = r;
      const finished: LogEvent = {
        type: "job-finished",
        ...ref,
        site: c.site,
        agent: c.agent,
        ...outcome,
        artifacts: [...c.artifacts],
      };
      // a slot is free: a pump follows
      return taken([finished], [{ type: "kick" }]);
    }
    default:
      return unreachable(r, "report");
  }
}

/**
 * A missing artifact of an ended attempt, uploaded late or given up: it counts only from the
 * attempt's own site and agent, while its result still awaits it. An upload that does not match
 * what the agent declares is recorded as given up, with that reason.
 */
function decideLateArtifact(
  e: TaskEngine | undefined,
  c: Extract<ReportCommand, { type: "report" }>,
  r: Extract<AgentReport, { type: "artifact" }>,
  now: number,
): Decision<ReportReply> {
  const f = e?.lateFence(r.jobId, r.attempt, r.kind, c.site, c.agent);
  if (!e || !f?.ok) return fencedOut(f, c, r);
  const artifact = c.artifacts[0] ?? null;
  const reason =
    r.artifact !== null && artifact === null
      ? `the late ${r.kind} upload does not match what the agent declared`
      : r.reason;
  return {
    events: [
      {
        type: "job-artifact",
        taskId: e.taskId,
        at: now,
        jobId: r.jobId,
        attempt: r.attempt,
        kind: r.kind,
        artifact,
        reason: artifact === null ? (reason ?? "given up by the agent") : null,
      },
    ],
    effects: [],
    reply: { ignored: null },
  };
}

/**
 * Steering's verdict on a logged progress report of a job: the stop request when the scheduler
 * decided one, else, for a job whose agent pauses at judged levels (Job.judgeAt), `continue` for
 * that report so the paused payload resumes without waiting out the agent's bounded wait. A
 * continue goes only for a report the agent says it is held at, at or past the job's first judged
 * level; an agent that claims it falsely only gets continues it ignores, and a lost one costs only
 * the wait.
 */
export function decideReportVerdict(
  w: World,
  c: Extract<ReportCommand, { type: "report-verdict" }>,
): Decision<null> {
  const e = engineOf(w, c.jobId);
  if (!e) return { events: [], effects: [], reply: null };
  const stops = stopEffects(e, c.jobId);
  if (stops.length > 0 || !c.held) return { events: [], effects: stops, reply: null };
  const point = e.pointOfJob(c.jobId);
  const job = point?.job;
  if (!point || !job || job.state !== "running" || job.attempt !== c.attempt || !job.site || !job.agent)
    return { events: [], effects: [], reply: null };
  // below the first judged level the agent never waits
  const first = judgeLevels(e, point.segment)[0];
  if (first === undefined || c.resource < first) return { events: [], effects: [], reply: null };
  return {
    events: [],
    effects: [
      {
        type: "send-continue",
        site: job.site,
        agent: job.agent,
        jobId: c.jobId,
        attempt: c.attempt,
        resource: c.resource,
      },
    ],
    reply: null,
  };
}

/**
 * The scheduler's stop requests (ASHA pruning, a pause before the milestone) of the task's running
 * attempts (of one job only with `onlyJobId`). They are engine state derived from the log, so they
 * are sent again after every new report of the attempt and after a restart: a duplicate stop is
 * harmless (the agent ignores a stop for an attempt it already stopped), a lost one is repaired.
 */
export function stopEffects(e: TaskEngine, onlyJobId?: string): Effect[] {
  const out: Effect[] = [];
  for (const { job, reason } of e.stopRequests()) {
    if ((onlyJobId !== undefined && job.jobId !== onlyJobId) || !job.site || !job.agent) continue;
    out.push({
      type: "send-stop",
      site: job.site,
      agent: job.agent,
      jobId: job.jobId,
      attempt: job.attempt,
      reason,
    });
  }
  return out;
}

/** A stop for every attempt of the task an agent holds (the task was killed or paused). */
export function stopAllEffects(e: TaskEngine, reason: StopReason): Effect[] {
  const out: Effect[] = [];
  for (const j of e.activeJobs())
    if (j.site && j.agent)
      out.push({
        type: "send-stop",
        site: j.site,
        agent: j.agent,
        jobId: j.jobId,
        attempt: j.attempt,
        reason,
      });
  return out;
}

/** A report the fence refused (or of a task steering does not hold): ignored, and logged why. */
function fencedOut(
  f: { ok: true } | { ok: false; reason: string } | undefined,
  c: Extract<ReportCommand, { type: "report" }>,
  r: AgentReport,
): Decision<ReportReply> {
  return ignored(f && !f.ok ? f.reason : "unknown task", {
    site: c.site,
    agent: c.agent,
    jobId: r.jobId,
    attempt: r.attempt,
    type: r.type,
  });
}
