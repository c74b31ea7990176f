// The one executor of the decider's effects (core/effects.ts), run by the committer once the
// events of their decision are durable. Each effect maps onto a narrow port.
import { unreachable } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import type { AgentRegistry } from "../core/agentRegistry.ts";
import type { Effect } from "../core/effects.ts";

export interface EffectPorts {
  readonly logger: Logger;
  readonly agents: AgentRegistry;
  /** Schedules one dispatcher pump. */
  readonly kick: () => void;
  /** Aborts a multipart upload in S3 (datasetUploads.ts abortUploadPort). */
  readonly abortUpload: (key: string, uploadId: string) => Promise<void>;
}

export interface Effects {
  run(effect: Effect): Promise<void>;
}

export class EffectRunner implements Effects {
  constructor(private readonly ports: EffectPorts) {}

  async run(effect: Effect): Promise<void> {
    const p = this.ports;
    switch (effect.type) {
      case "kick":
        p.kick();
        return;
      case "forget-lease":
        p.agents.forget(effect.jobId, effect.attempt);
        return;
      case "abort-upload":
        return p.abortUpload(effect.key, effect.uploadId);
      case "log":
        p.logger[effect.level](effect.message, { ...effect.fields });
        return Promise.resolve();
      default:
        return unreachable(effect, "effect");
    }
  }
}
