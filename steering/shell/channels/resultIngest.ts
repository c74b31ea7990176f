// Intake of agent reports from the RESULTS stream (durable consumer "steering"): the I/O around the
// report rules (core/decide/reports.ts: the fence, what each report becomes, the stop and continue
// verdicts). Here: parse the message, check uploaded artifacts with HeadObject against the agent's
// claim (passed to the decider as the verified ones), stage the decided events, run the effects
// once they are durable, and ack. Reports are handled concurrently: the S3 checks run outside the
// serial queue, the decision and the staging inside it. The reports of one job keep their order
// (a final checkpoint is recorded before the result that follows it).
import type { JsMsg } from "@nats-io/jetstream";
import { GridtuneError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import { AgentReport, type ArtifactKind, type UploadedArtifact } from "../../../protocol/messages.ts";
import { taskIdOfJob } from "../../../protocol/names.ts";
import { parseResultSubject } from "../../../protocol/subjects.ts";
import { decide } from "../../core/decider.ts";
import type { Effect } from "../../core/effects.ts";
import type { Committer } from "../committer.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { systemClock, type Clock } from "../clock.ts";
import { keys, type Storage } from "../storage.ts";

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

/** A report staged: its events' durability and the effects to run once they are durable. */
interface Staged {
  durable: Promise<unknown>;
  effects: readonly Effect[];
}

export class ResultIngest {
  ignored = 0;
  /** Per job, the staging of its latest report (the next report of the job waits for it). */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    /** The decider's world and the one effect executor. */
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
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
    // A process whose leader lease lapsed decides nothing (its appends are refused, and each
    // refusal would rebuild the task): the report comes back, to this term or the next leader's.
    if (!this.dispatcher.leading()) return m.nak(2000);
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
      // once durable (an effect that fails is no reason to have the report redelivered)
      if (s && s.effects.length > 0) await this.runEffects(s.effects, m.subject);
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

  private async runEffects(effects: readonly Effect[], subject: string): Promise<void> {
    try {
      for (const effect of effects) await this.dispatcher.effects.run(effect);
    } catch (e) {
      this.logger.error("an effect of a report failed", { subject, error: String(e) });
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

  /**
   * Decides the report and stages its events (inside the queue); null when it is ignored. A logged
   * progress report is then judged (report-verdict) on the state its own event made.
   */
  private record({ who, report: r, artifacts }: Checked): Staged | null {
    const now = this.clock.now();
    const w = this.dispatcher.world();
    const d = decide(w, { type: "report", site: who.site, agent: who.agent, report: r, artifacts }, now);
    if (d.reply.ignored) {
      this.ignore(d.reply.ignored.why, { ...d.reply.ignored.fields });
      return null;
    }
    const staged = d.events.map((ev) => this.c.stage(ev).durable);
    // a report is one event: no Promise.all for it
    const durable = staged.length === 1 ? staged[0]! : Promise.all(staged);
    if (r.type !== "progress" || d.events.length === 0) return { durable, effects: d.effects };
    const held = r.held ?? false;
    const verdict = decide(
      w,
      { type: "report-verdict", jobId: r.jobId, attempt: r.attempt, resource: r.resource, held },
      now,
    );
    return { durable, effects: [...d.effects, ...verdict.effects] };
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
