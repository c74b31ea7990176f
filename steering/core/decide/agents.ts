// The agent control rules (gt.hb.<site>.<agent>): registration with the protocol-version and
// runtime checks, heartbeats that renew leases and name stale attempts, claims (the lease check
// before a job runs), upload grants and the agent's goodbye. Pure: the shell (shell/channels/
// agentControl.ts) parses the request, reads the site's policy, and turns a reply that says what
// to presign into URLs. The site and agent come from the subject, which the server's permissions
// bind to the identity. The registry (soft state) changes only through effects, so a decision
// changes nothing until its events are durable.
import { GridtuneError, type ErrorCode, type WireError } from "../../../protocol/errors.ts";
import type { AgentReply, AgentRequest, ArtifactKind, RunningAttempt } from "../../../protocol/messages.ts";
import { taskIdOfJob } from "../../../protocol/names.ts";
import { PROTOCOL_VERSION } from "../../../protocol/version.ts";
import type { Decision } from "../decision.ts";
import type { Effect } from "../effects.ts";
import type { LogEventOf } from "../events.ts";
import type { JobRec } from "../task/records.ts";
import type { TaskEngine } from "../task/taskEngine.ts";
import type { World } from "../world.ts";

type RequestOf<T extends AgentRequest["type"]> = Extract<AgentRequest, { type: T }>;

/** Who sent the request: from its subject, never from its body. */
interface From {
  readonly site: string;
  readonly agent: string;
}

export type AgentRegisterCommand = From & {
  readonly type: "agent-register";
  readonly request: RequestOf<"register">;
  /** The runtimes the site's policy offers (read by the shell just before), null: no policy. */
  readonly siteRuntimes: readonly ("docker" | "process")[] | null;
};
export type AgentHeartbeatCommand = From & {
  readonly type: "agent-heartbeat";
  readonly request: RequestOf<"heartbeat">;
};
export type AgentClaimCommand = From & { readonly type: "agent-claim"; readonly request: RequestOf<"claim"> };
export type AgentPresignCommand = From & {
  readonly type: "agent-presign";
  readonly request: RequestOf<"presign">;
};
export type AgentByeCommand = From & { readonly type: "agent-bye"; readonly request: RequestOf<"bye"> };

export type AgentCommand =
  AgentRegisterCommand | AgentHeartbeatCommand | AgentClaimCommand | AgentPresignCommand | AgentByeCommand;

/** A refused request, as the agent gets it. */
export type Refusal = Extract<AgentReply, { type: "error" }>;
export type Registered = Extract<AgentReply, { type: "registered" }>;
export type Acked = Extract<AgentReply, { type: "ack" }>;

/** A granted claim: what the shell presigns for it (S3 is I/O; the keys are the engine's). */
export interface ClaimToGrant {
  readonly type: "grant";
  readonly taskId: string;
  readonly pointId: number;
  readonly sandboxKey: string | null;
  readonly checkpointKey: string | null;
  /** The task's training dataset: the shell lists the point's files in it (the job's own listing). */
  readonly trainingDS: string | null;
}

/** Granted uploads: the shell names each artifact's key (shell/storage.ts keys) and presigns a PUT. */
export interface UploadsToPresign {
  readonly type: "uploads";
  readonly taskId: string;
  readonly pointId: number;
  readonly jobId: string;
  readonly attempt: number;
  readonly artifacts: ReadonlyArray<{ readonly kind: ArtifactKind; readonly size: number }>;
}

export interface AgentReplies {
  "agent-register": Registered | Refusal;
  "agent-heartbeat": Acked | Refusal;
  "agent-claim": ClaimToGrant | Refusal;
  "agent-presign": UploadsToPresign | Refusal;
  "agent-bye": Acked;
}

/** Any upload but a checkpoint (whose limit is the task's checkPointLimitMB): S3's single-PUT limit. */
export const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;

export function refusal(code: ErrorCode, message: string): Refusal {
  const error: WireError = new GridtuneError(code, message).toWire();
  return { type: "error", error };
}

/** What a heartbeat does with one attempt the agent says it runs. */
export interface LeaseVerdict {
  /** Renew the attempt's lease from now. */
  renew: boolean;
  /** Name it in the reply's `stale`: the agent stops it (and sends no result). */
  stale: boolean;
}

/**
 * The heartbeat's decision for one running attempt of agent site/agent. `e` is the attempt's task
 * engine; `diverged` says it ran ahead of the log and waits for a rebuild.
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
 * Whether agent site/agent may run this attempt. `stage`: the grant logs a job-claimed. A claim of
 * an attempt already running on this very agent is granted again (idempotent): the agent's request
 * may have timed out after the grant, or the agent restarted and got the job again. A second JOBS
 * message for an attempt the agent already runs or claims (a republish past the 120 s msgID
 * window, a redelivery after a lost ack) is dropped by the agent itself.
 */
