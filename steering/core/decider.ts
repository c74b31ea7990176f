// The decider: every command the shell receives or times, decided on the state and `now` it is
// given, into events, effects and a reply (core/decision.ts). Pure: no I/O, no clock, no
// randomness but the tasks' seeded one. A command added to the union and not handled here is a
// compile error (the `unreachable` guard).
import { unreachable } from "../../protocol/errors.ts";
import type { Decision } from "./decision.ts";
import { decideLeaseTick, type LeaseCommand } from "./decide/leases.ts";
import {
  decideBye,
  decideClaim,
  decideHeartbeat,
  decidePresign,
  decideRegister,
  type AgentCommand,
  type AgentReplies,
} from "./decide/agents.ts";
import {
  decideDispatchJob,
  decideDispatchPropose,
  type DispatchCommand,
  type DispatchJobReply,
  type ProposeReply,
} from "./decide/dispatch.ts";
import { decideReport, decideReportVerdict, type ReportCommand, type ReportReply } from "./decide/reports.ts";
import {
  decideControl,
  decideRetry,
  decideSubmit,
  type ApiCommand,
  type RetryReply,
  type SubmitReply,
  type TaskReply,
} from "./decide/api.ts";
import { decideProgramResult, type ProgramResultCommand, type ProgramResultReply } from "./decide/program.ts";
import { decideUploadSweep, type UploadCommand, type UploadSweepReply } from "./decide/uploads.ts";
import type { World } from "./world.ts";

export type Command =
  | LeaseCommand
  | AgentCommand
  | DispatchCommand
  | ReportCommand
  | ApiCommand
  | UploadCommand
  | ProgramResultCommand;

/** The reply each command gets. */
export interface Replies {
  "lease-tick": null;
  "agent-register": AgentReplies["agent-register"];
  "agent-heartbeat": AgentReplies["agent-heartbeat"];
  "agent-claim": AgentReplies["agent-claim"];
  "agent-presign": AgentReplies["agent-presign"];
  "agent-bye": AgentReplies["agent-bye"];
  "dispatch-propose": ProposeReply;
  "dispatch-job": DispatchJobReply;
  report: ReportReply;
  "report-verdict": null;
  submit: SubmitReply;
  kill: TaskReply;
  pause: TaskReply;
  resume: TaskReply;
  retry: RetryReply;
  "upload-sweep": UploadSweepReply;
  "program-result": ProgramResultReply;
}

export type ReplyOf<C extends Command> = Replies[C["type"]];

export function decide<C extends Command>(w: World, command: C, now: number): Decision<ReplyOf<C>>;
export function decide(w: World, command: Command, now: number): Decision<Replies[Command["type"]]> {
  switch (command.type) {
    case "lease-tick":
      return decideLeaseTick(w, now);
    case "agent-register":
      return decideRegister(w, command, now);
    case "agent-heartbeat":
      return decideHeartbeat(w, command, now);
    case "agent-claim":
      return decideClaim(w, command, now);
    case "agent-presign":
      return decidePresign(w, command, now);
    case "agent-bye":
      return decideBye(w, command, now);
    case "dispatch-propose":
      return decideDispatchPropose(w, command, now);
    case "dispatch-job":
      return decideDispatchJob(w, command, now);
    case "report":
      return decideReport(w, command, now);
    case "report-verdict":
      return decideReportVerdict(w, command);
    case "submit":
      return decideSubmit(w, command, now);
    case "kill":
    case "pause":
    case "resume":
      return decideControl(w, command, now);
    case "retry":
      return decideRetry(w, command, now);
    case "upload-sweep":
      return decideUploadSweep(command, now);
    case "program-result":
      return decideProgramResult(w, command);
    default:
      return unreachable(command, "command");
  }
}
