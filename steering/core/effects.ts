// Effects: what the shell does once a decision's events are durable (shell/effects.ts runs them).
// A decider never does I/O itself; it says what is to be done here, as data.
import type { LogLevel } from "../../protocol/log.ts";

export type Effect =
  /** Schedule one dispatcher pump (kicks while one is pending coalesce). */
  | { readonly type: "kick" }
  /** The attempt left the registry's lease table (it is no longer the log's running one). */
  | { readonly type: "forget-lease"; readonly jobId: string; readonly attempt: number }
  /** Abort a dataset file's multipart upload (its parts are deleted); one gone already is no error. */
  | { readonly type: "abort-upload"; readonly key: string; readonly uploadId: string }
  /** A line in steering's own log. */
  | {
      readonly type: "log";
      readonly level: Exclude<LogLevel, "debug">;
      readonly message: string;
      readonly fields: Readonly<Record<string, unknown>>;
    };

export type EffectType = Effect["type"];
