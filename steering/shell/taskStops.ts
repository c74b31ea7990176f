// The stop-attempts effect's port: after a kill is durable, each agent running one of the task's
// attempts is told to stop it. A stop that cannot be sent is logged, not raised: the kill is
// logged already, and the agent's next heartbeat names the attempt stale (agentControl.ts), which
// stops it as well.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/log.ts";
import type { ControlMessage } from "../../protocol/messages.ts";
import { subjects } from "../../protocol/subjects.ts";
import type { StopReason } from "../core/effects.ts";
import type { SteeringState } from "../core/state.ts";

/** Sends a stop for each claimed attempt of the task (none once it is retired); returns how many. */
export function stopTaskAttempts(
  nc: Pick<NatsConnection, "publish">,
  state: SteeringState,
  logger: Logger,
  taskId: string,
  reason: StopReason,
): number {
  let sent = 0;
  for (const j of state.engines.get(taskId)?.activeJobs() ?? []) {
    // an attempt nobody claimed yet has no agent to tell: its claim is refused
    if (!j.site || !j.agent) continue;
    const msg: ControlMessage = { type: "stop", jobId: j.jobId, attempt: j.attempt, reason };
    try {
      nc.publish(subjects.control(j.site, j.agent), JSON.stringify(msg));
      sent++;
    } catch (e) {
      logger.warn("could not send a stop; the agent's next heartbeat names the attempt stale", {
        taskId,
        jobId: j.jobId,
        error: String(e),
      });
    }
  }
  return sent;
}
