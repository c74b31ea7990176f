// The dispatcher: samples points when due, hands the next job of each task to the site with the
// most free capacity (round robin over tasks, so concurrent tasks share evaluators fairly), and
// expires leases. Every decision is committed to the log before the job is published.
// Steering-program iterations (tasks with steeringExec) are started from each pump and run
// outside the commit queue (steeringDispatch.ts).
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "../../protocol/log.ts";
import { subjects } from "../../protocol/subjects.ts";
import { pickSite, type AgentRegistry } from "../core/agentRegistry.ts";
import type { SteeringConfig } from "./config.ts";
import type { Committer } from "./committer.ts";
import { buildJob } from "../core/task/jobBuilder.ts";
import type { TaskEngine } from "../core/task/taskEngine.ts";
import { siteAccepts, type SitePolicy } from "../security/sitePolicy.ts";
import { SteeringDispatch } from "../program/dispatch.ts";
import { LocalSteeringRunner, type SteeringRunner } from "../program/runner.ts";
import { segmentFiles } from "../core/trainingData.ts";
import { keys, type Storage } from "./storage.ts";
import { decide } from "../core/decider.ts";
import type { World } from "../core/world.ts";
import { systemClock, type Clock } from "./clock.ts";
import { EffectRunner } from "./effects.ts";
import { agentsToAvoid, failedSites, retryReadyAt } from "../core/retryPolicy.ts";

export class Dispatcher {
  private kicked = false;
  private natsDown = false;
  /** trainingDS listing by task id. */
  private readonly datasetFiles = new Map<string, string[]>();
  private readonly steeringAbort = new AbortController();
  /** The steering-program iterations (tasks with steeringExec): steeringDispatch.ts. */
  private readonly steering: SteeringDispatch;
  /** A pump at the end of the earliest retry back-off still running (see wakeAt). */
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeTime = Number.POSITIVE_INFINITY;
  private readonly effects: EffectRunner;

  constructor(
    private readonly c: Committer,
    private readonly js: JetStreamClient,
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
  ) {
    this.effects = new EffectRunner({ logger, agents: registry, kick: () => this.kick() });
    this.steering = new SteeringDispatch({
      c,
      storage,
      retry: config.retry,
      logger,
      runner: steeringRunner,
      signal: this.steeringAbort.signal,
      wakeAt: (t) => this.wakeAt(t),
      kick: () => this.kick(),
    });
  }

  /**
   * Kills the steering iterations in flight (their results are not committed); settles once they
   * have ended (their containers removed).
   */
  async close(): Promise<void> {
    this.steeringAbort.abort();
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
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
    const now = this.clock.now();
    const capacity = this.registry.capacityBySite(now);
    const outstanding = this.outstandingBySite();
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
          moved = this.step(e, capacity, outstanding, sampled) || moved;
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

  /** One round of a task: sampling, a scheduler suggestion, one dispatch; true if anything moved. */
  private step(
    e: TaskEngine,
    capacity: Map<string, number>,
    outstanding: Map<string, number>,
    sampled: Set<TaskEngine>,
  ): boolean {
    let moved = false;
    this.steering.start(e);
    // Events are staged (group commit): the decisions go on at once; a job is published only
    // after its job-dispatched event is stored.
    const sampling = sampled.has(e) ? null : e.proposeSampling(this.clock.now());
    if (sampling) {
      this.c.stage(sampling);
      sampled.add(e);
      moved = true;
    }
    // a retry waits out its back-off (a pump is due when the earliest one ends), and prefers a
    // site where the job has not failed; only sites that accept the task's user are candidates
    const ready = e.nextReady(this.clock.now(), (p) => retryReadyAt(this.config.retry, p));
    this.wakeAt(ready.wakeAt);
    let job = ready.job;
    const policy = this.policy();
    const site = pickSite(
      capacity,
      outstanding,
      e.spec.site,
      (s) => siteAccepts(policy, s, e.user),
      job ? failedSites(job) : undefined,
    );
    // A scheduler is asked only when a slot is really free (a site has room and nothing of the
    // task is queued): a later suggest() knows more (it may promote instead of starting anew).
    if (!job && site && e.schedulers) {
      const suggestion = e.proposeTrial(this.clock.now());
      if (suggestion) {
        job = this.c.stage(suggestion).engine?.nextDispatchable() ?? null;
        moved = true;
      }
    }
    if (job && site) {
      const { jobId, attempt } = job;
      const staged = this.c.stage({
        type: "job-dispatched",
        taskId: e.taskId,
        at: this.clock.now(),
        jobId,
        attempt,
        site,
      });
      outstanding.set(site, (outstanding.get(site) ?? 0) + 1);
      void staged.durable.then(
        () => this.publish(e.taskId, jobId, attempt),
        () => undefined, // not logged: the task is rebuilt and the job dispatched again
      );
      moved = true;
    }
    if (e.isComplete())
      this.c.stage({ type: "task-state", taskId: e.taskId, at: this.clock.now(), state: "finished" });
    return moved;
  }

  /** Schedules a pump at `t` (the end of a retry back-off), unless one is due sooner. */
  private wakeAt(t: number | null): void {
    if (t === null || t >= this.wakeTime || this.steeringAbort.signal.aborted) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTime = t;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = null;
        this.wakeTime = Number.POSITIVE_INFINITY;
        this.kick();
      },
      Math.max(0, t - this.clock.now()),
    );
    this.wakeTimer.unref();
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
      await this.js.publish(subjects.jobs(rec.site), JSON.stringify(job), {
        msgID: `${jobId}.${attempt}`,
      });
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
   * agent could use) and after each NATS reconnect (no heartbeat could arrive while steering's
   * connection was down), so neither reads as silent agents.
   */
  restartLeases(at = this.clock.now()): void {
    this.leaseBaseline = Math.max(this.leaseBaseline, at);
    this.natsDown = false;
  }

  /** Steering's NATS connection is down: silence proves nothing until restartLeases. */
  pauseLeases(): void {
    this.natsDown = true;
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
      leases: { baseline: this.leaseBaseline, paused: this.natsDown },
    };
  }
}
