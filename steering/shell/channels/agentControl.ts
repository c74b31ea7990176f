// The agent control channel (gt.hb.<site>.<agent>, core request/reply): registration, heartbeats,
// claims, upload grants and the agent's goodbye. The rules are core/decide/agents.ts; this shell
// checks the reply subject, parses the request, reads what a decision needs from outside (the
// site policy for a registration), runs the decision through the committer (its events logged,
// then its effects run), and turns the reply into the agent's: presigned URLs for a granted claim
// or upload. The site and agent come from the subject, which the server's permissions bind to the
// identity; a request is answered, and acted on, only when its reply subject is that agent's inbox.
import { AckPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { GridtuneError, UnavailableError, toWireError, unreachable } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import {
  AgentRequest,
  type AgentReply,
  type ClaimGrant,
  type PresignedUrl,
  type UploadGrant,
} from "../../../protocol/messages.ts";
import { taskIdOfJob } from "../../../protocol/names.ts";
import { STREAM_JOBS, parseHeartbeatSubject, subjects } from "../../../protocol/subjects.ts";
import type { ClaimToGrant, UploadsToPresign } from "../../core/decide/agents.ts";
import { decide, type Command, type ReplyOf } from "../../core/decider.ts";
import type { Committer } from "../committer.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { systemClock, type Clock } from "../clock.ts";
import { EffectRunner } from "../effects.ts";
import { replyAllowed } from "../replyGuard.ts";
import type { SitePolicy } from "../../security/sitePolicy.ts";
import { keys, type Storage } from "../storage.ts";

// resultIngest.ts imports it from here; its home is protocol/names.ts
export { taskIdOfJob };

export class AgentControl {
  private readonly knownSites = new Set<string>();
  private readonly effects: EffectRunner;

  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    private readonly dispatcher: Pick<Dispatcher, "kick" | "trainingFiles" | "world" | "effects">,
    private readonly jsm: JetStreamManager,
    private readonly logger: Logger,
    /** The site policy (sites.json): which runtimes a site's agents may register with. */
    private readonly sites: { refresh(): Promise<SitePolicy> },
    private readonly clock: Clock = systemClock,
  ) {
    this.effects = dispatcher.effects.with({ ensureSiteConsumer: (site) => this.ensureSiteConsumer(site) });
  }

  async handle(msg: Msg): Promise<void> {
    const who = parseHeartbeatSubject(msg.subject);
    if (!who || !replyAllowed(msg, { role: "agent", ...who }, this.logger)) return;
    let reply: AgentReply;
    try {
      const parsed = AgentRequest.safeParse(msg.json());
      if (!parsed.success) {
        throw new GridtuneError(
          "INVALID_ARGUMENT",
          `bad agent request: ${parsed.error.issues[0]?.message ?? "invalid"}`,
        );
      }
      reply = await this.dispatch(who.site, who.agent, parsed.data);
    } catch (e) {
      reply = { type: "error", error: toWireError(e) };
      if (!(e instanceof GridtuneError))
        this.logger.error("agent request failed", { ...who, error: String(e) });
    }
    msg.respond(JSON.stringify(reply));
  }

  private async dispatch(site: string, agent: string, req: AgentRequest): Promise<AgentReply> {
    switch (req.type) {
      case "register": {
        const p = await this.sites.refresh();
        const access = Object.hasOwn(p.sites, site) ? p.sites[site] : undefined;
        const siteRuntimes = access ? access.runtimes : null;
        return this.run({ type: "agent-register", site, agent, request: req, siteRuntimes });
      }
      case "heartbeat":
        return this.run({ type: "agent-heartbeat", site, agent, request: req });
      case "claim": {
        const r = await this.run({ type: "agent-claim", site, agent, request: req }).catch((err: unknown) => {
          // the decision refuses a task being rebuilt; what fails here is the job-claimed's append
          throw err instanceof GridtuneError
            ? err
            : new UnavailableError(`the claim of ${req.jobId} could not be logged; try again`, {
                cause: err,
              });
        });
        return r.type === "grant" ? { type: "claimed", grant: await this.grant(r) } : r;
      }
      case "presign": {
        const r = await this.run({ type: "agent-presign", site, agent, request: req });
        return r.type === "uploads" ? { type: "presigned", uploads: await this.presignUploads(r) } : r;
      }
      case "bye":
        // A task waiting for its rebuild is rebuilt first, so its handed-back attempts are judged
        // on its log (the decision leaves an attempt of a still-diverged task to its lease).
        if (req.running.some((r) => this.c.isDiverged(taskIdOfJob(r.jobId) ?? "")))
          await this.c.serial(() => this.c.recover());
        return this.run({ type: "agent-bye", site, agent, request: req });
      default:
        return unreachable(req, "agent request");
    }
  }

  /** The command decided on the state as it is once every earlier one is: events, effects, reply. */
  private run<C extends Command>(command: C): Promise<ReplyOf<C>> {
    return this.c.run(() => decide(this.dispatcher.world(), command, this.clock.now()), this.effects);
  }

  private async grant(r: ClaimToGrant): Promise<ClaimGrant> {
    return {
      sandbox: r.sandboxKey ? await this.storage.presignGet(r.sandboxKey) : null,
      trainingData: r.trainingDS === null ? [] : await this.trainingData(r, r.trainingDS),
      checkpoint: r.checkpointKey ? await this.storage.presignGet(r.checkpointKey) : null,
    };
  }

  private async trainingData(r: ClaimToGrant, ds: string): Promise<PresignedUrl[]> {
    // The same (cached) listing the job message was built from, so both name the same files.
    const e = this.c.state.engines.get(r.taskId);
    if (!e) throw new GridtuneError("STALE_ATTEMPT", `task ${r.taskId} has ended`);
    const files = await this.dispatcher.trainingFiles(e, r.pointId);
    const prefix = keys.dataset(ds);
    return Promise.all(
      files.map(async (name) => ({ name, url: await this.storage.presignGet(prefix + name) })),
    );
  }

  private presignUploads(r: UploadsToPresign): Promise<UploadGrant[]> {
    return Promise.all(
      r.artifacts.map(async (a) => {
        const key = keys.artifact(r.taskId, r.pointId, r.jobId, r.attempt, a.kind);
        return { kind: a.kind, key, url: await this.storage.presignPut(key, a.size) };
      }),
    );
  }

  /** Each site has one durable pull consumer on JOBS, named after the site, filtering its subject. */
  async ensureSiteConsumer(site: string): Promise<void> {
    if (this.knownSites.has(site)) return;
    try {
      await this.jsm.consumers.info(STREAM_JOBS, site);
    } catch {
      await this.jsm.consumers.add(STREAM_JOBS, {
        durable_name: site,
        filter_subject: subjects.jobs(site),
        ack_policy: AckPolicy.Explicit,
        ack_wait: 60_000_000_000,
        max_ack_pending: 10_000,
      });
    }
    this.knownSites.add(site);
  }
}
