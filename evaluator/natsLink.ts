// The agent's SteeringLink over NATS: requests on gt.hb.<site>.<agent> (answered by steering, or
// UnavailableError), and reports published to the RESULTS stream, retried until acknowledged.
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/log.ts";
import { AgentReply, Job, type AgentReport, type AgentRequest } from "../protocol/messages.ts";
import { subjects } from "../protocol/subjects.ts";
import { type ElectionRetry, tryTimeout, withElectionRetry } from "../protocol/natsRetry.ts";

/** One request to steering; its reply is parsed here, at the boundary. */
export async function requestOverNats(
  nc: NatsConnection | null,
  site: string,
  agent: string,
  req: AgentRequest,
  timeoutMs: number,
): Promise<AgentReply> {
  if (!nc) throw new UnavailableError("not connected to NATS");
  try {
    const m = await nc.request(subjects.heartbeat(site, agent), JSON.stringify(req), {
      timeout: timeoutMs,
    });
    return AgentReply.parse(m.json());
  } catch (e) {
    if (e instanceof GridtuneError) throw e;
    throw new UnavailableError(
      `steering did not answer ${req.type}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}

/**
 * Publishes a report to RESULTS, retrying with backoff for up to 15 minutes. A result and a
 * checkpoint carry a msgID, so a retry the server already took is not stored twice.
 */
/** A report is retried for up to 15 minutes (a NATS restart, an election on a cluster). */
const REPORT_RETRY: ElectionRetry = { totalMs: 15 * 60_000, baseMs: 200, maxMs: 10_000, jitter: 0 };

export async function publishReport(
  js: JetStreamClient,
  site: string,
  agent: string,
  r: AgentReport,
  logger: Logger,
): Promise<void> {
  const subject = subjects.results(site, agent, r.jobId);
  const msgID =
    r.type === "result"
      ? `${r.jobId}.${r.attempt}.result`
      : r.type === "checkpoint"
        ? `${r.jobId}.${r.attempt}.${r.artifact.etag}`
        : undefined;
  // Every failure is retried, not only an election's: a result must not be lost while NATS is
  // away (a restart, an election on a cluster); the msgID drops a retry that was stored twice.
  await withElectionRetry(
    `publishing the ${r.type} of ${r.jobId}`,
    (left) => js.publish(subject, JSON.stringify(r), { msgID, timeout: tryTimeout(10_000, left) }),
    {
      bound: REPORT_RETRY,
      retryable: () => true,
      onRetry: (e, n) => {
        if (n % 5 === 1)
          logger.warn(`publishing a ${r.type} failed; retrying`, { jobId: r.jobId, error: String(e) });
      },
    },
  );
}

/** A job message from the JOBS stream, parsed once here; one that is not JSON fails like bad JSON. */
export function parseJobMessage(m: JsMsg): ReturnType<typeof Job.safeParse> {
  let json: unknown = null;
  try {
    json = m.json();
  } catch {
    // not JSON: the parse below fails and says so
  }
  return Job.safeParse(json);
}
