// The one executor of the decider's effects (core/effects.ts), run by the committer once the
// events of their decision are durable. Each effect maps onto a narrow port.
import { unreachable } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import type { AgentRegistry } from "../core/agentRegistry.ts";
import type { Effect, StopReason } from "../core/effects.ts";

export interface EffectPorts {
  readonly logger: Logger;
  readonly agents: AgentRegistry;
  /** Schedules one dispatcher pump. */
  readonly kick: () => void;
  /**
   * Sends a stop to the agent of each of the task's active attempts. Optional only while the
   * runners that never see a stop-attempts effect (the dispatcher's lease tick) are built without
   * one; a runner asked to stop attempts without it fails loudly.
   */
  readonly stopAttempts?: (taskId: string, reason: StopReason) => void;
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
      case "stop-attempts":
        if (!p.stopAttempts) throw new Error("this effect runner was built without a stopAttempts port");
        p.stopAttempts(effect.taskId, effect.reason);
        return;
      case "log":
        p.logger[effect.level](effect.message, { ...effect.fields });
        return Promise.resolve();
      default:
        return unreachable(effect, "effect");
    }
  }
}