export function judgeClaim(e: TaskEngine, r: RunningAttempt, site: string, agent: string): ClaimVerdict {
  const f = e.fence(r.jobId, r.attempt, site, agent);
  if (!f.ok) return f;
  if (e.state === "killed") return { ok: false, reason: `task ${e.taskId} was killed` };
  return { ok: true, job: f.job, stage: f.job.state === "dispatched" };
}

function engineOf(w: World, jobId: string): TaskEngine | undefined {
  const t = taskIdOfJob(jobId);
  return t === null ? undefined : w.tasks.engines.get(t);
}

const only = <R>(reply: R, effects: Effect[] = []): Decision<R> => ({ events: [], effects, reply });

/**
 * An agent registers only when it speaks this steering's protocol, and only with a runtime its site
 * offers: the process runtime runs payloads unconfined on the host, so only a site whose policy
 * offers it (and so names its trusted users) may have process agents. Its site's JOBS consumer is
 * made before the agent joins the registry, so the first pump's jobs have somewhere to go.
 */
export function decideRegister(
  w: World,
  c: AgentRegisterCommand,
  now: number,
): Decision<AgentReplies["agent-register"]> {
  const { site, agent, request: req } = c;
  if (req.v !== PROTOCOL_VERSION)
    return only(
      refusal(
        "PROTOCOL_MISMATCH",
        `agent ${site}/${agent} speaks protocol ${req.v}, steering speaks ${PROTOCOL_VERSION}; install matching gridtune versions`,
      ),
    );
  const effects: Effect[] = [];
  if (c.siteRuntimes === null) {
    effects.push({
      type: "log",
      level: "warn",
      message: "agent registered for a site without a policy: no user's work goes there",
      fields: { site, agent },
    });
    if (req.runtime === "process")
      return only(
        refusal(
          "FORBIDDEN",
          `agent ${site}/${agent} uses the process runtime, but site ${site} has no policy; the operator sets one with ` +
            `gridtune-steering admin set-site ${site} --runtimes process --users <trusted users>`,
        ),
        effects,
      );
  } else if (!c.siteRuntimes.includes(req.runtime))
    return only(
      refusal(
        "FORBIDDEN",
        `agent ${site}/${agent} uses the ${req.runtime} runtime, which site ${site} does not offer (runtimes: ${c.siteRuntimes.join(", ")}); ` +
          `run the agent with --runtime ${c.siteRuntimes[0] ?? "docker"}, or the operator allows it with gridtune-steering admin set-site ${site} --runtimes …`,
      ),
    );
  effects.push(
    { type: "ensure-site-consumer", site },
    { type: "register-agent", site, agent, slots: req.slots, gpus: req.gpus, runtime: req.runtime, at: now },
    {
      type: "log",
      level: "info",
      message: "agent registered",
      fields: { site, agent, slots: req.slots, gpus: req.gpus.length, runtime: req.runtime },
    },
    { type: "kick" },
  );
  return only({ type: "registered", leaseMs: w.rules.leaseMs, heartbeatMs: w.rules.heartbeatMs }, effects);
}

/**
 * Leases are renewed before the registration check: after a steering restart the registry is
 * empty and the first heartbeat of every agent is refused until it registers again, while the log
 * still knows which attempts run on it. The site and agent come from the subject (the identity),
 * and the fence checks each attempt against the log, so an agent renews only its own attempts,
 * registered or not.
 */
export function decideHeartbeat(
  w: World,
  c: AgentHeartbeatCommand,
  now: number,
): Decision<AgentReplies["agent-heartbeat"]> {
  const { site, agent, request: req } = c;
  const effects: Effect[] = [];
  const stale: RunningAttempt[] = [];
  for (const r of req.running) {
    const taskId = taskIdOfJob(r.jobId);
    const diverged = taskId !== null && w.diverged.has(taskId);
    const v = judgeRunning(engineOf(w, r.jobId), diverged, r, site, agent);
    if (v.renew) effects.push({ type: "renew-lease", jobId: r.jobId, attempt: r.attempt, at: now });
    if (v.stale) stale.push(r);
  }
  if (!w.agents.get(site, agent))
    return only(
      refusal("UNAUTHENTICATED", `agent ${site}/${agent} is not registered; register again`),
      effects,
    );
  effects.push({
    type: "agent-seen",
    site,
    agent,
    freeSlots: req.freeSlots,
    draining: req.draining,
    at: now,
  });
  if (req.freeSlots > 0) effects.push({ type: "kick" });
  return only({ type: "ack", stale }, effects);
}

/**
 * A claim is judged on the log, never on an engine that ran ahead of it (the agent retries). The
 * first claim of a dispatched attempt logs its job-claimed; the grant goes out once that is stored.
 */
