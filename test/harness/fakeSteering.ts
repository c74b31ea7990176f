// A fake steering service for the phpo tests: a REAL nats-server (TLS, nkeys, the generated
// permissions) with a responder on gt.api.*.> that records every request and answers with canned,
// schema-valid replies, plus a small HTTP server standing in for S3's presigned URLs. It checks
// each request against ApiRequest, as steering does, so a malformed request fails the test.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import * as tar from "tar";
import { steeringIdentity, userIdentity } from "../../protocol/identity.ts";
import {
  ApiReplies,
  ApiRequest,
  type ApiReply,
  type PointView,
  type TaskDetail,
  type TaskEvent,
  type TaskEvents,
  type TaskSummary,
} from "../../protocol/api.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { parseApiSubject, subjects } from "../../protocol/subjects.ts";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { startNatsServer, type NatsServerHandle } from "../../steering/security/natsServer.ts";

export type Handler = (req: ApiRequest, user: string) => ApiReply | Promise<ApiReply>;

export interface FakeSteering {
  dir: string;
  natsUrl: string;
  caFile: string;
  user: string;
  seedFile: string;
  /** Base URL of the fake S3 (presigned URLs point here). */
  httpUrl: string;
  requests: { user: string; req: ApiRequest }[];
  /** Bodies received by presigned PUTs, by key. */
  uploads: Map<string, Buffer>;
  /** Bodies served by presigned GETs, by file name. */
  files: Map<string, Buffer>;
  /** Overrides the answer to one verb. */
  on(verb: ApiRequest["verb"], handler: Handler): void;
  /** The answer to one verb now (to wrap it in an override). */
  handler(verb: ApiRequest["verb"]): Handler;
  /** Publishes one change as steering's watch message would carry it. */
  publishEvent(ev: TaskEvent): void;
  /** Unsubscribes the responder: requests then get "no responders". */
  stopResponder(): Promise<void>;
  startResponder(): void;
  stop(): Promise<void>;
  /** Connection flags for phpo. */
  flags(): string[];
}

const ok = (data: unknown): ApiReply => ({ ok: true, data });

export function samplePoints(): PointView[] {
  const base = {
    segment: null,
    agent: "a1",
    error: null,
    metricsKeys: [] as string[],
    logKeys: [] as string[],
    checkpointKey: null,
    site: "local",
  };
  return [
    {
      ...base,
      pointId: 0,
      values: { lr: 0.1, act: "relu" },
      state: "done",
      loss: 0.5,
      attempts: 1,
      resource: 9,
      reports: [
        { resource: 1, loss: 0.9 },
        { resource: 3, loss: 0.7 },
        { resource: 9, loss: 0.5 },
      ],
    },
    {
      ...base,
      pointId: 1,
      values: { lr: 0.01, act: "tanh" },
      state: "stopped",
      loss: 1.2,
      attempts: 1,
      resource: 1,
      reports: [{ resource: 1, loss: 1.2 }],
    },
    {
      ...base,
      pointId: 2,
      values: { lr: 0.05, act: "relu" },
      state: "done",
      loss: 0.25,
      attempts: 2,
      resource: 9,
      reports: [
        { resource: 1, loss: 0.8 },
        { resource: 3, loss: 0.4 },
        { resource: 9, loss: 0.25 },
      ],
    },
    {
      ...base,
      pointId: 3,
      values: { lr: 0.3, act: "tanh" },
      state: "failed",
      loss: 1e30,
      attempts: 3,
      resource: null,
      reports: [],
      error: "exit code 1: CUDA out of memory",
      site: null,
    },
  ];
}

export function sampleSummary(taskId = "7", state: TaskSummary["state"] = "finished"): TaskSummary {
  return {
    taskId,
    user: "alice",
    outDS: "user.alice.test/",
    state,
    createdAt: Date.UTC(2025, 0, 2, 3, 4, 5),
    finishedAt: state === "finished" ? Date.UTC(2025, 0, 2, 3, 9, 5) : null,
    maxPoints: 4,
    counts: {
      points: 4,
      done: 2,
      failed: 1,
      running: 0,
      queued: 0,
      jobs: 7,
      stopped: 1,
      paused: 0,
      cancelled: 0,
      evaluated: 4,
      pointJobs: 4,
      budgetSpent: 0,
    },
    best: { pointId: 2, loss: 0.25, values: { lr: 0.05, act: "relu" } },
  };
}

