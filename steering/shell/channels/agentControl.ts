// The agent control channel (gt.hb.<site>.<agent>, core request/reply): registration with the
// protocol-version check, heartbeats that renew leases and name stale attempts, claims (the lease
// check before a job runs, answered with presigned input URLs) and presigned upload URLs.
// The site and agent come from the subject, which the server's permissions bind to the identity;
// a request is answered, and acted on, only when its reply subject is that agent's inbox.
// The decisions (which attempts a heartbeat renews or names stale, whether a claim is granted) are
// pure functions of the engine, below; the class does the I/O around them.
import { AckPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { GridtuneError, UnavailableError, toWireError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import {
  AgentRequest,
  type AgentReply,
  type ClaimGrant,
  type RunningAttempt,
  type UploadGrant,
} from "../../../protocol/messages.ts";
import { STREAM_JOBS, parseHeartbeatSubject, subjects } from "../../../protocol/subjects.ts";
import { PROTOCOL_VERSION } from "../../../protocol/version.ts";
import type { AgentRegistry } from "../../core/agentRegistry.ts";
import type { SteeringConfig } from "../config.ts";
import type { Committer } from "../committer.ts";
import type { Dispatcher } from "../dispatcher.ts";
import type { JobRec } from "../../core/task/records.ts";
import type { TaskEngine } from "../../core/task/taskEngine.ts";
import { replyAllowed } from "../replyGuard.ts";
import type { SitePolicy } from "../../security/sitePolicy.ts";
import { keys, type Storage } from "../storage.ts";

export function taskIdOfJob(jobId: string): string | null {
  return /^t([0-9]+)-/.exec(jobId)?.[1] ?? null;
}

/** What a heartbeat does with one attempt the agent says it runs. */
export interface LeaseVerdict {
  /** Renew the attempt's lease from now. */
  renew: boolean;
  /** Name it in the reply's `stale`: the agent stops it (and sends no result). */
  stale: boolean;
}

/**
 * The heartbeat's decision for one running attempt of agent site/agent (pure). `e` is the
 * attempt's task engine; `diverged` says it ran ahead of the log and waits for a rebuild.
 */
export function judgeRunning(
  e: TaskEngine | undefined,
  diverged: boolean,
  r: RunningAttempt,
  site: string,
  agent: string,
): LeaseVerdict {
  // A diverged engine holds events the log may not (e.g. a job-lost folded while NATS was down,
  // never stored): the log may still say the attempt runs, and a restart would fold that log. So
  // the attempt is neither stopped nor let lapse on the word of that engine; once the task is
  // rebuilt, the next heartbeat is judged against what the log holds. Only attempts the engine
  // knows are renewed: the log is behind the engine, so it cannot hold a later attempt of a job
  // (the job the engine has for the point may be a later one: a promotion renames it).
  if (diverged) {
    const j = e?.job(r.jobId);
    const known = j !== undefined && (j.jobId !== r.jobId || j.attempt >= r.attempt);
    return { renew: known, stale: false };
  }
  const f = e?.fence(r.jobId, r.attempt, site, agent);
  if (!e || !f?.ok) return { renew: false, stale: true };
  // A killed task's attempts are named stale on every heartbeat: the stop sent at the kill goes
  // over core NATS once (lost with a message or a steering restart), while the task state is in
  // the log. The lease is still renewed while the agent winds the attempt down, so a "killed" stop
  // that did arrive ends with its stopped result (after the checkpoint and uploads) rather than a
  // lapsed lease; once the agent stops listing it, the lease lapses if no result came.
  if (e.state === "killed") return { renew: true, stale: true };
  return { renew: true, stale: false };
}

export type ClaimVerdict = { ok: true; job: JobRec; stage: boolean } | { ok: false; reason: string };

/**
 * Whether agent site/agent may run this attempt (pure). `stage`: the grant logs a job-claimed.
 * A claim of an attempt already running on this very agent is granted again (idempotent): the
 * agent's request may have timed out after the grant, or the agent restarted and got the job
 * again. A second JOBS message for an attempt the agent already runs or claims (a republish past
 * the 120 s msgID window, a redelivery after a lost ack) is dropped by the agent itself.
 */
export function judgeClaim(e: TaskEngine, r: RunningAttempt, site: string, agent: string): ClaimVerdict {
  const f = e.fence(r.jobId, r.attempt, site, agent);
  if (!f.ok) return f;
  if (e.state === "killed") return { ok: false, reason: `task ${e.taskId} was killed` };
  return { ok: true, job: f.job, stage: f.job.state === "dispatched" };
}

export class AgentControl {
  private readonly knownSites = new Set<string>();

  constructor(
    private readonly c: Committer,
    private readonly registry: AgentRegistry,
    private readonly storage: Storage,
    private readonly dispatcher: Dispatcher,
    private readonly jsm: JetStreamManager,
    private readonly config: SteeringConfig,
    private readonly logger: Logger,
    /** The site policy (sites.json): which runtimes a site's agents may register with. */
    private readonly sites: { refresh(): Promise<SitePolicy> },
  ) {}

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

  /**
   * An agent registers only with a runtime its site offers: the process runtime runs payloads
   * unconfined on the host, so only a site whose policy offers it (and so names its trusted users)
   * may have process agents.
   */
  private async checkRuntime(site: string, agent: string, runtime: "docker" | "process"): Promise<void> {
    const p = await this.sites.refresh();
    const a = Object.hasOwn(p.sites, site) ? p.sites[site] : undefined;
    if (!a) {
      this.logger.warn("agent registered for a site without a policy: no user's work goes there", {
        site,
        agent,
      });
      if (runtime === "process")
        throw new GridtuneError(
          "FORBIDDEN",
          `agent ${site}/${agent} uses the process runtime, but site ${site} has no policy; the operator sets one with ` +
            `gridtune-steering admin set-site ${site} --runtimes process --users <trusted users>`,
        );
      return;
    }
    if (!a.runtimes.includes(runtime))
      throw new GridtuneError(
        "FORBIDDEN",
        `agent ${site}/${agent} uses the ${runtime} runtime, which site ${site} does not offer (runtimes: ${a.runtimes.join(", ")}); ` +
          `run the agent with --runtime ${a.runtimes[0]}, or the operator allows it with gridtune-steering admin set-site ${site} --runtimes …`,
      );
  }

  private async dispatch(site: string, agent: string, req: AgentRequest): Promise<AgentReply> {
    const now = Date.now();
    switch (req.type) {
      case "register": {
        if (req.v !== PROTOCOL_VERSION) {
          throw new GridtuneError(
            "PROTOCOL_MISMATCH",
            `agent ${site}/${agent} speaks protocol ${req.v}, steering speaks ${PROTOCOL_VERSION}; install matching gridtune versions`,
          );
        }
        await this.checkRuntime(site, agent, req.runtime);
        await this.ensureSiteConsumer(site);
        this.registry.register({ site, agent, slots: req.slots, gpus: req.gpus, runtime: req.runtime }, now);
        this.logger.info("agent registered", {
          site,
          agent,
          slots: req.slots,
          gpus: req.gpus.length,
          runtime: req.runtime,
        });
        this.dispatcher.kick();
        return { type: "registered", leaseMs: this.config.leaseMs, heartbeatMs: this.config.heartbeatMs };
      }
      case "heartbeat": {
        // Leases are renewed before the registration check: after a steering restart the registry
        // is empty and the first heartbeat of every agent is refused until it registers again,
        // while the log still knows which attempts run on it. The site and agent come from the
        // subject (the identity), and the fence checks each attempt against the log, so an agent
        // renews only its own attempts, registered or not.
        const stale: RunningAttempt[] = [];
        for (const r of req.running) {
          const taskId = taskIdOfJob(r.jobId);
          const diverged = taskId !== null && this.c.isDiverged(taskId);
          const v = judgeRunning(this.engineOf(r.jobId), diverged, r, site, agent);
          if (v.renew) this.registry.renew(r.jobId, r.attempt, now);
          if (v.stale) stale.push(r);
        }
        const rec = this.registry.heartbeat(site, agent, req.freeSlots, req.draining, now);
        if (!rec)
          throw new GridtuneError(
            "UNAUTHENTICATED",
            `agent ${site}/${agent} is not registered; register again`,
          );
        if (req.freeSlots > 0) this.dispatcher.kick();
        return { type: "ack", stale };
      }
      case "claim": {
        // Only the lease check and its staging are serial; the wait for the log and the grant's
        // S3 work run outside the queue.
        const { e, durable } = await this.c.serial(() => {
          const taskId = taskIdOfJob(req.jobId);
          // judged on the log, not on an engine that ran ahead of it: the agent retries
          if (taskId !== null && this.c.isDiverged(taskId))
            throw new UnavailableError(`task ${taskId} is being rebuilt from its log; try again`);
          const e = this.engineOf(req.jobId);
          const v = e ? judgeClaim(e, req, site, agent) : null;
          if (!e || !v?.ok) {
            const reason = v && !v.ok ? v.reason : `unknown job ${req.jobId}`;
            this.logger.warn("claim refused", {
              site,
              agent,
              jobId: req.jobId,
              attempt: req.attempt,
              reason,
            });
            throw new GridtuneError("STALE_ATTEMPT", reason);
          }
          const durable = v.stage
            ? this.c.stage({
                type: "job-claimed",
                taskId: e.taskId,
                at: now,
                jobId: req.jobId,
                attempt: req.attempt,
                site,
                agent,
              }).durable
            : Promise.resolve();
          this.registry.renew(req.jobId, req.attempt, now);
          return Promise.resolve({ e, durable });
        });
        await durable.catch((err: unknown) => {
          throw new UnavailableError(`the claim of ${req.jobId} could not be logged; try again`, {
            cause: err,
          });
        });
        return { type: "claimed", grant: await this.grant(e, req.jobId) };
      }
      case "presign": {
        const e = this.engineOf(req.jobId);
        const f = e?.fence(req.jobId, req.attempt, site, agent);
        const running = f?.ok === true && f.job.state === "running";
        // Or an ended attempt's missing artifacts: uploaded late by the agent that ran it.
        const late = running
          ? []
          : req.artifacts.map((a) => e?.lateFence(req.jobId, req.attempt, a.kind, site, agent));
        const refused = late.find((l) => !l?.ok);
        const pointId = running && f?.ok ? f.job.pointId : late[0]?.ok ? late[0].point.pointId : null;
        if (!e || refused !== undefined || pointId === null) {
          const why =
            refused && !refused.ok ? refused.reason : f && !f.ok ? f.reason : `${req.jobId} is not running`;
          throw new GridtuneError("STALE_ATTEMPT", why);
        }
        const uploads: UploadGrant[] = [];
        for (const a of req.artifacts) {
          const limit = a.kind === "checkpoint" ? e.task.evaluation.checkPointLimitBytes : 5 * 1024 ** 3;
          if (a.size > limit)
            throw new GridtuneError(
              "TOO_LARGE",
              `${a.kind} of ${a.size} bytes exceeds the limit of ${limit}`,
            );
          const key = keys.artifact(e.taskId, pointId, req.jobId, req.attempt, a.kind);
          uploads.push({ kind: a.kind, key, url: await this.storage.presignPut(key, a.size) });
        }
        return { type: "presigned", uploads };
      }
      case "bye":
        await this.c.serial(async () => {
          for (const r of req.running) {
            const e = this.engineOf(r.jobId);
            if (!e?.fence(r.jobId, r.attempt, site, agent).ok) continue;
            await this.c.commit({
              type: "job-lost",
              taskId: e.taskId,
              at: now,
              jobId: r.jobId,
              attempt: r.attempt,
              reason: `handed back by agent ${site}/${agent}`,
            });
          }
        });
        this.registry.remove(site, agent);
        this.logger.info("agent left", { site, agent, handedBack: req.running.length });
        this.dispatcher.kick();
        return { type: "ack", stale: [] };
    }
  }

  private engineOf(jobId: string): TaskEngine | undefined {
    const t = taskIdOfJob(jobId);
    return t === null ? undefined : this.c.state.engines.get(t);
  }

  private async grant(e: TaskEngine, jobId: string): Promise<ClaimGrant> {
    const p = e.pointOfJob(jobId)!;
    const ds = e.spec.trainingDS;
    // The same (cached) listing the job message was built from, so both name the same files.
    const files = ds ? await this.dispatcher.trainingFiles(e, p.pointId) : [];
    return {
      sandbox: e.spec.sandboxKey ? await this.storage.presignGet(e.spec.sandboxKey) : null,
      trainingData: await Promise.all(
        files.map(async (name) => ({ name, url: await this.storage.presignGet(keys.dataset(ds!) + name) })),
      ),
      checkpoint: p.checkpointKey ? await this.storage.presignGet(p.checkpointKey) : null,
    };
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
