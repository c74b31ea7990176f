// Intake of agent reports from the RESULTS stream (durable consumer "steering"). A report counts
// only if its attempt is the one currently leased to that site and agent (fencing); anything else
// is logged and ignored. Uploaded artifacts are checked with HeadObject against the agent's claim.
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../protocol/log.ts";
import { AgentReport, type ArtifactKind, type UploadedArtifact } from "../protocol/messages.ts";
import { parseResultSubject } from "../protocol/subjects.ts";
import { taskIdOfJob } from "./agentControl.ts";
import type { Committer } from "./core.ts";
import type { Dispatcher } from "./dispatch.ts";
import { keys, type Storage } from "./storage.ts";
import { sendStopRequests } from "./stopRequests.ts";

export class ResultIngest {
  ignored = 0;

  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    private readonly nc: Pick<NatsConnection, "publish"> | null = null,
  ) {}

  async run(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      try {
        await this.c.serial(() => this.handle(m));
        m.ack();
      } catch (e) {
        // Not acked: JetStream redelivers after ack_wait (e.g. the log append timed out).
        this.logger.error("could not record a report; it will be redelivered", {
          subject: m.subject,
          error: String(e),
        });
        m.nak(2000);
      }
    }
  }

  private ignore(why: string, fields: Record<string, unknown>): void {
    this.ignored++;
    this.logger.warn(`report ignored: ${why}`, fields);
  }

  private async handle(m: JsMsg): Promise<void> {
    const who = parseResultSubject(m.subject);
    if (!who) return this.ignore("bad subject", { subject: m.subject });
    let body: unknown;
    try {
      body = m.json();
    } catch {
      return this.ignore("not JSON", { subject: m.subject });
    }
    const parsed = AgentReport.safeParse(body);
    if (!parsed.success)
      return this.ignore("invalid report", { subject: m.subject, issue: parsed.error.issues[0]?.message });
    const r = parsed.data;
    if (r.jobId !== who.jobId)
      return this.ignore("job id differs from the subject", { subject: m.subject, jobId: r.jobId });
    const taskId = taskIdOfJob(r.jobId);
    const e = taskId === null ? undefined : this.c.state.engines.get(taskId);
    const f = e?.fence(r.jobId, r.attempt, who.site, who.agent);
    if (!e || !f?.ok) {
      return this.ignore(f && !f.ok ? f.reason : "unknown task", {
        site: who.site,
        agent: who.agent,
        jobId: r.jobId,
        attempt: r.attempt,
        type: r.type,
      });
    }
    const at = Date.now();
    const ref = { taskId: e.taskId, at, jobId: r.jobId, attempt: r.attempt };
    // An artifact counts only at this attempt's own key: an agent cannot attach another object.
    const ownKey = (kind: ArtifactKind) => keys.artifact(e.taskId, f.job.pointId, r.jobId, r.attempt, kind);
    switch (r.type) {
      case "progress": {
        const engine = await this.c.commit({
          type: "job-progress",
          ...ref,
          resource: r.resource,
          metrics: r.metrics,
        });
        // the scheduler may have decided to stop this attempt (pruned, or paused before its target)
        if (engine && this.nc) sendStopRequests(this.nc, engine, this.logger, r.jobId);
        return;
      }
      case "checkpoint": {
        if (!(await this.verified(r.artifact, ownKey(r.artifact.kind)))) return;
        await this.c.commit({ type: "job-checkpoint", ...ref, artifact: r.artifact, resource: r.resource });
        return;
      }
      case "result": {
        const artifacts: UploadedArtifact[] = [];
        for (const a of r.artifacts) if (await this.verified(a, ownKey(a.kind))) artifacts.push(a);
        const { type: _type, jobId: _jobId, attempt: _attempt, ...outcome } = r;
        await this.c.commit({
          type: "job-finished",
          ...ref,
          site: who.site,
          agent: who.agent,
          ...outcome,
          artifacts,
        });
        this.dispatcher.kick();
        return;
      }
    }
  }

  /**
   * The artifact is at the attempt's own key and the object there has the size (and ETag) the
   * agent claims; else the artifact is dropped.
   */
  private async verified(a: UploadedArtifact, expectedKey: string): Promise<boolean> {
    if (a.key !== expectedKey) {
      this.ignore("artifact is not at this attempt's key", { key: a.key, expected: expectedKey });
      return false;
    }
    const head = await this.storage.head(a.key);
    if (head && head.size === a.size && (a.etag === "" || head.etag === a.etag.replaceAll('"', "")))
      return true;
    this.ignore("artifact does not match the upload", {
      key: a.key,
      claimed: a.size,
      stored: head?.size ?? null,
    });
    return false;
  }
}
