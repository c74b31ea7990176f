// Intake of agent reports from the RESULTS stream (durable consumer "steering"). A report counts
// only if its attempt is the one currently leased to that site and agent (fencing); anything else
// is logged and ignored. Uploaded artifacts are checked with HeadObject against the agent's claim.
// Reports are handled concurrently: the S3 checks run outside the serial queue, the fence and the
// staging inside it, and a report is acked once its event is stored. The reports of one job keep
// their order (a final checkpoint is recorded before the result that follows it).
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { GridtuneError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import { AgentReport, type ArtifactKind, type UploadedArtifact } from "../../../protocol/messages.ts";
import { parseResultSubject } from "../../../protocol/subjects.ts";
import { taskIdOfJob } from "./agentControl.ts";
import type { Committer } from "../committer.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { keys, type Storage } from "../storage.ts";
import { sendVerdict } from "../stopRequests.ts";

interface Who {
  site: string;
  agent: string;
  jobId: string;
}

/** A parsed report whose artifacts were checked; `artifacts` holds only the verified ones. */
interface Checked {
  who: Who;
  report: AgentReport;
  artifacts: UploadedArtifact[];
}

export class ResultIngest {
  ignored = 0;
  /** Per job, the staging of its latest report (the next report of the job waits for it). */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    private readonly nc: Pick<NatsConnection, "publish"> | null = null,
  ) {}

  /**
   * Takes one delivered report (the consumer's callback: cheaper per message than its iterator).
   * The reports in flight are bounded by the consumer's max_ack_pending: each is acked or naked
   * once handled.
   */
  receive(m: JsMsg): void {
    const p: Promise<void> = this.process(m).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Settles once the reports taken so far are handled (acked or naked). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async process(m: JsMsg): Promise<void> {
    try {
      const who = parseResultSubject(m.subject);
      if (!who) {
        this.ignore("bad subject", { subject: m.subject });
        return m.ack();
      }
      const checked = this.check(m, who);
      // Same job: wait until its previous report is staged (not stored: appends are pipelined).
      const prev = this.chains.get(who.jobId) ?? Promise.resolve();
      const staged = prev.then(async () => {
        const c = await checked;
        if (!c) return null;
        return this.c.serial(() => Promise.resolve(this.record(c)));
      });
      const link = staged.then(
        () => undefined,
        () => undefined,
      );
      this.chains.set(who.jobId, link);
      void link.then(() => {
        if (this.chains.get(who.jobId) === link) this.chains.delete(who.jobId);
      });
      const s = await staged;
      if (s) await s.durable;
      m.ack();
    } catch (e) {
      if (e instanceof GridtuneError && e.code === "TOO_LARGE") {
        // It can never be logged: dropped (the attempt's lease lapses and the job is retried).
        this.ignore("too large to log", { subject: m.subject, error: e.message });
        return m.ack();
      }
      // Not acked: JetStream redelivers it (e.g. the log append timed out).
      this.logger.error("could not record a report; it will be redelivered", {
        subject: m.subject,
        error: String(e),
      });
      m.nak(2000);
    }
  }

  private ignore(why: string, fields: Record<string, unknown>): void {
    this.ignored++;
    this.logger.warn(`report ignored: ${why}`, fields);
  }

  /** Parse and S3 checks, outside the queue; null when the report is to be ignored. */
  private async check(m: JsMsg, who: Who): Promise<Checked | null> {
    let body: unknown;
    try {
      body = m.json();
    } catch {
      this.ignore("not JSON", { subject: m.subject });
      return null;
    }
    const parsed = AgentReport.safeParse(body);
    if (!parsed.success) {
      this.ignore("invalid report", { subject: m.subject, issue: parsed.error.issues[0]?.message });
      return null;
    }
    const r = parsed.data;
    if (r.jobId !== who.jobId) {
      this.ignore("job id differs from the subject", { subject: m.subject, jobId: r.jobId });
      return null;
    }
    const taskId = taskIdOfJob(r.jobId);
    const e = taskId === null ? undefined : this.c.state.engines.get(taskId);
    // a late artifact may belong to a job a promotion has since replaced
    const point = r.type === "artifact" ? e?.pointOfAnyJob(r.jobId) : e?.pointOfJob(r.jobId);
    if (!e || !point) {
      this.ignore("unknown job", { site: who.site, agent: who.agent, jobId: r.jobId, type: r.type });
      return null;
    }
    // An artifact counts only at this attempt's own key: an agent cannot attach another object.
    const ownKey = (kind: ArtifactKind) => keys.artifact(e.taskId, point.pointId, r.jobId, r.attempt, kind);
    const claimed =
      r.type === "result"
        ? r.artifacts
        : r.type === "checkpoint"
          ? [r.artifact]
          : r.type === "artifact" && r.artifact && r.artifact.kind === r.kind
            ? [r.artifact]
            : [];
    const ok = await Promise.all(claimed.map((a) => this.verified(a, ownKey(a.kind))));
    return { who, report: r, artifacts: claimed.filter((_, i) => ok[i]) };
  }

  /** Fence and stage (inside the queue); null when the report is ignored. */
  private record({ who, report: r, artifacts }: Checked): { durable: Promise<void> } | null {
    const taskId = taskIdOfJob(r.jobId);
    const e = taskId === null ? undefined : this.c.state.engines.get(taskId);
    if (r.type === "artifact") return this.recordLate(who, r, artifacts);
    const f = e?.fence(r.jobId, r.attempt, who.site, who.agent);
    if (!e || !f?.ok) {
      this.ignore(f && !f.ok ? f.reason : "unknown task", {
        site: who.site,
        agent: who.agent,
        jobId: r.jobId,
        attempt: r.attempt,
        type: r.type,
      });
      return null;
    }
    const ref = { taskId: e.taskId, at: Date.now(), jobId: r.jobId, attempt: r.attempt };
    switch (r.type) {
      case "progress": {
        const s = this.c.stage({ type: "job-progress", ...ref, resource: r.resource, metrics: r.metrics });
        // the scheduler may have decided to stop this attempt (pruned, or paused before its target)
        const nc = this.nc;
        const engine = s.engine;
        if (engine && nc)
          void s.durable.then(
            () => sendVerdict(nc, engine, this.logger, r),
            () => undefined,
          );
        return s;
      }
      case "checkpoint": {
        const artifact = artifacts[0];
        if (!artifact) return null;
        return this.c.stage({ type: "job-checkpoint", ...ref, artifact, resource: r.resource });
      }
      case "result": {
        const { type: _type, jobId: _jobId, attempt: _attempt, ...outcome } = r;
        const s = this.c.stage({
          type: "job-finished",
          ...ref,
          site: who.site,
          agent: who.agent,
          ...outcome,
          artifacts,
        });
        this.dispatcher.kick();
        return s;
      }
    }
  }

  /**
   * A missing artifact of an ended attempt, uploaded late or given up: it counts only from the
   * attempt's own site and agent, while its result still awaits it. An upload that does not match
   * what the agent declares is recorded as given up, with that reason.
   */
  private recordLate(
    who: Who,
    r: Extract<AgentReport, { type: "artifact" }>,
    verified: UploadedArtifact[],
  ): { durable: Promise<void> } | null {
    const taskId = taskIdOfJob(r.jobId);
    const e = taskId === null ? undefined : this.c.state.engines.get(taskId);
    const f = e?.lateFence(r.jobId, r.attempt, r.kind, who.site, who.agent);
    if (!e || !f?.ok) {
      this.ignore(f && !f.ok ? f.reason : "unknown task", { ...who, attempt: r.attempt, type: r.type });
      return null;
    }
    const artifact = verified[0] ?? null;
    const reason =
      r.artifact !== null && artifact === null
        ? `the late ${r.kind} upload does not match what the agent declared`
        : r.reason;
    return this.c.stage({
      type: "job-artifact",
      taskId: e.taskId,
      at: Date.now(),
      jobId: r.jobId,
      attempt: r.attempt,
      kind: r.kind,
      artifact,
      reason: artifact === null ? (reason ?? "given up by the agent") : null,
    });
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
