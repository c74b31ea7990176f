// What the decider reads: the tasks (a fold of the log), the live agents and their leases, the
// tasks waiting for a rebuild, the rules from the configuration, and the shell's facts about its
// own connection. The decider only reads it; events (evolve) and effects change it.
import type { Backoff } from "../../protocol/backoff.ts";
import type { AgentRegistry } from "./agentRegistry.ts";
import type { SteeringState } from "./state.ts";

/** The configured rules the decisions follow (durations in ms). */
export interface Rules {
  /** A running attempt whose agent has not renewed it for this long is lost. */
  readonly leaseMs: number;
  /** A dispatched attempt nobody claims in this time is lost. */
  readonly dispatchTimeoutMs: number;
  /** How often agents heartbeat (told at registration). */
  readonly heartbeatMs: number;
  /** The wait before a failed or lost attempt is dispatched again. */
  readonly retry: Backoff;
}

/** The shell's facts about lease time (see shell/dispatcher.ts restartLeases, pauseLeases). */
export interface LeaseClock {
  /** Leases are judged from here at the earliest (steering's start, the last NATS reconnect). */
  readonly baseline: number;
  /** Steering's NATS connection is down: silence proves nothing. */
  readonly paused: boolean;
}

export interface World {
  readonly tasks: SteeringState;
  readonly agents: AgentRegistry;
  /** Tasks whose engine ran ahead of the log and wait for a rebuild: judged once rebuilt. */
  readonly diverged: ReadonlySet<string>;
  readonly rules: Rules;
  readonly leases: LeaseClock;
}
