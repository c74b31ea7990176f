// The client API (gt.api.<user>.<verb>, core request/reply). The user is token 2 of the subject,
// which the server's permissions bind to the caller's identity; the payload never names the user.
// A user sees and controls only their own tasks: another user's task is reported as not found.
// Every request is answered, in the requester's own inbox only (replyGuard.ts: anything else is
// dropped unread), and no reply exceeds the connection's max_payload: replies that grow with a
// task or a user's tasks (show, download, list) come a page at a time.
import { randomBytes, randomInt } from "node:crypto";
import type { Msg } from "@nats-io/transport-node";
import { GridtuneError, toWireError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import { type ArtifactKind } from "../../../protocol/messages.ts";
import {
  ApiRequest,
  RUNG_VALUES_SHOWN,
  type ApiReply,
  type DownloadItem,
  type TaskSummary,
  type MissingItem,
  type SteeringIterationView,
} from "../../../protocol/api.ts";
import { parseApiSubject } from "../../../protocol/subjects.ts";
import { checkTaskSpec } from "../../../protocol/taskConfig.ts";
import { compileTask } from "../../core/task/compiledTask.ts";
import type { AgentRegistry } from "../../core/agentRegistry.ts";
import type { Committer } from "../committer.ts";
import type { Dispatcher } from "../dispatcher.ts";
import { view as steeringView } from "../../core/task/steeringIterations.ts";
import type { PointRec, TaskEngine } from "../../core/task/taskEngine.ts";
import type { TenantLimiter } from "../limits.ts";
import type { TaskArchive } from "../taskArchive.ts";
import { replyAllowed } from "../replyGuard.ts";
import { checkSubmitSites, type SitePolicy } from "../../security/sitePolicy.ts";
import { keys, type Storage } from "../storage.ts";
import { checkTrainingData } from "../../core/trainingData.ts";
import { assertReadable, Datasets } from "../datasets.ts";
import { detail, FRAMING_BYTES, jsonBytes, listPage, PAGE_BYTES, summarize } from "../../core/views.ts";

export class Api {
  private readonly datasets: Datasets;

  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    private readonly dispatcher: Dispatcher,
    private readonly stopAttempts: (e: TaskEngine, reason: "killed") => void,
    private readonly logger: Logger,
    /** The connection's max_payload (nc.info.max_payload): no reply may be larger. */
    private readonly maxPayload: () => number,
    private readonly limiter: TenantLimiter,
    private readonly archive: TaskArchive,
    /** Live agents, for the submit reply's warning about a site nobody serves now. */
    private readonly registry: Pick<AgentRegistry, "capacityBySite">,
    /** The site policy (sites.json), re-read when it changed. */
    private readonly sites: { refresh(): Promise<SitePolicy> },
  ) {
    this.datasets = new Datasets(storage, limiter, () => this.pageBytes());
  }

  async handle(msg: Msg): Promise<void> {
    const who = parseApiSubject(msg.subject);
    if (!who || !replyAllowed(msg, { role: "user", user: who.user }, this.logger)) return;
    let reply: ApiReply;
    let body: unknown;
    let req: ApiRequest | undefined;
    try {
      // Before the request is parsed: a flood of huge specs costs steering no parsing.
      if (who.verb === "submit")
        this.limiter.checkSpecBytes(who.user, await this.limiter.limitsOf(who.user), msg.data.length);
      try {
        body = msg.json();
      } catch {
        throw new GridtuneError("INVALID_ARGUMENT", "the request is not JSON");
      }
      const parsed = ApiRequest.safeParse(body);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new GridtuneError(
          "INVALID_ARGUMENT",
          `bad ${who.verb} request: ${i?.path.join(".") ?? ""} ${i?.message ?? ""}`.trim(),
        );
      }
      if (parsed.data.verb !== who.verb) {
        throw new GridtuneError(
          "INVALID_ARGUMENT",
          `the subject says ${who.verb} but the request says ${parsed.data.verb}`,
        );
      }
      req = parsed.data;
      reply = { ok: true, data: await this.run(who.user, parsed.data) };
    } catch (e) {
      reply = { ok: false, error: toWireError(e) };
      if (e instanceof GridtuneError) this.refused(who.user, who.verb, body, e);
      else this.logger.error("api request failed", { user: who.user, verb: who.verb, error: String(e) });
    }
    this.send(msg, who.user, who.verb, req, reply);
  }

  /**
   * Answers, always: a reply over the connection's max_payload would throw in respond() and
   * leave the client waiting for its timeout (and then saying steering is down), so it becomes
   * a TOO_LARGE error saying what to ask for instead; a respond() that fails anyway is logged
   * and answered with a short error if that can still go.
   */
  private send(msg: Msg, user: string, verb: string, req: ApiRequest | undefined, reply: ApiReply): void {
    let text = JSON.stringify(reply);
    const bytes = Buffer.byteLength(text);
    const max = this.maxPayload();
    if (bytes > max) {
      const e = new GridtuneError(
        "TOO_LARGE",
        `the reply to ${verb} would be ${bytes} bytes, over NATS's max_payload of ${max} bytes; ${tooLargeHint(req)}`,
        { retryable: false },
      );
      this.logger.warn("api reply too large", { user, verb, bytes, maxPayload: max });
      text = JSON.stringify({ ok: false, error: e.toWire() } satisfies ApiReply);
    }
    try {
      msg.respond(text);
    } catch (e) {
      this.logger.error("api reply not sent", { user, verb, bytes, error: String(e) });
      const error = new GridtuneError(
        "INTERNAL",
        `steering could not send its reply to ${verb}: ${String(e)}`,
      );
      try {
        msg.respond(JSON.stringify({ ok: false, error: error.toWire() } satisfies ApiReply));
      } catch {
        // the connection itself is gone: the client's timeout is all that is left
      }
    }
  }

  /** A page's byte budget: PAGE_BYTES, or half of a smaller max_payload. */
  private pageBytes(): number {
    return Math.min(PAGE_BYTES, Math.floor(this.maxPayload() / 2));
  }

  /** Every refusal is logged; a task that exists but is another user's names its owner. */
  private refused(user: string, verb: string, body: unknown, e: GridtuneError): void {
    const raw = (body as { taskId?: unknown } | null | undefined)?.taskId;
    const taskId = typeof raw === "string" ? raw : undefined;
    const owner = taskId === undefined ? undefined : this.c.state.ownerOf(taskId);
    this.logger.warn("api request refused", {
      user,
      verb,
      code: e.code,
      ...(taskId !== undefined ? { taskId } : {}),
      ...(owner !== undefined && owner !== user ? { owner } : {}),
      error: e.message,
    });
  }

  /** The user's task: its engine when in memory, else the summary of the retired task. */
  private own(user: string, taskId: string): { engine: TaskEngine } | { retired: TaskSummary } {
    const e = this.c.state.engines.get(taskId);
    if (e?.user === user) return { engine: e };
    const retired = this.c.state.finished.get(taskId);
    if (retired?.user === user) return { retired };
    throw new GridtuneError("NOT_FOUND", `task ${taskId} does not exist (or is not yours); see phpo list`);
  }

  /** The user's task's engine, a retired one loaded from its log (cached). */
  private async engineOf(user: string, taskId: string): Promise<TaskEngine> {
    const t = this.own(user, taskId);
    return "engine" in t ? t.engine : this.archive.load(taskId);
  }

  private async run(user: string, req: ApiRequest): Promise<unknown> {
    switch (req.verb) {
      case "submit": {
        // the spec was parsed with the request (ApiRequest); checked across fields and compiled
        // once here: the engine, the log and every job use this
        const task = compileTask(checkTaskSpec(req.spec));
        const spec = task.spec;
        const limits = await this.limiter.limitsOf(user);
        this.limiter.checkMaxPoints(user, limits, spec.maxPoints * (spec.segments?.length ?? 1));
        this.limiter.checkRate(user, limits);
        // One object directly under the user's prefix: no "..", no sub-path (URL clients
        // normalise dot segments, so "uploads/<user>/../<other>/x" would reach another upload).
        const upload = spec.sandboxKey?.startsWith(`uploads/${user}/`)
          ? spec.sandboxKey.slice(`uploads/${user}/`.length)
          : undefined;
        if (spec.sandboxKey !== undefined && !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(upload ?? "")) {
          throw new GridtuneError("FORBIDDEN", `sandboxKey must be an upload of yours (uploads/${user}/…)`);
        }
        // Only sites that accept the user (sites.json); the dispatcher checks again at each pump.
        const live = new Set(this.registry.capacityBySite(Date.now()).keys());
        const warnings = checkSubmitSites(await this.sites.refresh(), user, spec.site, live);
        if (spec.trainingDS !== undefined) {
          // Another user's private dataset: refused before its listing says anything about it.
          assertReadable(user, spec.trainingDS, "--trainingDS");
          const prefix = keys.dataset(spec.trainingDS);
          const files = (await this.storage.list(prefix)).map((o) => o.key.slice(prefix.length));
          checkTrainingData(spec, files);
        }
        const seed = spec.sampler?.seed ?? randomInt(0, 2 ** 31 - 1);
        const taskId = await this.c.serial(async () => {
          // Again in the queue: submissions in flight together cannot all take the last place.
          this.limiter.checkRate(user, limits);
          this.limiter.checkActive(user, limits, this.c.state.activeTasksOf(user));
          const id = String(this.c.state.maxTaskId + 1);
          await this.c.commit({ type: "task-created", taskId: id, at: Date.now(), user, task, seed });
          this.limiter.accepted(user);
          return id;
        });
        this.logger.info("task submitted", { user, taskId, outDS: spec.outDS });
        this.dispatcher.kick();
        return warnings.length > 0 ? { taskId, warnings } : { taskId };
      }
      case "list":
        return listPage(
          [...this.c.state.engines.values(), ...this.c.state.finished.values()],
          user,
          req.from,
          this.pageBytes(),
        );
      case "show":
        return detail(
          await this.engineOf(user, req.taskId),
          req.pointsFrom,
          req.pointsLimit,
          RUNG_VALUES_SHOWN,
          this.pageBytes(),
        );
      case "kill":
      case "pause":
      case "resume": {
        const t = this.own(user, req.taskId);
        // A retired task is killed or finished: a kill changes nothing, pause and resume cannot.
        if ("retired" in t) return endedOnly(t.retired, req.verb);
        const e = t.engine;
        const target = req.verb === "kill" ? "killed" : req.verb === "pause" ? "paused" : "running";
        await this.c.serial(async () => {
          if (e.state === "killed" || e.state === "finished") {
            if (req.verb !== "kill")
              throw new GridtuneError(
                "CONFLICT",
                `task ${e.taskId} is ${e.state}; it cannot be ${req.verb}d${cannotHint(e, req.verb)}`,
              );
            return;
          }
          if (e.state !== target)
            await this.c.commit({ type: "task-state", taskId: e.taskId, at: Date.now(), state: target });
        });
        if (target === "killed") this.stopAttempts(e, "killed");
        this.dispatcher.kick();
        return summarize(e);
      }
      case "retry": {
        const r = await this.c.serial(async () => {
          // In the commit queue: a kill queued ahead of this retry has been applied by now.
          const t = this.own(user, req.taskId);
          const retired = "retired" in t;
          if (retired && t.retired.state === "killed")
            throw new GridtuneError("CONFLICT", `task ${req.taskId} was killed; submit it again`);
          // A retired task is read back from its log; it comes back to memory only if it changes.
          const e = retired ? await this.archive.fresh(req.taskId) : t.engine;
          if (e.state === "killed")
            throw new GridtuneError("CONFLICT", `task ${e.taskId} was killed; submit it again`);
          const ids = [...e.points.values()]
            .filter(
              (p) =>
                p.state === "failed" ||
                (!req.failedOnly && (p.state === "cancelled" || p.state === "budget-spent")),
            )
            .map((p) => p.pointId);
          const short = e.requeueShortfall(ids);
          if (short.length > 0) throw budgetUsedUp(e, short, req.failedOnly);
          if (ids.length === 0) return { engine: e, requeued: 0 };
          if (retired) await this.archive.reactivate(e);
          const ev = { type: "points-requeued", taskId: e.taskId, at: Date.now(), pointIds: ids } as const;
          return { engine: (await this.c.commit(ev)) ?? e, requeued: ids.length };
        });
        this.dispatcher.kick();
        return { task: summarize(r.engine), requeued: r.requeued };
      }
      case "upload": {
        const key = keys.upload(user, randomBytes(12).toString("hex"));
        return { key, url: await this.storage.presignPut(key, req.size) };
      }
      case "download":
        return this.download(await this.engineOf(user, req.taskId), req);
      case "steering-log":
        return this.steeringLog(await this.engineOf(user, req.taskId), req.iteration);
      case "datasetPut":
        return this.datasets.put(user, req);
      case "datasetParts":
        return this.datasets.parts(user, req);
      case "datasetCommit":
        return this.datasets.commit(user, req);
      case "datasetList":
        return this.datasets.list(user, req);
      case "datasetShow":
        return this.datasets.show(user, req);
      case "datasetGet":
        return this.datasets.get(user, req);
      case "datasetRemove":
        return this.datasets.remove(user, req.name);
    }
  }

  /**
   * Presigned GETs of the task's artifacts, point by point: one page from `from` (at most `limit`
   * points, at most a page's bytes, never split within a point), or everything without `from`.
   */
  private async download(
    e: TaskEngine,
    req: Extract<ApiRequest, { verb: "download" }>,
  ): Promise<{ items: DownloadItem[]; missing: MissingItem[]; next: number | null }> {
    const points = [...e.points.values()].sort((a, b) => a.pointId - b.pointId);
    const missing: MissingItem[] = [];
    const paged = req.from !== undefined || req.limit !== undefined;
    const budget = paged ? this.pageBytes() - FRAMING_BYTES : Number.POSITIVE_INFINITY;
    const limit = req.limit ?? Number.POSITIVE_INFINITY;
    const items: DownloadItem[] = [];
    let bytes = 0;
    let taken = 0;
    let i = req.from ?? 0;
    for (; i < points.length && taken < limit; i++) {
      const p = points[i]!;
      const mine = await this.downloadItems(e, p, req.kinds);
      const gaps = p.missing
        .filter((m) => req.kinds.includes(m.kind))
        .map(({ attempt, kind, reason, pending }) => ({
          pointId: p.pointId,
          attempt,
          kind,
          reason,
          pending,
        }));
      bytes += jsonBytes(mine) + jsonBytes(gaps);
      // at least one point per page, so a page always moves on
      if (bytes > budget && taken > 0) break;
      items.push(...mine);
      missing.push(...gaps);
      taken++;
    }
    return { items, missing, next: i < points.length ? i : null };
  }

  /** The task's steering iterations and a presigned GET of one's output (default: the last). */
  private async steeringLog(
    e: TaskEngine,
    iteration: number | undefined,
  ): Promise<{
    iterations: SteeringIterationView[];
    log: { iteration: number; name: string; url: string } | null;
  }> {
    if (e.spec.steeringExec === undefined)
      throw new GridtuneError(
        "NOT_FOUND",
        `task ${e.taskId} has no steering program (no steeringExec); phpo logs ${e.taskId} POINT prints an evaluation's log`,
      );
    const all = e.steering.list;
    const iterations = all.map(steeringView);
    const it = iteration === undefined ? all.at(-1) : all[iteration - 1];
    if (iteration !== undefined && it === undefined)
      throw new GridtuneError(
        "NOT_FOUND",
        `task ${e.taskId} has no steering iteration ${iteration} (it has ${all.length}${all.length > 0 ? `: 1–${all.length}` : ""})`,
      );
    if (!it?.logKey) return { iterations, log: null };
    const seg = it.segment === null ? "" : `${it.segment}.`;
    return {
      iterations,
      log: {
        iteration: it.iteration,
        name: `${seg}${e.spec.outDS.replace(/\/$/, "")}.${e.taskId}.steering.${String(it.iteration).padStart(4, "0")}.log.txt`,
        url: await this.storage.presignGet(it.logKey),
      },
    };
  }

  private async downloadItems(
    e: TaskEngine,
    p: PointRec,
    kinds: readonly ArtifactKind[],
  ): Promise<DownloadItem[]> {
    const keysOf: Partial<Record<ArtifactKind, string[]>> = {
      metrics: p.metricsKeys,
      log: p.logKeys,
      checkpoint: p.checkpointKey ? [p.checkpointKey] : [],
    };
    const items: DownloadItem[] = [];
    for (const kind of kinds) {
      for (const key of keysOf[kind] ?? []) {
        const [, job, att] = /-j([0-9]+)\/a([0-9]+)\//.exec(key) ?? [];
        const attempt = Number(att ?? 0);
        items.push({
          pointId: p.pointId,
          job: Number(job ?? 1),
          attempt,
          kind,
          name: downloadName(e, p.pointId, p.segment, Number(job ?? 1), attempt, kind),
          url: await this.storage.presignGet(key),
        });
      }
    }
    return items;
  }
}

