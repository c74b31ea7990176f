// The evaluator agent on a site node. Lifecycle: idle → starting → running → draining → stopped.
// It registers (site, slots, GPUs, protocol version), pulls jobs from its site's durable consumer
// only for its free slots (one pull request for all of them, so a busy agent pays one pull per
// batch, not per job), claims each (the lease check) before acking it, runs it, renews the
// leases with heartbeats, and on SIGINT/SIGTERM takes no new job, checkpoints and hands back the
// running ones. A job runs under its own AbortController, aborted with a StopReason.
import {
  jetstream,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { settleWithin, sleep } from "../protocol/async.ts";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";
import { agentIdentity } from "../protocol/identity.ts";
import type { Logger } from "../protocol/log.ts";
import {
  AgentReply,
  ControlMessage,
  Job,
  type AgentReport,
  type AgentRequest,
  type ClaimGrant,
} from "../protocol/messages.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import { type ElectionRetry, tryTimeout, withElectionRetry } from "../protocol/natsRetry.ts";
import { STREAM_JOBS, subjects } from "../protocol/subjects.ts";
import { GRIDTUNE_VERSION, PROTOCOL_VERSION } from "../protocol/version.ts";
import { agentInstance } from "./config.ts";
import { runJob, type SitePolicy } from "./jobRunner.ts";
import { Verdicts } from "./judgeGate.ts";
import { LateUploads, type LatePolicy } from "./lateUploads.ts";
import type { SteeringLink, StopReason } from "./link.ts";
import type { Runtime } from "./runtime/types.ts";
import { removeOwnWorkDirs } from "./workDirs.ts";

export interface AgentOptions {
  site: string;
  agent: string;
  natsUrl: string;
  seedFile: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** One entry per slot: the GPU ids of the slot (empty for CPU slots). */
  slots: string[][];
  runtime: Runtime;
  workRoot: string;
  policy: SitePolicy;
  logger: Logger;
  /** How long to keep retrying registration while steering does not answer (default: forever). */
  registerTimeoutMs?: number;
  /** Late uploads of artifacts S3 did not take when their attempt ended (DEFAULT_LATE if absent). */
  latePolicy?: LatePolicy;
  /** Users whose jobs the process runtime runs (others' jobs fail with FORBIDDEN). */
  trustedUsers: readonly string[];
}

export type AgentState = "idle" | "starting" | "running" | "draining" | "stopped";

/** How often an agent puts back the retry of a job it already failed (Job.avoidAgents). */
const MAX_DEFERRALS = 3;
/** A report is retried for 15 minutes (NATS restarts, elections), every 10 s at most. */
const REPORT_RETRY: ElectionRetry = { totalMs: 15 * 60_000, baseMs: 200, maxMs: 10_000, jitter: 0 };

interface Running {
  job: Job;
  controller: AbortController;
  /** Steering's `continue` verdicts, for a payload paused at a judged level. */
  verdicts: Verdicts;
  slot: number;
  done: Promise<void>;
}

export class Agent implements SteeringLink {
  state: AgentState = "idle";
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private readonly running = new Map<string, Running>();
  private readonly freeSlots: number[];
  private slotWaiters: Array<() => void> = [];
  private heartbeatMs = 5000;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pullLoop: Promise<void> | null = null;
  /** The pull request waiting for jobs, closed on drain. */
  private fetching: ConsumerMessages | null = null;
  /** Jobs received and being claimed (not yet running or given back). */
  private readonly taking = new Set<Promise<void>>();
  /** The attempts ("jobId#attempt") whose claim is in flight. */
  private readonly claiming = new Set<string>();
  private closing: Promise<void> | null = null;
  completed = 0;
  /** This agent's name on its host (agentInstance): in its run keys, containers and work dirs. */
  readonly instance: string;
  /** Artifacts of ended attempts still to be uploaded (they hold no slot). */
  readonly late: LateUploads;

  constructor(private readonly o: AgentOptions) {
    this.freeSlots = o.slots.map((_, i) => i);
    this.instance = agentInstance(o);
    this.late = new LateUploads(o.workRoot, this, o.logger, o.latePolicy);
  }

  /**
   * Removes what a previous run of this same agent left (it was killed mid-attempt): its
   * containers, by its instance label, and its working directories, by its instance prefix. No
   * attempt of this process runs yet, so none of them is in use; steering retries those attempts.
   */
  private async removeLeftovers(): Promise<void> {
    const log = this.o.logger;
    const containers = await this.o.runtime.removeLeftovers?.().catch((e: unknown) => {
      log.warn("could not remove leftover containers", { error: String(e) });
      return 0;
    });
    const dirs = await removeOwnWorkDirs(this.o.workRoot, this.instance).catch((e: unknown) => {
      log.warn("could not remove leftover working directories", { error: String(e) });
      return 0;
    });
    if (containers || dirs)
      log.info("removed what a previous run of this agent left", {
        containers: containers ?? 0,
        workDirs: dirs,
      });
  }

  async start(): Promise<void> {
    if (this.state !== "idle") throw new Error(`start() called in state ${this.state}`);
    this.state = "starting";
    const log = this.o.logger;
    await this.removeLeftovers();
    this.nc = await connectNats({
      servers: this.o.natsUrl,
      seedFile: this.o.seedFile,
      caFile: this.o.caFile,
      certFile: this.o.certFile,
      keyFile: this.o.keyFile,
      identity: agentIdentity(this.o.site, this.o.agent),
      logger: (level, message) => log[level](message),
    });
    this.js = jetstream(this.nc);
    try {
      await this.register(this.o.registerTimeoutMs ?? Number.POSITIVE_INFINITY);
    } catch (e) {
      // refused (a runtime its site does not offer, another protocol): the process must be able
      // to exit with the error, so the connection does not stay open
      this.state = "stopped";
      await this.nc.close().catch(() => undefined);
      throw e;
    }
    for (const subject of [subjects.control(this.o.site, this.o.agent), subjects.controlSite(this.o.site)]) {
      const sub = this.nc.subscribe(subject);
      void (async () => {
        for await (const m of sub) this.onControl(m.data);
      })();
    }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.state = "running";
    const consumer = await this.js.consumers.get(STREAM_JOBS, this.o.site);
    this.pullLoop = this.pull(consumer);
    log.info("agent running", {
      site: this.o.site,
      agent: this.o.agent,
      slots: this.o.slots.length,
      runtime: this.o.runtime.kind,
    });
  }

  private async register(timeoutMs: number): Promise<void> {
    const gpus = this.o.slots.flat();
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      try {
        const reply = await this.request(
          {
            type: "register",
            v: PROTOCOL_VERSION,
            slots: this.o.slots.length,
            gpus,
            runtime: this.o.runtime.kind,
            software: `gridtune ${GRIDTUNE_VERSION}`,
          },
          5000,
        );
        if (reply.type === "registered") {
          this.heartbeatMs = reply.heartbeatMs;
          return;
        }
        if (reply.type === "error") throw GridtuneError.fromWire(reply.error);
        throw new GridtuneError("INTERNAL", `unexpected reply ${reply.type} to register`);
      } catch (e) {
        if (!(e instanceof UnavailableError) || Date.now() > deadline) throw e;
        if (i % 5 === 0)
          this.o.logger.warn("steering does not answer yet; retrying registration", { error: e.message });
        await sleep(Math.min(5000, 250 * 2 ** i));
      }
    }
  }

  // ---------------------------------------------------------------- SteeringLink
  async request(req: AgentRequest, timeoutMs = 10_000): Promise<AgentReply> {
    if (!this.nc) throw new UnavailableError("not connected to NATS");
    try {
      const m = await this.nc.request(subjects.heartbeat(this.o.site, this.o.agent), JSON.stringify(req), {
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

  async report(r: AgentReport): Promise<void> {
    const subject = subjects.results(this.o.site, this.o.agent, r.jobId);
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
      (left) => this.js!.publish(subject, JSON.stringify(r), { msgID, timeout: tryTimeout(10_000, left) }),
      {
        bound: REPORT_RETRY,
        retryable: () => true,
        onRetry: (e, n) => {
          if (n % 5 === 1)
            this.o.logger.warn(`publishing a ${r.type} failed; retrying`, {
              jobId: r.jobId,
              error: String(e),
            });
        },
      },
    );
  }

  // -------------------------------------------------------------------- pulling
  /** Every free slot, once there is at least one; empty when the agent stops running. */
  private async takeSlots(): Promise<number[]> {
    while (this.state === "running") {
      if (this.freeSlots.length > 0) return this.freeSlots.splice(0);
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    return [];
  }

  private releaseSlot(slot: number): void {
    this.freeSlots.push(slot);
    this.freeSlots.sort((a, b) => a - b);
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * One pull request for all free slots at a time. Jobs are taken as they arrive (their claims run
   * concurrently); the request ends when every slot has a job or after 2 s. A slot freed meanwhile
   * waits for the next request, which costs nothing: the current one still has room, so the queue
   * is empty.
   */
  private async pull(consumer: Consumer): Promise<void> {
    while (this.state === "running") {
      const slots = await this.takeSlots();
      if (slots.length === 0) break;
      try {
        this.fetching = await consumer.fetch({ max_messages: slots.length, expires: 2000 });
        for await (const m of this.fetching) {
          const slot = slots.shift();
          if (slot === undefined || this.state !== "running") {
            m.nak();
            if (slot !== undefined) this.releaseSlot(slot);
            continue;
          }
          const p: Promise<void> = this.take(m, slot)
            .catch((e: unknown) => this.o.logger.error("taking a job failed", { error: String(e) }))
            .finally(() => this.taking.delete(p));
          this.taking.add(p);
        }
      } catch (e) {
        this.o.logger.warn("pulling jobs failed; retrying", { error: String(e) });
        await sleep(1000);
      } finally {
        this.fetching = null;
        for (const s of slots) this.releaseSlot(s);
      }
    }
  }

  private async take(m: JsMsg, slot: number): Promise<void> {
    const parsed = Job.safeParse(
      (() => {
        try {
          return m.json();
        } catch {
          return null;
        }
      })(),
    );
    if (!parsed.success) {
      this.o.logger.error("dropping an unreadable job message", {
        seq: m.seq,
        issue: parsed.error.issues[0]?.message,
      });
      m.term();
      return this.releaseSlot(slot);
    }
    const job = parsed.data;
    const key = `${job.jobId}#${job.attempt}`;
    // Two JOBS messages can carry one attempt (a republish past the 120 s msgID window, a
    // redelivery after a lost ack): running both would run the attempt twice, in one working
    // directory. A copy of an attempt running here is done with (acked); a copy of one being
    // claimed goes back to the queue for a while, as that claim may still fail.
    if (this.running.has(key) || this.claiming.has(key)) {
      const runs = this.running.has(key);
      if (runs) m.ack();
      else m.nak(5000);
      this.o.logger.info(
        runs
          ? "duplicate job message for an attempt running here; dropped"
          : "duplicate job message for an attempt being claimed here; put back",
        { jobId: job.jobId, attempt: job.attempt },
      );
      return this.releaseSlot(slot);
    }
    // A retry of a job this agent already failed: put back a few times for another agent of the
    // site (steering names this agent only while another one has room), then run it after all.
    if (job.avoidAgents.includes(this.o.agent) && m.info.deliveryCount <= MAX_DEFERRALS) {
      m.nak(1000);
      this.o.logger.info("retry of a job that failed here; left for another agent", {
        jobId: job.jobId,
        attempt: job.attempt,
      });
      return this.releaseSlot(slot);
    }
    let grant: ClaimGrant;
    this.claiming.add(key);
    try {
      const reply = await this.request({ type: "claim", jobId: job.jobId, attempt: job.attempt });
      if (reply.type === "error") throw GridtuneError.fromWire(reply.error);
      if (reply.type !== "claimed")
        throw new GridtuneError("INTERNAL", `unexpected reply ${reply.type} to claim`);
      grant = reply.grant;
    } catch (e) {
      this.claiming.delete(key);
      const stale = e instanceof GridtuneError && (e.code === "STALE_ATTEMPT" || e.code === "NOT_FOUND");
      if (stale) m.ack();
      else m.nak(5000);
      this.o.logger.info(
        stale ? "job no longer current; dropped" : "claim failed; job returned to the queue",
        { jobId: job.jobId, attempt: job.attempt, error: String(e) },
      );
      return this.releaseSlot(slot);
    }
    // nothing awaits from here to running.set(): the attempt is always in claiming or in running
    this.claiming.delete(key);
    m.ack();
    const controller = new AbortController();
    // claimed while the agent began to drain: it runs only to be handed back with its state
    if (this.state !== "running") controller.abort("drain" satisfies StopReason);
    const verdicts = new Verdicts();
    const run: Running = {
      job,
      controller,
      verdicts,
      slot,
      done: runJob({
        job,
        grant,
        link: this,
        runtime: this.o.runtime,
        workRoot: this.o.workRoot,
        gpus: this.o.slots[slot] ?? [],
        policy: this.o.policy,
        logger: this.o.logger,
        signal: controller.signal,
        late: this.late,
        instance: this.instance,
        trustedUsers: this.o.trustedUsers,
        verdicts,
      })
        .catch((e: unknown) =>
          this.o.logger.error("job runner failed", { jobId: job.jobId, error: String(e) }),
        )
        .finally(() => {
          this.running.delete(key);
          this.completed++;
          this.releaseSlot(slot);
        }),
    };
    this.running.set(key, run);
    this.o.logger.info("job started", { jobId: job.jobId, attempt: job.attempt, slot });
  }

  // ---------------------------------------------------------------- leases, control
  private async heartbeat(): Promise<void> {
    if (this.state !== "running" && this.state !== "draining") return;
    const running = [...this.running.values()].map((r) => ({ jobId: r.job.jobId, attempt: r.job.attempt }));
    try {
      const reply = await this.request(
        { type: "heartbeat", running, freeSlots: this.freeSlots.length, draining: this.state === "draining" },
        5000,
      );
      if (reply.type === "ack") for (const s of reply.stale) this.stop(s.jobId, s.attempt, "stale");
      else if (reply.type === "error" && reply.error.code === "UNAUTHENTICATED") await this.register(30_000);
    } catch (e) {
      this.o.logger.warn("heartbeat not answered", { error: String(e) });
    }
  }

  private onControl(data: Uint8Array): void {
    let msg: ControlMessage;
    try {
      msg = ControlMessage.parse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      return this.o.logger.warn("ignoring an unreadable control message");
    }
    switch (msg.type) {
      case "stop":
        return this.stop(msg.jobId, msg.attempt, msg.reason);
      case "continue":
        return this.running.get(`${msg.jobId}#${msg.attempt}`)?.verdicts.continued(msg.resource);
      case "drain":
        return void this.close();
      default: {
        const never: never = msg;
        return this.o.logger.warn("ignoring an unknown control message", { msg: String(never) });
      }
    }
  }

  private stop(jobId: string, attempt: number, reason: StopReason): void {
    const r = this.running.get(`${jobId}#${attempt}`);
    if (!r || r.controller.signal.aborted) return;
    this.o.logger.info("stopping a job", { jobId, attempt, reason });
    r.controller.abort(reason);
  }

  runningJobs(): Job[] {
    return [...this.running.values()].map((r) => r.job);
  }

  /** Drain: no new jobs; running ones are stopped, checkpointed and handed back; then disconnect. */
  close(graceMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      const wasRunning = this.state === "running";
      this.state = "draining";
      for (const w of this.slotWaiters) w();
      await this.fetching?.close().catch(() => undefined);
      // jobs being claimed start drained (see take) once their claim is answered
      await settleWithin(Promise.allSettled([...this.taking]), 15_000);
      for (const r of this.running.values())
        if (!r.controller.signal.aborted) r.controller.abort("drain" satisfies StopReason);
      const all = Promise.allSettled([...this.running.values()].map((r) => r.done));
      await settleWithin(all, graceMs);
      await settleWithin(this.pullLoop ?? Promise.resolve(), 3000);
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      // what S3 has not taken yet is given up and reported so (while NATS is still connected)
      await settleWithin(this.late.close(), 15_000);
      if (wasRunning) {
        const left = [...this.running.values()].map((r) => ({ jobId: r.job.jobId, attempt: r.job.attempt }));
        await this.request({ type: "bye", running: left }, 3000).catch(() => undefined);
      }
      await this.nc?.drain().catch(() => undefined);
      this.state = "stopped";
      this.o.logger.info("agent stopped", { site: this.o.site, agent: this.o.agent });
    })();
    return this.closing;
  }
}
