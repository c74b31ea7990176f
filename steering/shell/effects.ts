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
  /**
   * Makes the site's JOBS consumer if it does not exist yet. Only the agent channel's runner has
   * it (only agent registrations decide ensure-site-consumer); another runner refuses the effect.
   */
  readonly ensureSiteConsumer?: (site: string) => Promise<void>;
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
      case "log":
        p.logger[effect.level](effect.message, { ...effect.fields });
        return Promise.resolve();
      default:
        return unreachable(effect, "effect");
    }
  }
}