/** What to ask for instead of a reply too large to send. */
function tooLargeHint(req: ApiRequest | undefined): string {
  switch (req?.verb) {
    case "show":
      return "ask for fewer points at a time (pointsFrom/pointsLimit), as phpo show does";
    case "list":
      return req.from === undefined
        ? "ask a page at a time (from, then the reply's next): update phpo, which does"
        : "report this: a page of tasks is meant to stay far below it";
    case "download":
      return req.from === undefined && req.limit === undefined
        ? "ask a page at a time (from/limit, then the reply's next): update phpo, which does"
        : "ask for fewer points per page (limit) or fewer kinds at a time (phpo download --metrics, then --logs)";
    default:
      return "report this: steering's replies are meant to stay below it";
  }
}

/** kill, pause or resume of a retired (killed or finished) task, as for one in memory. */
function endedOnly(s: TaskSummary, verb: "kill" | "pause" | "resume"): TaskSummary {
  if (verb === "kill") return s;
  throw new GridtuneError(
    "CONFLICT",
    `task ${s.taskId} is ${s.state}; it cannot be ${verb}d${cannotHint(s, verb)}`,
  );
}

/** The fix named where a finished or killed task cannot be paused or resumed. */
function cannotHint(e: Pick<TaskSummary, "state" | "taskId">, verb: string): string {
  if (verb !== "resume") return "";
  return e.state === "finished"
    ? `: phpo retry ${e.taskId} requeues its failed points, or submit the task again`
    : ": submit it again";
}

