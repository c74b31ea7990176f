// The agent's two channels to steering, as an interface so the job runner can be driven by tests:
// request/reply on gt.hb.<site>.<agent> and reports published to RESULTS.
import type { AgentReply, AgentReport, AgentRequest } from "../protocol/messages.ts";

export interface SteeringLink {
  /** A request with a deadline; rejects with UnavailableError when steering does not answer. */
  request(req: AgentRequest, timeoutMs?: number): Promise<AgentReply>;
  /** Publishes a report to the RESULTS stream, retrying until the server acknowledges it. */
  report(r: AgentReport): Promise<void>;
}

export type StopReason = "pruned" | "paused" | "killed" | "stale" | "drain" | "shutdown";
