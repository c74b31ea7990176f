// Effects: what the shell does once a decision's events are durable (shell/effects.ts runs them).
// A decider never does I/O itself; it says what is to be done here, as data.
import type { LogLevel } from "../../protocol/log.ts";

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
  /** A line in steering's own log. */
  | {
      readonly type: "log";
      readonly level: Exclude<LogLevel, "debug">;
      readonly message: string;
      readonly fields: Readonly<Record<string, unknown>>;
    };

export type EffectType = Effect["type"];
