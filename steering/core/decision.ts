// What the decider hands the shell for one command: the events to log, the effects to run once
// they are durable, and the reply. Pure data; the shell (shell/committer.ts run()) does the rest.
import type { Effect } from "./effects.ts";
import type { LogEvent } from "./events.ts";

export interface Decision<R = null> {
  /** Logged in this order, then folded into the state (evolve) as they are staged. */
  readonly events: readonly LogEvent[];
  /** Run in this order once every event above is durable (at once when there is none). */
  readonly effects: readonly Effect[];
  readonly reply: R;
}

/** A decision with the reply only. */
export function replyOnly<R>(reply: R): Decision<R> {
  return { events: [], effects: [], reply };
}