export function decideClaim(
  w: World,
  c: AgentClaimCommand,
  now: number,
): Decision<AgentReplies["agent-claim"]> {
  const { site, agent, request: req } = c;
  const taskId = taskIdOfJob(req.jobId);
  if (taskId !== null && w.diverged.has(taskId))
    return only(refusal("UNAVAILABLE", `task ${taskId} is being rebuilt from its log; try again`));
  const e = engineOf(w, req.jobId);
  const v = e ? judgeClaim(e, req, site, agent) : null;
  const p = e?.pointOfJob(req.jobId);
  if (!e || !v?.ok || !p) {
    const reason = v && !v.ok ? v.reason : `unknown job ${req.jobId}`;
    const fields = { site, agent, jobId: req.jobId, attempt: req.attempt, reason };
    return only(refusal("STALE_ATTEMPT", reason), [
      { type: "log", level: "warn", message: "claim refused", fields },
    ]);
  }
  const claimed: LogEventOf<"job-claimed"> = {
    type: "job-claimed",
    taskId: e.taskId,
    at: now,
    jobId: req.jobId,
    attempt: req.attempt,
    site,
    agent,
  };
  return {
    events: v.stage ? [claimed] : [],
    effects: [{ type: "renew-lease", jobId: req.jobId, attempt: req.attempt, at: now }],
    reply: {
      type: "grant",
      taskId: e.taskId,
      pointId: p.pointId,
      sandboxKey: e.spec.sandboxKey ?? null,
      checkpointKey: p.checkpointKey,
      trainingDS: e.spec.trainingDS ?? null,
    },
  };
}

/**
 * Upload URLs for exactly these artifacts of this attempt: while it runs on this agent, or, once it
 * ended, for the artifacts its result listed as missing (uploaded late by the agent that ran it).
 * Each artifact is held to its size limit here, before anything is presigned.
 */
export function decidePresign(
  w: World,
  c: AgentPresignCommand,
  _now: number,
): Decision<AgentReplies["agent-presign"]> {
  const { site, agent, request: req } = c;
  const e = engineOf(w, req.jobId);
  if (!e) return only(refusal("STALE_ATTEMPT", `${req.jobId} is not running`));
  const f = e.fence(req.jobId, req.attempt, site, agent);
  let pointId: number;
  if (f.ok && f.job.state === "running") pointId = f.job.pointId;
  else {
    const late = req.artifacts.map((a) => e.lateFence(req.jobId, req.attempt, a.kind, site, agent));
    const refused = late.find((l) => !l.ok);
    if (refused && !refused.ok) return only(refusal("STALE_ATTEMPT", refused.reason));
    const first = late[0];
    if (!first?.ok) return only(refusal("STALE_ATTEMPT", f.ok ? `${req.jobId} is not running` : f.reason));
    pointId = first.point.pointId;
  }
  for (const a of req.artifacts) {
    const limit = a.kind === "checkpoint" ? e.task.evaluation.checkPointLimitBytes : MAX_UPLOAD_BYTES;
    if (a.size > limit)
      return only(refusal("TOO_LARGE", `${a.kind} of ${a.size} bytes exceeds the limit of ${limit}`));
  }
  return only({
    type: "uploads",
    taskId: e.taskId,
    pointId,
    jobId: req.jobId,
    attempt: req.attempt,
    artifacts: req.artifacts.map((a) => ({ kind: a.kind, size: a.size })),
  });
}

/**
 * An agent leaving hands back the attempts it runs: each one the log says it runs is lost now (a
 * retry follows) rather than after its lease, and the agent leaves the registry. An attempt named
 * twice is lost once: the events are decided together, before any is folded. An attempt of a task
 * waiting for its rebuild is not judged on that engine (the shell rebuilds such tasks first; one
 * whose rebuild failed lapses with its lease once it is the log's again).
 */
export function decideBye(w: World, c: AgentByeCommand, now: number): Decision<AgentReplies["agent-bye"]> {
  const { site, agent, request: req } = c;
  const events: Array<LogEventOf<"job-lost">> = [];
  const effects: Effect[] = [];
  const seen = new Set<string>();
  const unjudged: RunningAttempt[] = [];
  for (const r of req.running) {
    const e = engineOf(w, r.jobId);
    const key = `${r.jobId}#${r.attempt}`;
    if (!e || seen.has(key)) continue;
    if (w.diverged.has(e.taskId)) {
      unjudged.push(r);
      continue;
    }
    if (!e.fence(r.jobId, r.attempt, site, agent).ok) continue;
    seen.add(key);
    const reason = `handed back by agent ${site}/${agent}`;
    events.push({ type: "job-lost", taskId: e.taskId, at: now, jobId: r.jobId, attempt: r.attempt, reason });
    // once logged, the attempt is no longer the log's running one
    effects.push({ type: "forget-lease", jobId: r.jobId, attempt: r.attempt });
  }
  if (unjudged.length > 0)
    effects.push({
      type: "log",
      level: "warn",
      message: "attempts handed back while their task is rebuilt: they lapse with their lease",
      fields: { site, agent, attempts: unjudged.map((r) => `${r.jobId}#${r.attempt}`).join(",") },
    });
  effects.push(
    { type: "remove-agent", site, agent },
    { type: "log", level: "info", message: "agent left", fields: { site, agent, handedBack: events.length } },
    { type: "kick" },
  );
  return { events, effects, reply: { type: "ack", stale: [] } };
}