/** A retry refused because maxEvaluationJobs cannot run the points again (budgets are per segment). */
function budgetUsedUp(
  e: TaskEngine,
  short: ReturnType<TaskEngine["requeueShortfall"]>,
  failedOnly: boolean,
): GridtuneError {
  const what = failedOnly ? "failed" : "failed or cancelled";
  const segmented = e.segmentName(0) !== null;
  const parts = short.map((s) => {
    const where = segmented ? `segment ${e.segmentName(s.segment)}: ` : "";
    const queued = s.queued > 0 ? ` and ${s.queued} point${s.queued === 1 ? "" : "s"} already queued` : "";
    return `${where}${s.used}/${s.limit} jobs used${queued}, ${s.points} ${what} point${s.points === 1 ? "" : "s"} to run again`;
  });
  return new GridtuneError(
    "CONFLICT",
    `task ${e.taskId} has no maxEvaluationJobs left for its ${what} points ` +
      `(maxEvaluationJobs ${short[0]!.limit}${segmented ? " per segment" : ""}; ${parts.join("; ")}); ` +
      `nothing was requeued, the points keep their errors. ` +
      `Submit the task again with a larger --maxEvaluationJobs to run them.`,
  );
}

/**
 * PanDA naming: `<taskId>.metrics.<serial>.tgz`, segment name prepended for segmented tasks. The
 * serial is the point, the job when a point has several (ASHA promotions), and the attempt.
 */
function downloadName(
  e: TaskEngine,
  pointId: number,
  segment: number,
  job: number,
  attempt: number,
  kind: string,
): string {
  const seg = e.segmentName(segment);
  const serial = `${String(pointId).padStart(6, "0")}${job > 1 ? `_j${job}` : ""}_a${attempt}`;
  const base =
    kind === "metrics"
      ? `${e.taskId}.metrics.${serial}.tgz`
      : kind === "log"
        ? `${e.spec.outDS.replace(/\/$/, "")}.${e.taskId}.${serial}.log.txt`
        : `${e.taskId}.checkpoint.${serial}.tgz`;
  return seg ? `${seg}.${base}` : base;
}
