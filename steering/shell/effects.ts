// The one executor of the decider's effects (core/effects.ts), run by the committer once the
// events of their decision are durable. Each effect maps onto a narrow port.
import { unreachable } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import type { ControlMessage } from "../../protocol/messages.ts";
import type { AgentRegistry } from "../core/agentRegistry.ts";
import type { Effect, StopReason } from "../core/effects.ts";

export interface EffectPorts {
  readonly logger: Logger;
  readonly agents: AgentRegistry;
  /** Schedules one dispatcher pump. */
  readonly kick: () => void;
  /**
   * Makes the site's JOBS consumer if it does not exist yet. Only the agent channel's runner has
   * it (only agent registrations decide ensure-site-consumer); another runner refuses the effect.
   */
  readonly ensureSiteConsumer?: (site: string) => Promise<void>;
  /** Builds and publishes the Job message of a dispatched attempt (shell/dispatcher.ts publish). */
  readonly publishJob: (taskId: string, jobId: string, attempt: number) => Promise<void>;
  /** Sends a control message to one agent over core NATS; null where steering has no connection. */
  readonly control: ((site: string, agent: string, msg: ControlMessage) => void) | null;
  /** A pump at `at`, unless one is due sooner (through the Clock port). */
  readonly wakeAt: (at: number) => void;
  /** Runs the due steering-program iteration of the segment, unless one runs already. */
  readonly startProgramIteration: (taskId: string, segment: number) => void;
  /** The stops of a task's attempts as they are now (run for a stop-attempts effect). */
  readonly stopsOf: (taskId: string, reason: StopReason) => readonly Effect[];
  /** Aborts a multipart upload in S3 (datasetUploads.ts abortUploadPort). */
  readonly abortUpload: (key: string, uploadId: string) => Promise<void>;
}

export interface Effects {
  run(effect: Effect): Promise<void>;
}

export class EffectRunner implements Effects {
  constructor(private readonly ports: EffectPorts) {}

  /** The same executor with some ports added or replaced (the agent channel adds its JOBS consumer port). */
  with(extra: Partial<EffectPorts>): EffectRunner {
    return new EffectRunner({ ...this.ports, ...extra });
  }

  async run(effect: Effect): Promise<void> {
    const p = this.ports;
    switch (effect.type) {
      case "kick":
        p.kick();
        return;
      case "forget-lease":
        p.agents.forget(effect.jobId, effect.attempt);
        return;
      case "renew-lease":
        p.agents.renew(effect.jobId, effect.attempt, effect.at);
        return;
      case "register-agent": {
        const { site, agent, slots, gpus, runtime } = effect;
        p.agents.register({ site, agent, slots, gpus: [...gpus], runtime }, effect.at);
        return;
      }
      case "agent-seen":
        // an agent that left since its heartbeat was decided stays gone
        p.agents.heartbeat(effect.site, effect.agent, effect.freeSlots, effect.draining, effect.at);
        return;
      case "remove-agent":
        p.agents.remove(effect.site, effect.agent);
        return;
      case "ensure-site-consumer":
        if (!p.ensureSiteConsumer)
          throw new Error(
            `ensure-site-consumer ${effect.site}: this effect runner has no JOBS consumer port`,
          );
        return p.ensureSiteConsumer(effect.site);
      case "stop-attempts":
        // decided at the kill, expanded here: the attempts are the ones the durable log has now
        for (const stop of p.stopsOf(effect.taskId, effect.reason)) await this.run(stop);
        return;
      case "abort-upload":
        return p.abortUpload(effect.key, effect.uploadId);
      case "log":
        p.logger[effect.level](effect.message, { ...effect.fields });
        return Promise.resolve();
      case "publish-job":
        return p.publishJob(effect.taskId, effect.jobId, effect.attempt);
      case "send-stop": {
        const { site, agent, jobId, attempt, reason } = effect;
        this.send(
          site,
          agent,
          { type: "stop", jobId, attempt, reason },
          "could not send a stop request; the attempt's next report or heartbeat repairs it",
        );
        return;
      }
      case "send-continue": {
        const { site, agent, jobId, attempt, resource } = effect;
        this.send(
          site,
          agent,
          { type: "continue", jobId, attempt, resource },
          "could not send a continue; the agent resumes after its bounded wait",
        );
        return;
      }
      case "wake-at":
        p.wakeAt(effect.at);
        return;
      case "start-program-iteration":
        p.startProgramIteration(effect.taskId, effect.segment);
        return;
      default:
        return unreachable(effect, "effect");
    }
  }

  /** A lost control message is repaired by the protocol (see the effect kinds): logged, not thrown. */
  private send(site: string, agent: string, msg: ControlMessage, onFailure: string): void {
    try {
      if (!this.ports.control) throw new Error("steering has no NATS connection for control messages");
      this.ports.control(site, agent, msg);
    } catch (err) {
      const jobId = "jobId" in msg ? msg.jobId : null;
      this.ports.logger.warn(onFailure, { site, agent, jobId, error: String(err) });
    }
  }
}
