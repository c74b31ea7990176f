// Sends the scheduler's stop requests (ASHA pruning, or a pause before the milestone) to the agents
// running those attempts. The requests are engine state derived from the log, so they are sent
// again after every new report of the attempt and after a restart; a duplicate stop is harmless
// (the agent ignores a stop for an attempt it already stopped), a lost one is repaired that way.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/log.ts";
import type { ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import { judgeLevels } from "../core/task/jobBuilder.ts";
import type { TaskEngine } from "../core/task/taskEngine.ts";

export function sendStopRequests(
  nc: Pick<NatsConnection, "publish">,
  e: TaskEngine,
  logger: Logger,
  onlyJobId?: string,
): number {
  let sent = 0;
  for (const { job, reason } of e.stopRequests()) {
    if ((onlyJobId !== undefined && job.jobId !== onlyJobId) || !job.site || !job.agent) continue;
    const msg: ControlMessage = { type: "stop", jobId: job.jobId, attempt: job.attempt, reason };
    try {
      nc.publish(subjects.control(job.site, job.agent), JSON.stringify(msg));
      sent++;
    } catch (err) {
      logger.warn("could not send a stop request; it is sent again on the next report", {
        jobId: job.jobId,
        error: String(err),
      });
    }
  }
  return sent;
}

/**
 * Steering's verdict on a durable progress report of a job whose agent pauses at judged levels
 * (Job.judgeAt): the stop request when the scheduler decided one, else `continue` for that report,
 * so the paused payload resumes without waiting out the agent's bounded wait. A continue goes only
 * for a report the agent says it is held at (`held`), at or past the job's first judged level; an
 * agent that claims it falsely only gets continues it ignores, and a lost one costs only the wait.
 */
export function sendVerdict(
  nc: Pick<NatsConnection, "publish">,
  e: TaskEngine,
  logger: Logger,
  report: { jobId: string; attempt: number; resource: number; held?: boolean | undefined },
): void {
  if (sendStopRequests(nc, e, logger, report.jobId) > 0 || !report.held) return;
  const point = e.pointOfJob(report.jobId);
  const job = point?.job;
  if (!point || !job || job.state !== "running" || job.attempt !== report.attempt) return;
  if (!job.site || !job.agent) return;
  // below the first judged level the agent never waits
  const first = judgeLevels(e, point.segment)[0];
  if (first === undefined || report.resource < first) return;
  const msg: ControlMessage = {
    type: "continue",
    jobId: report.jobId,
    attempt: report.attempt,
    resource: report.resource,
  };
  try {
    nc.publish(subjects.control(job.site, job.agent), JSON.stringify(msg));
  } catch (err) {
    logger.warn("could not send a continue; the agent resumes after its bounded wait", {
      jobId: report.jobId,
      error: String(err),
    });
  }
}
