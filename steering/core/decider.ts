// The decider: every command the shell receives or times, decided on the state and `now` it is
// given, into events, effects and a reply (core/decision.ts). Pure: no I/O, no clock, no
// randomness but the tasks' seeded one. A command added to the union and not handled here is a
// compile error (the `unreachable` guard).
import { unreachable } from "../../protocol/errors.ts";
import type { Decision } from "./decision.ts";
import { decideLeaseTick, type LeaseCommand } from "./decide/leases.ts";
import { decideUploadSweep, type UploadCommand, type UploadSweepReply } from "./decide/uploads.ts";
import type { World } from "./world.ts";

export type Command = LeaseCommand | UploadCommand;

/** The reply each command gets. */
export interface Replies {
  "lease-tick": null;
  "upload-sweep": UploadSweepReply;
}

export type ReplyOf<C extends Command> = Replies[C["type"]];

export function decide<C extends Command>(w: World, command: C, now: number): Decision<ReplyOf<C>>;
export function decide(w: World, command: Command, now: number): Decision<Replies[Command["type"]]> {
  switch (command.type) {
    case "lease-tick":
      return decideLeaseTick(w, now);
    case "upload-sweep":
      return decideUploadSweep(command, now);
    default:
      return unreachable(command, "command");
  }
}
