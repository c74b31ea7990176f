// Effects: what the shell does once a decision's events are durable (shell/effects.ts runs them).
// A decider never does I/O itself; it says what is to be done here, as data.
import type { LogLevel } from "../../protocol/log.ts";
import type { ControlMessage } from "../../protocol/messages.ts";

/** Why steering stops an attempt (the agents' stop message). */
export type StopReason = Extract<ControlMessage, { type: "stop" }>["reason"];

export type Effect =
  /** Schedule one dispatcher pump (kicks while one is pending coalesce). */
  | { readonly type: "kick" }
  /** The attempt left the registry's lease table (it is no longer the log's running one). */
  | { readonly type: "forget-lease"; readonly jobId: string; readonly attempt: number }
  /** Tell the agents running the task's attempts (as they are once the events are durable) to stop them. */
  | { readonly type: "stop-attempts"; readonly taskId: string; readonly reason: StopReason }
  /** A line in steering's own log. */
  | {
      readonly type: "log";
      readonly level: Exclude<LogLevel, "debug">;
      readonly message: string;
      readonly fields: Readonly<Record<string, unknown>>;
    };

export type EffectType = Effect["type"];