export function sampleDetail(taskId = "7"): TaskDetail {
  const spec = parseTaskSpec({
    outDS: "user.alice.test/",
    evaluationContainer: "img",
    evaluationExec: "python train.py",
    searchSpace: {
      lr: { method: "loguniform", dimension: { low: 0.001, high: 0.5 } },
      act: { method: "categorical", dimension: { categories: ["relu", "tanh"] } },
    },
    maxPoints: 4,
    scheduler: { type: "asha-stopping", max_t: 9, reduction_factor: 3 },
  });
  return ApiReplies.show.parse({
    ...sampleSummary(taskId),
    spec,
    points: samplePoints(),
    segments: [{ name: null, points: 4, best: 0.25 }],
    // asha-stopping with max_t 9, η 3: rungs at 1 and 3 (max_t is no rung)
    rungs: [
      { segment: null, level: 1, values: [0.8, 0.9, 1.2], count: 3 },
      { segment: null, level: 3, values: [0.4, 0.7], count: 2 },
    ],
  });
}

async function tgz(files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "fake-tgz-"));
  try {
    const { writeFile } = await import("node:fs/promises");
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const chunks: Buffer[] = [];
    for await (const c of tar.create(
      { gzip: true, cwd: dir, portable: true },
      Object.keys(files),
    ) as AsyncIterable<Buffer>)
      chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startFakeSteering(user = "alice"): Promise<FakeSteering> {
  const dir = await mkdtemp(join(tmpdir(), "gridtune-fake-steering-"));
  const store = new IdentityStore(join(dir, "identities"));
  const userSeed = (await store.ensure(userIdentity(user))).seedFile;
  let nats: NatsServerHandle;
  try {
    nats = await startNatsServer({ dir: join(dir, "nats"), store });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const nc: NatsConnection = await connectNats({
    servers: nats.url,
    seedFile: store.seedFile(steeringIdentity()),
    caFile: nats.caFile,
    identity: steeringIdentity(),
    logger: () => undefined,
  });

  const uploads = new Map<string, Buffer>();
  const files = new Map<string, Buffer>();
  files.set("7.metrics.000000_a1.tgz", await tgz({ "metrics.json": '{"acc": 0.9}\n' }));
  files.set("7.metrics.000002_a2.tgz", await tgz({ "metrics.json": '{"acc": 0.95}\n' }));
  files.set("user.alice.test.7.000002_a1.log.txt", Buffer.from("attempt 1 of point 2\nloss=0.3\n"));
  files.set("user.alice.test.7.000002_a2.log.txt", Buffer.from("attempt 2 of point 2\nloss=0.25\n"));
  const http: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "PUT" && url.pathname.startsWith("/put/")) {
        if (req.headers["content-length"] === undefined) {
          res.writeHead(411).end("content-length required");
          return;
        }
        uploads.set(decodeURIComponent(url.pathname.slice(5)), Buffer.concat(chunks));
        res.writeHead(200, { etag: '"x"' }).end();
      } else if (req.method === "GET" && url.pathname.startsWith("/get/")) {
        const body = files.get(decodeURIComponent(url.pathname.slice(5)));
        if (body) res.writeHead(200, { "content-length": body.length }).end(body);
        else res.writeHead(404).end("NoSuchKey");
      } else res.writeHead(400).end();
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  const addr = http.address();
  const httpUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;

  const item = (pointId: number, attempt: number, kind: "metrics" | "log" | "checkpoint", name: string) => ({
    pointId,
    attempt,
    kind,
    name,
    url: `${httpUrl}/get/${encodeURIComponent(name)}`,
  });
  const defaults: Record<string, Handler> = {
    submit: () => ok({ taskId: "7" }),
    list: () => ok({ tasks: [sampleSummary("7"), sampleSummary("8", "running")] }),
    show: (r) =>
      r.verb === "show" && r.taskId !== "7"
        ? {
            ok: false,
            error: {
              code: "NOT_FOUND",
              message: `task ${r.taskId} does not exist (or is not yours); see phpo list`,
              retryable: false,
            },
          }
        : ok(sampleDetail("7")),
    kill: (r) => ok({ ...sampleSummary(r.verb === "kill" ? r.taskId : "7"), state: "killed" }),
    pause: () => ok({ ...sampleSummary("7"), state: "paused" }),
    resume: () => ok({ ...sampleSummary("7"), state: "running" }),
    retry: () => ok({ task: sampleSummary("7", "running"), requeued: 1 }),
    upload: () =>
      ok({
        key: `uploads/${user}/abc123`,
        url: `${httpUrl}/put/${encodeURIComponent(`uploads/${user}/abc123`)}`,
      }),
    download: (r) => {
      if (r.verb !== "download") return ok({ items: [] });
      const items = [];
      if (r.kinds.includes("metrics"))
        items.push(
          item(0, 1, "metrics", "7.metrics.000000_a1.tgz"),
          item(2, 2, "metrics", "7.metrics.000002_a2.tgz"),
        );
      if (r.kinds.includes("log"))
        items.push(
          item(2, 1, "log", "user.alice.test.7.000002_a1.log.txt"),
          item(2, 2, "log", "user.alice.test.7.000002_a2.log.txt"),
        );
      return ok({ items });
    },
  };
  const handlers = new Map<string, Handler>(Object.entries(defaults));
  const requests: { user: string; req: ApiRequest }[] = [];
  let sub: Subscription | null = null;

  const startResponder = () => {
    sub = nc.subscribe(subjects.apiAll, {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          const who = parseApiSubject(msg.subject);
          const parsed = ApiRequest.safeParse(msg.json());
          let reply: ApiReply;
          if (!who || !parsed.success || parsed.data.verb !== who.verb) {
            reply = {
              ok: false,
              error: {
                code: "INVALID_ARGUMENT",
                message: `fake steering: bad request on ${msg.subject}: ${msg.string()}`,
                retryable: false,
              },
            };
          } else {
            requests.push({ user: who.user, req: parsed.data });
            reply = await (handlers.get(parsed.data.verb) as Handler)(parsed.data, who.user);
          }
          msg.respond(JSON.stringify(reply));
        })();
      },
    });
  };
  startResponder();
  await nc.flush();

  return {
    dir,
    natsUrl: nats.url,
    caFile: nats.caFile,
    user,
    seedFile: userSeed,
    httpUrl,
    requests,
    uploads,
    files,
    on: (verb, h) => handlers.set(verb, h),
    handler: (verb) => handlers.get(verb) as Handler,
    publishEvent: (ev) => {
      const { taskId, summary, ...change } = ev;
      const message: TaskEvents = { taskId, changes: [change], summary };
      nc.publish(subjects.events(user, taskId), JSON.stringify(message));
    },
    async stopResponder() {
      sub?.unsubscribe();
      sub = null;
      await nc.flush();
    },
    startResponder,
    async stop() {
      await nc.close().catch(() => undefined);
      await new Promise<void>((r) => http.close(() => r()));
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
    flags: () => ["--nats-url", nats.url, "--user", user, "--seed-file", userSeed, "--ca-file", nats.caFile],
  };
}

export interface PhpoRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs phpo in-process with captured output. The environment is empty but for `env` (and a HOME
 * with no config), so the developer's own settings never leak into a test.
 */
export async function runPhpo(
  args: string[],
  env: Record<string, string> = {},
  opts: { tty?: boolean } = {},
): Promise<PhpoRun> {
  const { main } = await import("../../client/main.ts");
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: { write: (s: string) => (stdout += s), isTTY: opts.tty === true },
    stderr: { write: (s: string) => (stderr += s) },
  };
  const code = await main(["node", "phpo", ...args], io, {
    HOME: join(tmpdir(), "gridtune-no-home"),
    ...env,
  });
  return { code, stdout, stderr };
}
