// The dispatcher: the I/O around the dispatch rules (core/decide/dispatch.ts). A pump runs in the
// serial queue and, round robin over the running tasks (so concurrent tasks share evaluators
// fairly), decides each task's dispatch-propose then its dispatch-job command, staging their
// events at once (group commit), until a round moves nothing; each decision's effects run once its
// events are durable: a Job is published only after its job-dispatched event is stored. The
// dispatcher also does the Job message itself (trainingDS listing, avoided agents), the wake-ups
// at the end of a back-off (through the Clock port), and the lease tick (core/decide/leases.ts).
// Steering-program iterations (tasks with steeringExec) run outside the commit queue
// (program/dispatch.ts).
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/log.ts";
import { subjects } from "../../protocol/subjects.ts";
import type { AgentRegistry } from "../core/agentRegistry.ts";
import { natsRetryBound, type SteeringConfig } from "./config.ts";
import { tryTimeout, withElectionRetry } from "../../protocol/natsRetry.ts";
import type { Committer } from "./committer.ts";
import { buildJob } from "../core/task/jobBuilder.ts";
import type { TaskEngine } from "../core/task/taskEngine.ts";
import { siteAccepts, type SitePolicy } from "../security/sitePolicy.ts";
import { SteeringDispatch } from "../program/dispatch.ts";
import { LocalSteeringRunner, type SteeringRunner } from "../program/runner.ts";
import { segmentFiles } from "../core/trainingData.ts";
import { keys, type Storage } from "./storage.ts";
import { decide } from "../core/decider.ts";
import { stopAllEffects } from "../core/decide/reports.ts";
import type { Decision } from "../core/decision.ts";
import type { DispatchView } from "../core/decide/dispatch.ts";
import type { World } from "../core/world.ts";
import { systemClock, type Cancel, type Clock } from "./clock.ts";
import { EffectRunner } from "./effects.ts";
import type { StreamPublisher } from "./ports.ts";
import { abortUploadPort } from "./datasetUploads.ts";
import { agentsToAvoid } from "../core/retryPolicy.ts";

export class Dispatcher {
  private kicked = false;
  /** Steering's NATS connections that are down now (the JetStream one, the one heartbeats come in on). */
  private readonly connectionsDown = new Set<string>();
  /** trainingDS listing by task id. */
  private readonly datasetFiles = new Map<string, string[]>();
  private readonly steeringAbort = new AbortController();
  /** The steering-program iterations (tasks with steeringExec): program/dispatch.ts. */
  private readonly steering: SteeringDispatch;
  /** A pump at the end of the earliest retry back-off still running (see wakeAt). */
  private cancelWake: Cancel | null = null;
  private wakeTime = Number.POSITIVE_INFINITY;
  /** The one executor of the decisions' effects (jobs, stops, wake-ups, pumps). */
  readonly effects: EffectRunner;

  constructor(
    private readonly c: Committer,
    private readonly js: StreamPublisher,
    private readonly registry: AgentRegistry,
    /** The site policy now: a job goes only to a site that accepts its task's user. */
    private readonly policy: () => SitePolicy,
    private readonly storage: Storage,
    private readonly config: SteeringConfig,
    private readonly logger: Logger,
    /** Leases are judged from here at the earliest: see restartLeases. */
    private leaseBaseline: number,
    steeringRunner: SteeringRunner = new LocalSteeringRunner(),
    private readonly clock: Clock = systemClock,
    /** Steering's connection for control messages to the agents (stop, continue). */
    control: Pick<NatsConnection, "publish"> | null = null,
  ) {
    this.effects = new EffectRunner({
      logger,
      agents: registry,
      kick: () => this.kick(),
      publishJob: (taskId, jobId, attempt) => this.publish(taskId, jobId, attempt),
      control:
        control &&
        ((site, agent, msg) => control.publish(subjects.control(site, agent), JSON.stringify(msg))),
      wakeAt: (t) => this.wakeAt(t),
      startProgramIteration: (taskId, segment) => this.steering.start(taskId, segment),
      stopsOf: (taskId, reason) => {
        const e = c.state.engines.get(taskId);
        return e ? stopAllEffects(e, reason) : [];
      },
      abortUpload: abortUploadPort(storage, logger),
    });
    this.steering = new SteeringDispatch({
      c,
      storage,
      decide: (command) => this.c.run(() => decide(this.world(), command, this.clock.now()), this.effects),
      logger,
      runner: steeringRunner,
      signal: this.steeringAbort.signal,
      now: () => clock.now(),
      kick: () => this.kick(),
    });
  }

