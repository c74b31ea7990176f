// The client API (gt.api.<user>.<verb>, core request/reply). The user is token 2 of the subject,
// which the server's permissions bind to the caller's identity; the payload never names the user.
// A user sees and controls only their own tasks: another user's task is reported as not found.
// Every request is answered, in the requester's own inbox only (replyGuard.ts: anything else is
// dropped unread), and no reply exceeds the connection's max_payload: replies that grow with a
// task or a user's tasks (show, download, list) come a page at a time. The verbs that change
// state are decided by core/decide/api.ts: this shell parses at the boundary, reads what the
// decision needs (limits, site policy, dataset listing, a seed), runs it through the committer
// and answers.
import { randomBytes, randomInt } from "node:crypto";
import type { Msg } from "@nats-io/transport-node";
import { GridtuneError, toWireError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../protocol/log.ts";
import {
  ApiRequest,
  RUNG_VALUES_SHOWN,
  type ApiReply,
  type TaskSummary,
} from "../../../protocol/messages.ts";
import { parseApiSubject } from "../../../protocol/subjects.ts";
import { parseTaskSpec } from "../../../protocol/taskConfig.ts";
import { admitSubmission, ownTask, type SubmitCommand, type TaskReply } from "../../core/decide/api.ts";
import { decide, type Command, type ReplyOf } from "../../core/decider.ts";
import { checkSpecBytes } from "../../core/limits.ts";
import type { TaskEngine } from "../../core/task/taskEngine.ts";
import { detail, listPage, PAGE_BYTES, summarize } from "../../core/views.ts";
import type { World } from "../../core/world.ts";
import type { SitePolicy } from "../../security/sitePolicy.ts";
import type { Clock } from "../clock.ts";
import type { Committer } from "../committer.ts";
import { assertReadable, Datasets } from "../datasets.ts";
import type { Effects } from "../effects.ts";
import type { TenantLimitsReader } from "../limits.ts";
import { replyAllowed } from "../replyGuard.ts";
import { Artifacts } from "./apiArtifacts.ts";
import { keys, type Storage } from "../storage.ts";
import type { TaskArchive } from "../taskArchive.ts";

/** What the API reads and runs; the rules of its verbs that change state are core/decide/api.ts. */
export interface ApiPorts {
  readonly c: Committer;
  readonly storage: Storage;
  readonly archive: TaskArchive;
  readonly logger: Logger;
  /** What the decider reads (the dispatcher's world: the tasks, the live agents). */
  readonly world: () => World;
  /** Runs the decisions' effects once their events are durable (kick, stop-attempts, log). */
  readonly effects: Effects;
  readonly clock: Clock;
  /** The connection's max_payload (nc.info.max_payload): no reply may be larger. */
  readonly maxPayload: () => number;
  /** A user's limits: steering's defaults with the limits file's overrides. */
  readonly limits: Pick<TenantLimitsReader, "limitsOf">;
  /** The site policy (sites.json), re-read when it changed. */
  readonly sites: { refresh(): Promise<SitePolicy> };
}

export class Api {
  private readonly datasets: Datasets;
  private readonly artifacts: Artifacts;
  private readonly c: Committer;
  private readonly logger: Logger;

  constructor(private readonly p: ApiPorts) {
    this.c = p.c;
    this.logger = p.logger;
    this.datasets = new Datasets(p.storage, p.limits, () => this.pageBytes(), p.logger);
    this.artifacts = new Artifacts(p.storage, () => this.pageBytes());
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
        checkSpecBytes(who.user, await this.p.limits.limitsOf(who.user), msg.data.length);
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
    const max = this.p.maxPayload();
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
    return Math.min(PAGE_BYTES, Math.floor(this.p.maxPayload() / 2));
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

  /** The user's task's engine, a retired one loaded from its log (cached). */
  private async engineOf(user: string, taskId: string): Promise<TaskEngine> {
    const t = ownTask(this.p.world(), user, taskId);
    return "engine" in t ? t.engine : this.p.archive.load(taskId);
  }

  /** Decides the command in the commit queue, on the state and the time there; effects once durable. */
  private decided<C extends Command>(command: C): Promise<ReplyOf<C>> {
    return this.c.run(() => decide(this.p.world(), command, this.p.clock.now()), this.p.effects);
  }

  private async run(user: string, req: ApiRequest): Promise<unknown> {
    switch (req.verb) {
      case "submit":
        return this.submit(user, req.spec);
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
      case "resume":
        // no await before the queue: commands arriving together are decided in their order
        return summaryOf(await this.decided({ type: req.verb, user, taskId: req.taskId }));
      case "retry": {
        const r = await this.c.run(async () => {
          // In the queue: a kill queued ahead of this retry has been applied by now.
          const retired = await this.retiredFold(user, req.taskId);
          const command = {
            type: "retry",
            user,
            taskId: req.taskId,
            failedOnly: req.failedOnly,
            retired,
          } as const;
          const d = decide(this.p.world(), command, this.p.clock.now());
          // A retired task comes back to memory only if it changes, its index entry removed
          // before the requeue is logged (taskArchive.ts).
          if (retired && d.events.length > 0) await this.p.archive.reactivate(retired);
          return d;
        }, this.p.effects);
        return { task: summarize(r.engine), requeued: r.requeued };
      }
      case "upload": {
        const key = keys.upload(user, randomBytes(12).toString("hex"));
        return { key, url: await this.p.storage.presignPut(key, req.size) };
      }
      case "download":
        return this.artifacts.download(await this.engineOf(user, req.taskId), req);
      case "steering-log":
        return this.artifacts.steeringLog(await this.engineOf(user, req.taskId), req.iteration);
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
   * The I/O a submission's decision needs, read first: the user's limits, the site policy, and the
   * trainingDS listing, which is read only once the submission is admitted (a refused flood costs
   * no listing). The decision checks everything again in the queue.
   */
  private async submit(user: string, input: unknown): Promise<{ taskId: string; warnings?: string[] }> {
    const spec = parseTaskSpec(input);
    const limits = await this.p.limits.limitsOf(user);
    const check = { user, spec, limits, policy: await this.p.sites.refresh() };
    admitSubmission(this.p.world(), check, this.p.clock.now());
    let trainingFiles: string[] | null = null;
    if (spec.trainingDS !== undefined) {
      // Another user's private dataset: refused before its listing says anything about it.
      assertReadable(user, spec.trainingDS, "--trainingDS");
      const prefix = keys.dataset(spec.trainingDS);
      trainingFiles = (await this.p.storage.list(prefix)).map((o) => o.key.slice(prefix.length));
    }
    const command: SubmitCommand = {
      type: "submit",
      ...check,
      trainingFiles,
      randomSeed: randomInt(0, 2 ** 31 - 1),
    };
    const { taskId, warnings } = await this.decided(command);
    return warnings.length > 0 ? { taskId, warnings: [...warnings] } : { taskId };
  }

  /** The user's retired task (not killed) as a fresh fold of its log, for a retry; else null. */
  private async retiredFold(user: string, taskId: string): Promise<TaskEngine | null> {
    const s = this.c.state.finished.get(taskId);
    return s?.user === user && s.state !== "killed" ? this.p.archive.fresh(taskId) : null;
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

/** The reply of kill, pause and resume: the task's summary once the decision is applied. */
function summaryOf(t: TaskReply): TaskSummary {
  return "engine" in t ? summarize(t.engine) : t.retired;
}
