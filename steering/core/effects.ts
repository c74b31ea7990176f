// Effects: what the shell does once a decision's events are durable (shell/effects.ts runs them).
// A decider never does I/O itself; it says what is to be done here, as data.
import type { LogLevel } from "../../protocol/log.ts";
import type { ControlMessage } from "../../protocol/messages.ts";

/** Why an agent is told to stop an attempt (the stop message's reason). */
export type StopReason = Extract<ControlMessage, { type: "stop" }>["reason"];

export type Effect =
  /** Schedule one dispatcher pump (kicks while one is pending coalesce). */
  | { readonly type: "kick" }
  /** The attempt left the registry's lease table (it is no longer the log's running one). */
  | { readonly type: "forget-lease"; readonly jobId: string; readonly attempt: number }
  /** The attempt's lease runs from `at` (a claim or a heartbeat of the agent the log says runs it). */
  | { readonly type: "renew-lease"; readonly jobId: string; readonly attempt: number; readonly at: number }
  /** The agent joins the registry (or replaces its entry) with all its slots free. */
  | {
      readonly type: "register-agent";
      readonly site: string;
      readonly agent: string;
      readonly slots: number;
      readonly gpus: readonly string[];
      readonly runtime: "docker" | "process";
      readonly at: number;
    }
  /** A registered agent's heartbeat: its free slots and draining flag, seen at `at`. */
  | {
      readonly type: "agent-seen";
      readonly site: string;
      readonly agent: string;
      readonly freeSlots: number;
      readonly draining: boolean;
      readonly at: number;
    }
  /** The agent left the registry. */
  | { readonly type: "remove-agent"; readonly site: string; readonly agent: string }
  /** The site's durable pull consumer on JOBS exists (made once per site). */
  | { readonly type: "ensure-site-consumer"; readonly site: string }
  /** Tell the agents running the task's attempts (as they are once the events are durable) to stop them. */
  | { readonly type: "stop-attempts"; readonly taskId: string; readonly reason: StopReason }
  /** Abort a dataset file's multipart upload (its parts are deleted); one gone already is no error. */
  | { readonly type: "abort-upload"; readonly key: string; readonly uploadId: string }
  /** A line in steering's own log. */
  | {
      readonly type: "log";
      readonly level: Exclude<LogLevel, "debug">;
      readonly message: string;
      readonly fields: Readonly<Record<string, unknown>>;
    }
  /** Publish the Job message of this attempt to its site (only if it is still the dispatched one). */
  | {
      readonly type: "publish-job";
      readonly taskId: string;
      readonly jobId: string;
      readonly attempt: number;
    }
  /** Tell the agent running this attempt to stop it (a duplicate is harmless: the agent ignores it). */
  | {
      readonly type: "send-stop";
      readonly site: string;
      readonly agent: string;
      readonly jobId: string;
      readonly attempt: number;
      readonly reason: StopReason;
    }
  /** Tell the agent holding this attempt at `resource` that steering judged it and lets it go on. */
  | {
      readonly type: "send-continue";
      readonly site: string;
      readonly agent: string;
      readonly jobId: string;
      readonly attempt: number;
      readonly resource: number;
    }
  /** A pump at `at` (the end of the earliest retry back-off), unless one is due sooner. */
  | { readonly type: "wake-at"; readonly at: number }
  /** Run the due steering-program iteration of this segment (outside the commit queue). */
  | { readonly type: "start-program-iteration"; readonly taskId: string; readonly segment: number };

export type EffectType = Effect["type"];