  /**
   * Kills the steering iterations in flight (their results are not committed); settles once they
   * have ended (their containers removed).
   */
  async close(): Promise<void> {
    this.steeringAbort.abort();
    this.cancelWake?.();
    await this.steering.settled();
  }

  /** The task was retired (taskArchive.ts): its cached listing goes. */
  forget(taskId: string): void {
    this.datasetFiles.delete(taskId);
  }

  /** Schedules one pump; kicks while one is pending coalesce. */
  kick(): void {
    if (this.kicked) return;
    this.kicked = true;
    this.c
      .serial(async () => {
        this.kicked = false;
        await this.pump();
      })
      .catch((e: unknown) =>
        this.logger.error("dispatch failed; will retry on the next kick", { error: String(e) }),
      );
  }

  private outstandingBySite(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.c.state.engines.values()) {
      for (const j of e.activeJobs()) if (j.site) out.set(j.site, (out.get(j.site) ?? 0) + 1);
    }
    return out;
  }

  private async pump(): Promise<void> {
    await this.c.recover();
    const capacity = this.registry.capacityBySite(this.clock.now());
    const outstanding = this.outstandingBySite();
    const policy = this.policy();
    const view: DispatchView = {
      capacity,
      outstanding,
      accepts: (site, user) => siteAccepts(policy, site, user),
    };
    // A task whose event is refused (e.g. too large to log) is skipped for this pump; the others
    // still get their turn.
    const failed = new Set<string>();
    // One sampling event per task and pump: an iteration too large for one event (logged in
    // parts) goes on in the next pump, after the API and the agents' reports had their turn.
    const sampled = new Set<TaskEngine>();
    let moved = true;
    while (moved) {
      moved = false;
      for (const e of this.c.state.engines.values()) {
        if (e.state !== "running" || this.c.isDiverged(e.taskId) || failed.has(e.taskId)) continue;
        try {
          moved = this.step(e, view, outstanding, sampled) || moved;
        } catch (err) {
          failed.add(e.taskId);
          this.logger.error("dispatch failed for a task; retried on the next pump", {
            taskId: e.taskId,
            error: String(err),
          });
        }
      }
    }
    if ([...sampled].some((e) => e.samplingOwed()))
      setImmediate(() => {
        if (!this.steeringAbort.signal.aborted) this.kick(); // not once closing
      });
  }

  /**
   * One round of a task: its dispatch-propose decision (program iterations, sampling, a scheduler
   * suggestion) staged, then its dispatch-job decision on the state that made (see
   * core/decide/dispatch.ts for why two); true if anything moved.
   */
  private step(
    e: TaskEngine,
    view: DispatchView,
    outstanding: Map<string, number>,
    sampled: Set<TaskEngine>,
  ): boolean {
    const w = this.world();
    const proposed = decide(
      w,
      { type: "dispatch-propose", taskId: e.taskId, view, sampled: sampled.has(e) },
      this.clock.now(),
    );
    this.enact(proposed);
    if (proposed.reply.sampled) sampled.add(e);
    const dispatched = decide(w, { type: "dispatch-job", taskId: e.taskId, view }, this.clock.now());
    this.enact(dispatched);
    const site = dispatched.reply.site;
    if (site !== null) outstanding.set(site, (outstanding.get(site) ?? 0) + 1);
    return proposed.reply.moved || site !== null;
  }

  /**
   * Stages the decision's events now (inside the serial queue: group commit, the pump goes on at
   * once) and runs its effects once they are all durable. A refused event throws here (the task
   * is skipped for this pump); one whose append fails runs no effect: the task is rebuilt from
   * the log and dispatched again.
   */
  private enact(d: Decision<unknown>): void {
    // most decisions of a pump round are of tasks with nothing to do: no promise chain for those
    if (d.events.length === 0 && d.effects.length === 0) return;
    const durable = d.events.map((ev) => this.c.stage(ev).durable);
    void Promise.all(durable)
      .then(
        async () => {
          for (const effect of d.effects) await this.effects.run(effect);
        },
        () => undefined,
      )
      .catch((err: unknown) => this.logger.error("a dispatch effect failed", { error: String(err) }));
  }

  /** Schedules a pump at `t` (the end of a retry back-off), unless one is due sooner. */
  private wakeAt(t: number): void {
    if (t >= this.wakeTime || this.steeringAbort.signal.aborted) return;
    this.cancelWake?.();
    this.wakeTime = t;
    this.cancelWake = this.clock.after(t - this.clock.now(), () => {
      this.cancelWake = null;
      this.wakeTime = Number.POSITIVE_INFINITY;
      this.kick();
    });
  }

  /** Publishes the job of this attempt if it is still the current one; duplicates are dropped by the msgID. */
  async publish(taskId: string, jobId: string, attempt: number): Promise<void> {
    const e = this.c.state.engines.get(taskId);
    const rec = e?.job(jobId);
    if (!e || !rec?.site || rec.attempt !== attempt || rec.state !== "dispatched") return;
    try {
      const job = {
        ...buildJob(e, jobId),
        avoidAgents: agentsToAvoid(
          rec,
          rec.site,
          this.registry.list(),
          this.clock.now(),
          this.config.leaseMs,
        ),
      };
      // through a leader election of JOBS: sent again under the same msgID (stored once)
      const site = rec.site;
      await withElectionRetry(
        `publishing job ${jobId}.${attempt}`,
        (left) =>
          this.js.publish(subjects.jobs(site), JSON.stringify(job), {
            msgID: `${jobId}.${attempt}`,
            timeout: tryTimeout(5_000, left),
          }),
        { bound: natsRetryBound(this.config), boundSetting: "GRIDTUNE_NATS_RETRY_MS" },
      );
    } catch (err) {
      // The attempt stays dispatched; its claim deadline expires it and it is retried.
      this.logger.error("could not publish a job", { jobId, attempt, error: String(err) });
    }
  }

  /** The trainingDS file names of the point's segment (all of them for unsegmented tasks). */
  async trainingFiles(e: TaskEngine, pointId: number): Promise<string[]> {
    const ds = e.spec.trainingDS;
    if (!ds) return [];
    // listed once per task (in this process): every job of the task sees the same files, and a
    // task submitted after more uploads sees them
    let all = this.datasetFiles.get(e.taskId);
    if (!all) {
      const prefix = keys.dataset(ds);
      all = (await this.storage.list(prefix)).map((o) => o.key.slice(prefix.length));
      this.datasetFiles.set(e.taskId, all);
    }
    return segmentFiles(e.spec.segments?.[e.points.get(pointId)?.segment ?? -1], all);
  }

  /**
   * Restarts every lease clock at `at`: after steering's start (its replay and sweep took time no
   * agent could use) and after each NATS reconnect of `connection` (no heartbeat could arrive while
   * it was down), so neither reads as silent agents. Each of steering's connections counts: the
   * heartbeats come in on the request-serving one, which may reconnect seconds after the other.
   */
  restartLeases(at = this.clock.now(), connection = "steering"): void {
    this.leaseBaseline = Math.max(this.leaseBaseline, at);
    this.connectionsDown.delete(connection);
  }

  /**
   * Whether this process leads now (standby steering: the term holds). While it does not, no
   * heartbeat is let in, so silence proves nothing and no lease is judged.
   */
  leading: () => boolean = () => true;

  /** One of steering's NATS connections is down: silence proves nothing until it is back. */
  pauseLeases(connection = "steering"): void {
    this.connectionsDown.add(connection);
  }

  /** Expires lapsed leases: silent running attempts, and dispatched ones nobody claims. */
  expireLeases(): Promise<void> {
    return this.c
      .run(() => decide(this.world(), { type: "lease-tick" }, this.clock.now()), this.effects)
      .then(() => undefined);
  }

  /** What the decider reads (core/world.ts). */
  world(): World {
    return {
      tasks: this.c.state,
      agents: this.registry,
      diverged: this.c.divergedTasks,
      rules: this.config,
      leases: { baseline: this.leaseBaseline, paused: this.connectionsDown.size > 0 || !this.leading() },
    };
  }
}
