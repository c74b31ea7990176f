// The steering service: connects as the steering identity, makes sure the streams exist, rebuilds
// every task from the event log, then serves agents (gt.hb), clients (gt.api) and results
// (RESULTS), dispatching jobs and expiring leases. Requests are served on a second connection, as
// `steering-api`, which may publish only into the requesters' inboxes: a reply goes wherever the
// request says, so the connection that answers must not be able to reach JetStream or the
// streams' subjects. All JetStream work, stop requests and watch events use the first one. Lifecycle: idle → starting → running →
// draining → stopped; close() is idempotent.
import {
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  AckPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { settleWithin } from "../../protocol/async.ts";
import { steeringApiIdentity, steeringIdentity } from "../../protocol/identity.ts";
import type { Logger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { patchNatsRequests } from "./natsRequestPatch.ts";
import {
  STEERING_QUEUE,
  STEERING_RESULTS_CONSUMER,
  KV_STATE,
  STREAM_JOBS,
  STREAM_LOG,
  STREAM_RESULTS,
  subjects,
} from "../../protocol/subjects.ts";
import { AgentControl } from "./channels/agentControl.ts";
import { AgentRegistry } from "../core/agentRegistry.ts";
import { Api } from "./channels/api.ts";
import { natsRetryBound, type SteeringConfig } from "./config.ts";
import { Committer } from "./committer.ts";
import { SteeringState } from "../core/state.ts";
import { Dispatcher } from "./dispatcher.ts";
import { EventLog } from "./eventLog.ts";
import { ResultIngest } from "./channels/resultIngest.ts";
import { SitePolicyFile } from "../security/sitePolicy.ts";
import { DEFAULT_STEERING_LIMITS, LocalSteeringRunner, steeringInstance } from "../program/runner.ts";
import { stopEffects } from "../core/decide/reports.ts";
import { Storage } from "./storage.ts";
import { LimitsFileReader, TenantLimitsReader } from "./limits.ts";
import { TaskArchive } from "./taskArchive.ts";
import { KvFinishedIndex } from "./taskIndex.ts";
import type { Checkpointer } from "./checkpoint.ts";
import { restoreState } from "./startup.ts";
import { ensureStream, reconcileBucket, type StreamSpec } from "./streams.ts";
import { readTaskLog } from "./taskLog.ts";
import { repliesWhileLeading, type LeaderTerm } from "./leadership.ts";
import { systemClock, type Cancel } from "./clock.ts";
import { UploadSweep } from "./datasetUploads.ts";

/** How often tasks whose retirement failed are tried again. */
const RETIRE_SWEEP_MS = 10_000;

export type ServiceState = "idle" | "starting" | "running" | "draining" | "stopped";

export class SteeringService {
  state: ServiceState = "idle";
  private nc: NatsConnection | null = null;
  /** The steering-api connection: requests in, replies out, nothing else. */
  private apiNc: NatsConnection | null = null;
  private storage: Storage | null = null;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private stopUploadSweep: Cancel | null = null;
  private dispatcher: Dispatcher | null = null;
  private background: Promise<unknown>[] = [];
  private closing: Promise<void> | null = null;
  private stopResults: (() => Promise<void>) | null = null;
  committer: Committer | null = null;
  archive: TaskArchive | null = null;
  /** What start-up rebuilt: the active tasks (from snapshots and the log), the finished ones from the index. */
  restored: { tasksRead: number; finished: number } | null = null;
  private checkpointer: Checkpointer | null = null;
  ingest: ResultIngest | null = null;

  constructor(
    private readonly config: SteeringConfig,
    private readonly logger: Logger,
    /** The lease this service leads under (standby.ts); none: the only steering, unfenced. */
    private readonly term: LeaderTerm | null = null,
  ) {}

  async start(): Promise<void> {
    if (this.state !== "idle") throw new Error(`start() called in state ${this.state}`);
    this.state = "starting";
    const tls = {
      servers: this.config.natsUrl,
      caFile: this.config.caFile,
      certFile: this.config.certFile,
      keyFile: this.config.keyFile,
      logger: (level: "info" | "warn" | "error", message: string) => this.logger[level](message),
    };
    // steering makes a request per job publish and log append: the cost the patch removes
    patchNatsRequests();
    const nc = await connectNats({
      ...tls,
      seedFile: this.config.seedFile,
      identity: steeringIdentity(),
      onDisconnect: () => this.dispatcher?.pauseLeases(),
      onReconnect: () => this.dispatcher?.restartLeases(),
    });
    this.nc = nc;
    // Connected before any work, so a missing or refused steering-api seed fails the start at once.
    const apiNc = await connectNats({
      ...tls,
      seedFile: this.config.apiSeedFile,
      identity: steeringApiIdentity(),
      // heartbeats come in on this connection: its outage pauses the lease clock too
      onDisconnect: () => this.dispatcher?.pauseLeases("steering-api"),
      onReconnect: () => this.dispatcher?.restartLeases(undefined, "steering-api"),
    }).catch(async (e: unknown) => {
      await nc.close().catch(() => undefined);
      throw e;
    });
    this.apiNc = apiNc;
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await this.ensureStreams(jsm);
    const storage = new Storage({ ...this.config.s3 });
    this.storage = storage;
    await storage.ensureBucket();

    const log = new EventLog(js, this.logger.child("log"), natsRetryBound(this.config));
    const state = new SteeringState();
    const sites = new SitePolicyFile(this.config.sitesFile, (e) =>
      this.logger.error("the site policy is invalid; the previous one stays in force", { error: e.message }),
    );
    const policy = await sites.load();
    if (Object.keys(policy.sites).length === 0)
      this.logger.warn(
        "no site policy: no site accepts work until one is set (gridtune-steering admin add-site/set-site)",
        { file: this.config.sitesFile },
      );
    const readTask = (taskId: string) => readTaskLog(js, jsm, taskId);
    const c = new Committer(state, log, nc, this.logger.child("commit"), readTask);
    this.committer = c;
    // Start-up reads the active tasks' logs only, plus one summary per finished task.
    const index = await KvFinishedIndex.open(nc, this.config.replicas, this.logger.child("index"));
    const archive = new TaskArchive(c, index, readTask, this.logger.child("archive"));
    this.archive = archive;
    const restored = await restoreState({
      nc,
      js,
      jsm,
      c,
      log,
      archive,
      storage,
      snapshotEvery: this.config.snapshotEvery,
      replicas: this.config.replicas,
      logger: this.logger,
    });
    const { counts } = restored;
    const read = counts.read + counts.snapshots + counts.tail;
    this.restored = { tasksRead: read, finished: state.finished.size };
    this.logger.info("state rebuilt from the event log", {
      tasksRead: read,
      active: state.engines.size,
      finished: state.finished.size,
      fromCheckpoint: restored.fromSeq,
      fromSnapshots: counts.snapshots,
      readInFull: counts.read,
      tailEvents: counts.tailEvents,
    });
    const checkpointer = restored.checkpointer;
    this.checkpointer = checkpointer;
    c.onDurable = (e) => {
      archive.maybeRetire(e);
      checkpointer?.stored(e.taskId);
    };
    const term = this.term;
    // the stream's last sequence after the replay: every append of this term must follow it
    if (term)
      log.fence(
        (await jsm.streams.info(STREAM_LOG)).state.last_seq,
        (e) => term.fenced(e),
        () => term.holds(),
      );
    const limitsFile =
      this.config.limitsFile === undefined
        ? null
        : new LimitsFileReader(this.config.limitsFile, this.logger.child("limits"));
    const limiter = new TenantLimitsReader(this.config.limits, (user) =>
      limitsFile ? limitsFile.overrides(user) : Promise.resolve({}),
    );
    const registry = new AgentRegistry(this.config.leaseMs);
    const runner = new LocalSteeringRunner(DEFAULT_STEERING_LIMITS, steeringInstance(this.config));
    // Iterations in flight at a crash run again (only the log counts); their containers go.
    const swept = await runner
      .sweep()
      .catch((e: unknown) =>
        this.logger.warn("could not remove leftover steering containers", { error: String(e) }),
      );
    if (swept) this.logger.info("removed steering containers left by a previous run", { containers: swept });
    const dispatcher = new Dispatcher(
      c,
      js,
      registry,
      () => sites.current(),
      storage,
      this.config,
      this.logger.child("dispatch"),
      Date.now(), // leases start now, after the replay and the sweep
      runner,
      systemClock,
      nc,
    );
    this.dispatcher = dispatcher;
    if (term) dispatcher.leading = () => term.holds();
    archive.onRetired = (taskId) => dispatcher.forget(taskId);
    const control = new AgentControl(c, storage, dispatcher, jsm, this.logger.child("agents"), sites);
    const apiLogger = this.logger.child("api");
    const api = new Api({
      c,
      storage,
      archive,
      logger: apiLogger,
      world: () => dispatcher.world(),
      effects: dispatcher.effects,
      clock: systemClock,
      // the server's limit as it told this connection (1 MiB unless configured otherwise)
      maxPayload: () => apiNc.info?.max_payload ?? 1024 * 1024,
      limits: limiter,
      sites,
    });
    const ingest = new ResultIngest(c, storage, dispatcher, this.logger.child("results"));
    this.ingest = ingest;

    // Attempts dispatched before a crash may never have reached JetStream: publish them again
    // (the msgID drops the duplicates that did).
    for (const e of state.engines.values()) {
      for (const j of e.activeJobs())
        if (j.state === "dispatched") await dispatcher.publish(e.taskId, j.jobId, j.attempt);
      // Stop decisions are state re-derived by the replay: tell the agents again.
      for (const stop of stopEffects(e)) await dispatcher.effects.run(stop);
    }

    // Callbacks, not the subscriptions' async iterators: a few microtask hops less per message.
    const serve = (subject: string, fn: (m: import("@nats-io/transport-node").Msg) => Promise<void>) => {
      const sub = apiNc.subscribe(subject, {
        queue: STEERING_QUEUE,
        callback: (err, m) => {
          if (err) return this.logger.error("subscription failed", { subject, error: String(err) });
          if (term && !term.holds()) return this.notLeading(m.subject);
          fn(term ? repliesWhileLeading(m, term, () => this.notLeading(m.subject)) : m).catch((e: unknown) =>
            this.logger.error("handler failed", { subject: m.subject, error: String(e) }),
          );
        },
      });
      this.subs.push(sub);
      this.background.push(sub.closed.then(() => undefined));
    };
    serve(subjects.heartbeatAll, (m) => control.handle(m));
    serve(subjects.apiAll, (m) => api.handle(m));

    const consumer = await js.consumers.get(STREAM_RESULTS, STEERING_RESULTS_CONSUMER);
    // A pull that expires every 5 s (idle heartbeats every 2.5 s) rather than nats.js's 30 s: after
    // the server or the consumer's leader went away (a cluster election), a lost pull is noticed
    // and sent again within seconds, not after two missed 15 s heartbeats, which outlast a lease.
    const messages = await consumer.consume({
      max_messages: 256,
      expires: 5_000,
      callback: (m) => ingest.receive(m),
    });
    this.stopResults = () => messages.close().then(() => undefined);
    this.background.push(messages.closed().then(() => ingest.idle()));

    const leaseTick = Math.max(250, Math.floor(this.config.leaseMs / 4));
    this.timers.push(
      setInterval(() => {
        // a policy change (admin set-site) reaches the dispatcher within a tick
        sites.refresh().catch(() => undefined);
        dispatcher
          .expireLeases()
          .catch((e: unknown) => this.logger.error("lease check failed", { error: String(e) }));
      }, leaseTick),
      // Retirements that failed (the index was unavailable) are tried again.
      setInterval(() => {
        archive
          .sweep()
          .catch((e: unknown) => this.logger.error("retiring tasks failed", { error: String(e) }));
      }, RETIRE_SWEEP_MS),
    );
    // Abandoned multipart uploads of dataset files are aborted once idle past their age.
    this.stopUploadSweep = new UploadSweep({
      storage,
      run: (d, effects) => c.run(d, effects),
      world: () => dispatcher.world(),
      effects: dispatcher.effects,
      clock: systemClock,
      maxAgeMs: this.config.datasetUploadMaxAgeMs,
      logger: this.logger.child("uploads"),
    }).start();
    this.state = "running";
    dispatcher.kick();
    this.logger.info("steering running", { nats: this.config.natsUrl, s3: this.config.s3.endpoint });
  }

  /** A request this process took but may not answer: it no longer holds the lease. */
  private notLeading(subject: string): void {
    this.logger.warn("request not answered: this process no longer leads", { subject });
  }

  private async ensureStreams(jsm: JetStreamManager): Promise<void> {
    // created with the configured replicas, or scaled to them (streams.ts)
    const add = (_name: string, cfg: StreamSpec) =>
      ensureStream(jsm, cfg, this.logger, natsRetryBound(this.config));
    const replicas = this.config.replicas;
    await add(STREAM_JOBS, {
      name: STREAM_JOBS,
      subjects: [subjects.jobsAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      duplicate_window: 120_000_000_000,
    });
    await add(STREAM_RESULTS, {
      name: STREAM_RESULTS,
      subjects: [subjects.resultsAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      max_msg_size: 1024 * 1024,
    });
    await EventLog.ensureStream(jsm, replicas);
    await reconcileBucket(jsm, KV_STATE, replicas, this.logger);
    try {
      await jsm.consumers.info(STREAM_RESULTS, STEERING_RESULTS_CONSUMER);
    } catch {
      await jsm.consumers.add(STREAM_RESULTS, {
        durable_name: STEERING_RESULTS_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: 30_000_000_000,
        max_ack_pending: 1024,
      });
    }
  }

  /** Drains: stops taking requests, lets in-flight commits finish (up to graceMs), then closes. */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      this.state = "draining";
      for (const t of this.timers) clearInterval(t);
      this.stopUploadSweep?.();
      // steering iterations in flight are killed, not committed, and their containers removed
      const iterations = this.dispatcher?.close() ?? Promise.resolve();
      for (const s of this.subs) s.unsubscribe();
      await this.stopResults?.().catch(() => undefined);
      const c = this.committer;
      const drained = c ? c.serial(() => c.settled()) : Promise.resolve();
      const checkpointed = this.checkpointer?.close() ?? Promise.resolve();
      await settleWithin(drained, graceMs);
      await settleWithin(Promise.allSettled([...this.background, iterations, checkpointed]), graceMs);
      c?.flushNotifications();
      await this.apiNc?.close().catch(() => undefined);
      await this.nc?.close().catch(() => undefined);
      this.storage?.close();
      this.state = "stopped";
    })();
    return this.closing;
  }
}
