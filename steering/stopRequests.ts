// Sends the scheduler's stop requests (ASHA pruning, or a pause before the milestone) to the agents
// running those attempts. The requests are engine state derived from the log, so they are sent
// again after every new report of the attempt and after a restart; a duplicate stop is harmless
// (the agent ignores a stop for an attempt it already stopped), a lost one is repaired that way.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../protocol/log.ts";
import type { ControlMessage } from "../protocol/messages.ts";
import { subjects } from "../protocol/subjects.ts";
import type { TaskEngine } from "./engine/taskEngine.ts";

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
