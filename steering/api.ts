// The client API (gt.api.<user>.<verb>, core request/reply). The user is token 2 of the subject,
// which the server's permissions bind to the caller's identity; the payload never names the user.
// A user sees and controls only their own tasks: another user's task is reported as not found.
import { randomBytes, randomInt } from "node:crypto";
import type { Msg } from "@nats-io/transport-node";
import { GridtuneError, toWireError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/log.ts";
import { ApiRequest, type ApiReply, type DownloadItem } from "../protocol/messages.ts";
import { parseApiSubject } from "../protocol/subjects.ts";
import { parseTaskSpec } from "../protocol/taskConfig.ts";
import type { Committer } from "./core.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { TaskEngine } from "./engine/taskEngine.ts";
import { keys, type Storage } from "./storage.ts";
import { detail, summarize } from "./views.ts";

export class Api {
  constructor(
    private readonly c: Committer,
    private readonly storage: Storage,
    private readonly dispatcher: Dispatcher,
    private readonly stopAttempts: (e: TaskEngine, reason: "killed") => void,
    private readonly logger: Logger,
  ) {}

  async handle(msg: Msg): Promise<void> {
    const who = parseApiSubject(msg.subject);
    if (!who || !msg.reply) return;
    let reply: ApiReply;
    let body: unknown;
    try {
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
      reply = { ok: true, data: await this.run(who.user, parsed.data) };
    } catch (e) {
      reply = { ok: false, error: toWireError(e) };
      if (e instanceof GridtuneError) this.refused(who.user, who.verb, body, e);
      else this.logger.error("api request failed", { user: who.user, verb: who.verb, error: String(e) });
    }
    msg.respond(JSON.stringify(reply));
  }

  /** Every refusal is logged; a task that exists but is another user's names its owner. */
  private refused(user: string, verb: string, body: unknown, e: GridtuneError): void {
    const raw = (body as { taskId?: unknown } | null | undefined)?.taskId;
    const taskId = typeof raw === "string" ? raw : undefined;
    const owner = taskId === undefined ? undefined : this.c.state.engines.get(taskId)?.user;
    this.logger.warn("api request refused", {
      user,
      verb,
      code: e.code,
      ...(taskId !== undefined ? { taskId } : {}),
      ...(owner !== undefined && owner !== user ? { owner } : {}),
      error: e.message,
    });
  }

  private own(user: string, taskId: string): TaskEngine {
    const e = this.c.state.engines.get(taskId);
    if (!e || e.user !== user)
      throw new GridtuneError("NOT_FOUND", `task ${taskId} does not exist (or is not yours); see phpo list`);
    return e;
  }

  private async run(user: string, req: ApiRequest): Promise<unknown> {
    switch (req.verb) {
      case "submit": {
        const spec = parseTaskSpec(req.spec);
        // One object directly under the user's prefix: no "..", no sub-path (URL clients
        // normalise dot segments, so "uploads/<user>/../<other>/x" would reach another upload).
        const upload = spec.sandboxKey?.startsWith(`uploads/${user}/`)
          ? spec.sandboxKey.slice(`uploads/${user}/`.length)
          : undefined;
        if (spec.sandboxKey !== undefined && !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(upload ?? "")) {
          throw new GridtuneError("FORBIDDEN", `sandboxKey must be an upload of yours (uploads/${user}/…)`);
        }
        const seed = spec.sampler?.seed ?? randomInt(0, 2 ** 31 - 1);
        const taskId = await this.c.serial(async () => {
          const id = String(this.c.state.maxTaskId + 1);
          await this.c.commit({ type: "task-created", taskId: id, at: Date.now(), user, spec, seed });
          return id;
        });
        this.logger.info("task submitted", { user, taskId, outDS: spec.outDS });
        this.dispatcher.kick();
        return { taskId };
      }
      case "list":
        return { tasks: [...this.c.state.engines.values()].filter((e) => e.user === user).map(summarize) };
      case "show":
        return detail(this.own(user, req.taskId), req.pointsFrom, req.pointsLimit);
      case "kill":
      case "pause":
      case "resume": {
        const e = this.own(user, req.taskId);
        const target = req.verb === "kill" ? "killed" : req.verb === "pause" ? "paused" : "running";
        await this.c.serial(async () => {
          if (e.state === "killed" || e.state === "finished") {
            if (req.verb !== "kill")
              throw new GridtuneError(
                "CONFLICT",
                `task ${e.taskId} is ${e.state}; it cannot be ${req.verb}d`,
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
        const e = this.own(user, req.taskId);
        const ids = [...e.points.values()]
          .filter((p) => p.state === "failed" || (!req.failedOnly && p.state === "cancelled"))
          .map((p) => p.pointId);
        if (e.state === "killed")
          throw new GridtuneError("CONFLICT", `task ${e.taskId} was killed; submit it again`);
        if (ids.length > 0)
          await this.c.serial(() =>
            this.c.commit({ type: "points-requeued", taskId: e.taskId, at: Date.now(), pointIds: ids }),
          );
        this.dispatcher.kick();
        return { task: summarize(e), requeued: ids.length };
      }
      case "upload": {
        const key = keys.upload(user, randomBytes(12).toString("hex"));
        return { key, url: await this.storage.presignPut(key, req.size) };
      }
      case "download": {
        const e = this.own(user, req.taskId);
        const items: DownloadItem[] = [];
        for (const p of [...e.points.values()].sort((a, b) => a.pointId - b.pointId)) {
          const keysOf = {
            metrics: p.metricsKeys,
            log: p.logKeys,
            checkpoint: p.checkpointKey ? [p.checkpointKey] : [],
          };
          for (const kind of req.kinds) {
            for (const key of (keysOf as Record<string, string[]>)[kind] ?? []) {
              const [, job, att] = /-j([0-9]+)\/a([0-9]+)\//.exec(key) ?? [];
              const attempt = Number(att ?? 0);
              items.push({
                pointId: p.pointId,
                attempt,
                kind,
                name: downloadName(e, p.pointId, p.segment, Number(job ?? 1), attempt, kind),
                url: await this.storage.presignGet(key),
              });
            }
          }
        }
        return { items };
      }
    }
  }
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
