// `gridtune-steering serve`: a steering process that leads while it holds the lease
// (leadership.ts) and stands by otherwise. Each term is a fresh SteeringService, rebuilt from the
// event log when the lease is taken and closed when it is lost, so a deposed leader keeps no
// state of its own: whatever it knew is in the log, or was never durable and so never acted on.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { steeringIdentity } from "../../protocol/identity.ts";
import type { Logger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { systemClock, type Clock } from "./clock.ts";
import type { SteeringConfig } from "./config.ts";
import { LeaderElection, openLeaseBucket } from "./leadership.ts";
import { SteeringService } from "./service.ts";

export type StandbyRole = "idle" | "standby" | "leading" | "stopped";

export class StandbySteering {
  role: StandbyRole = "idle";
  service: SteeringService | null = null;
  /** Terms this process has led (a test reads it). */
  terms = 0;
  private nc: NatsConnection | null = null;
  private election: LeaderElection | null = null;
  /** Takeovers and step-downs run one after the other, in the order they happened. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: SteeringConfig,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
    readonly id = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
  ) {}

  async start(): Promise<void> {
    if (this.role !== "idle") throw new Error(`start() called in state ${this.role}`);
    this.role = "standby";
    // its own connection: the lease outlives every term's connections
    const nc = await connectNats({
      servers: this.config.natsUrl,
      seedFile: this.config.seedFile,
      caFile: this.config.caFile,
      certFile: this.config.certFile,
      keyFile: this.config.keyFile,
      identity: steeringIdentity(),
      nameSuffix: "leader",
      logger: (level, message) => this.logger[level](message),
    });
    this.nc = nc;
    const { kv, ttlMs } = await openLeaseBucket(nc, this.config.leaderTtlMs, this.config.replicas);
    const log = this.logger.child("leader");
    const election = new LeaderElection(kv, this.id, ttlMs, this.clock, log, {
      standingBy: (holder) =>
        log.info("standing by: another steering process leads", { holder, self: this.id, ttlMs }),
      elected: (previous) => this.then(() => this.takeOver(previous)),
      deposed: (reason) => {
        log.warn("stepping down: this process no longer leads", { reason, self: this.id });
        this.role = this.role === "stopped" ? "stopped" : "standby";
        this.then(() => this.endTerm());
      },
    });
    this.election = election;
    election.start();
  }

  private then(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn, fn);
  }

  private async takeOver(previous: string | null): Promise<void> {
    const election = this.election;
    if (!election || this.role === "stopped" || !election.holds()) return;
    const startedAt = this.clock.now();
    const service = new SteeringService(this.config, this.logger, {
      holds: () => election.holds(),
      fenced: (e) => election.depose(e.message),
    });
    this.service = service;
    try {
      await service.start();
    } catch (e) {
      this.logger.error("taking over failed; standing by again", { error: String(e) });
      election.depose(`start failed: ${String(e)}`);
      return;
    }
    if (!election.holds()) return; // deposed while starting: endTerm is queued behind
    this.role = "leading";
    this.terms++;
    this.logger.child("leader").info("took over as the steering leader", {
      self: this.id,
      previousHolder: previous ?? "(none)",
      rebuildMs: this.clock.now() - startedAt,
    });
  }

  /** Drops the term's service at once: its subscriptions, dispatcher, consumer and state. */
  private async endTerm(): Promise<void> {
    const s = this.service;
    this.service = null;
    if (s) await s.close(0);
  }

  async close(): Promise<void> {
    if (this.role === "stopped") return;
    this.role = "stopped";
    await this.chain;
    const s = this.service;
    this.service = null;
    // the service drains first (its commits finish under the lease), then the lease goes
    await s?.close();
    await this.election?.stop();
    await this.nc?.close().catch(() => undefined);
  }
}
