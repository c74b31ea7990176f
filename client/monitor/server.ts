// The monitor's local HTTP server: one page and its assets (from the repository and node_modules,
// nothing from a CDN), a JSON API over the user's tasks, a server-sent-event stream of their
// changes, and the kill/pause/resume/retry actions.
//
// Who may use it: only who holds the random token printed in the URL (as Jupyter does), since any
// local user can connect to 127.0.0.1. GETs take it as ?token= (the page's URL, EventSource) or
// the X-Monitor-Token header; an action (POST) only from the header, so a page of another origin
// cannot send one (it would need the token and a CORS preflight this server never grants), and only
// with {"confirm": "<task id>"}. On a loopback address the Host header must name loopback too,
// or a DNS-rebound name would let a web site's script read the API through the user's browser.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { GridtuneError, unreachable, ValidationError } from "../../protocol/errors.ts";
import type { ArtifactKind } from "../../protocol/messages.ts";
import type { TaskDetail, TaskEvents } from "../../protocol/api.ts";
import { TASK_ID_RE } from "../../protocol/names.ts";
import { loadAssets, type Asset } from "./assets.ts";
import type { ControlVerb, MonitorBackend } from "./backend.ts";
import { buildLadder } from "./ladder.ts";
import { taskPage } from "./pageData.ts";

export interface MonitorOptions {
  backend: MonitorBackend;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Tests and the benchmark pass their own; otherwise 32 random bytes, hex. */
  token?: string;
  /** Only these tasks (phpo monitor TASK…); empty or absent: all the user's tasks. */
  tasks?: readonly string[];
}

export interface MonitorServer {
  /** http://host:port/?token=… */
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
const TOKEN_HEADER = "x-monitor-token";
const MAX_BODY = 4096;
/** A comment line on every event stream this often, so proxies and the browser see it alive. */
const SSE_PING_MS = 15_000;
/** How old a task's `show` may be to answer a point's page from it. */
const POINT_CACHE_MS = 5_000;

export const isLoopback = (host: string) => LOOPBACK.has(host) || host.startsWith("127.");

class HttpError extends GridtuneError {
  override name = "HttpError";
  constructor(
    readonly status: number,
    code: ConstructorParameters<typeof GridtuneError>[0],
    message: string,
  ) {
    super(code, message, { retryable: false });
  }
}

const digest = (s: string) => createHash("sha256").update(s).digest();

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (!(err instanceof GridtuneError)) return 500;
  switch (err.code) {
    case "NOT_FOUND":
      return 404;
    case "INVALID_ARGUMENT":
    case "INVALID_CONFIG":
    case "INVALID_NAME":
      return 400;
    case "CONFLICT":
      return 409;
    case "FORBIDDEN":
      return 403;
    case "UNAVAILABLE":
    case "TIMEOUT":
      return 503;
    // the rest are the backend's own failures, or a user's that the page cannot send
    case "INVALID_SEARCH_SPACE":
    case "LIMIT_EXCEEDED":
    case "UNAUTHENTICATED":
    case "PROTOCOL_MISMATCH":
    case "STALE_ATTEMPT":
    case "IMAGE_MISSING":
    case "IMAGE_NOT_ALLOWED":
    case "RUNTIME_UNAVAILABLE":
    case "EVALUATION_FAILED":
    case "OUTPUT_INVALID":
    case "ARCHIVE_REJECTED":
    case "TOO_LARGE":
    case "STORAGE_FAILED":
    case "INTERNAL":
      return 502;
    default:
      return unreachable(err.code, "error code");
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, v: unknown) =>
  send(res, status, "application/json; charset=utf-8", JSON.stringify(v));

function sendError(res: ServerResponse, err: unknown): void {
  const wire =
    err instanceof GridtuneError
      ? err.toWire()
      : { code: "INTERNAL", message: (err as Error).message ?? String(err), retryable: false };
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, statusOf(err), wire);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new HttpError(413, "TOO_LARGE", `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseTaskId(s: string): string {
  if (!TASK_ID_RE.test(s))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `task id ${JSON.stringify(s)}: task ids are decimal numbers`,
    );
  return s;
}

function parsePointId(s: string): number {
  if (!/^\d{1,9}$/.test(s))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `point id ${JSON.stringify(s)}: point ids are integers ≥ 0`,
    );
  return Number(s);
}

function parseAttempt(s: string | null): number | undefined {
  if (s === null) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(s))
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `attempt ${JSON.stringify(s)}: give an integer ≥ 1, e.g. ?attempt=1`,
    );
  return Number(s);
}

const ARTIFACT_KINDS: readonly ArtifactKind[] = ["log", "metrics", "checkpoint"];

export async function startMonitor(o: MonitorOptions): Promise<MonitorServer> {
  const host = o.host ?? "127.0.0.1";
  const token = o.token ?? randomBytes(32).toString("hex");
  const tokenDigest = digest(token);
  const only = new Set(o.tasks ?? []);
  const assets = await loadAssets();
  const backend = o.backend;
  const streams = new Set<ServerResponse>();
  let port = 0;

  // the last `show` of each task: a point's page right after its task's page needs no second one
  const shown = new Map<string, { at: number; detail: TaskDetail }>();
  async function fresh(taskId: string, maxAgeMs: number): Promise<TaskDetail> {
    const c = shown.get(taskId);
    if (c && Date.now() - c.at <= maxAgeMs) return c.detail;
    const detail = await backend.show(taskId);
    // only the task just shown is kept: a long-running monitor must not hold every task it showed
    shown.clear();
    shown.set(taskId, { at: Date.now(), detail });
    return detail;
  }

  const tokenOk = (given: string | null) => given !== null && timingSafeEqual(digest(given), tokenDigest);
  const visible = (taskId: string) => only.size === 0 || only.has(taskId);
  const mustSee = (taskId: string) => {
    if (!visible(taskId))
      throw new ValidationError("NOT_FOUND", `task ${taskId} is not one this monitor was started for`);
  };

  const unsubscribe = backend.subscribe((e: TaskEvents) => {
    if (!visible(e.taskId)) return;
    const frame = `event: task\ndata: ${JSON.stringify(e)}\n\n`;
    for (const s of streams) s.write(frame);
  });

  function checkAccess(req: IncomingMessage, url: URL): void {
    // the Host check first: a rebound name must learn nothing, not even that the token is wrong
    if (isLoopback(host)) {
      const h = (req.headers.host ?? "").toLowerCase();
      const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`];
      if (!allowed.includes(h))
        throw new HttpError(403, "FORBIDDEN", `Host ${JSON.stringify(h)} is not this monitor's address`);
    }
    const header = req.headers[TOKEN_HEADER];
    const fromHeader = typeof header === "string" ? header : null;
    const read = req.method === "GET" || req.method === "HEAD";
    const given = read ? (fromHeader ?? url.searchParams.get("token")) : fromHeader;
    if (given === null)
      throw new HttpError(
        401,
        "UNAUTHENTICATED",
        read
          ? "open the URL phpo monitor printed: it carries the access token"
          : `actions need the ${TOKEN_HEADER} header`,
      );
    if (!tokenOk(given)) throw new HttpError(403, "FORBIDDEN", "wrong monitor token");
  }

  function serveAsset(req: IncomingMessage, res: ServerResponse, a: Asset): void {
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? a.gzipped : a.body;
    res.writeHead(200, {
      "content-type": a.type,
      "content-length": body.length,
      vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    res.end(body);
  }

  async function handleGet(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]) {
    if (parts.length === 0) {
      const html = assets.page.replaceAll("__TOKEN__", encodeURIComponent(token));
      return send(res, 200, "text/html; charset=utf-8", html);
    }
    if (parts[0] === "assets" && parts.length === 2) {
      const a = assets.files.get(parts[1] as string);
      if (!a) throw new HttpError(404, "NOT_FOUND", `no asset ${parts[1]}`);
      return serveAsset(req, res, a);
    }
    if (parts[0] !== "api") throw new HttpError(404, "NOT_FOUND", `no page ${url.pathname}`);
    if (parts[1] === "events" && parts.length === 2) return openStream(req, res);
    if (parts[1] === "tasks" && parts.length === 2) {
      const tasks = (await backend.list()).filter((t) => visible(t.taskId));
      return sendJson(res, 200, { user: backend.user, tasks });
    }
    if (parts[1] !== "tasks") throw new HttpError(404, "NOT_FOUND", `no API ${url.pathname}`);
    const taskId = parseTaskId(parts[2] ?? "");
    mustSee(taskId);
    if (parts.length === 3) {
      const metric = url.searchParams.get("metric") ?? "loss";
      if (metric.length === 0 || metric.length > 128)
        throw new ValidationError(
          "INVALID_ARGUMENT",
          "metric: give a reported metric's name, e.g. ?metric=loss",
        );
      const t0 = performance.now();
      const task = await fresh(taskId, 0);
      const t1 = performance.now();
      const ladder = buildLadder(task);
      const t2 = performance.now();
      const body = JSON.stringify(taskPage(task, ladder, metric));
      const t3 = performance.now();
      // where the time of a large task goes, for the browser's devtools and the benchmark
      res.setHeader(
        "server-timing",
        `show;dur=${(t1 - t0).toFixed(1)}, ladder;dur=${(t2 - t1).toFixed(1)}, page;dur=${(t3 - t2).toFixed(1)}`,
      );
      return send(res, 200, "application/json; charset=utf-8", body);
    }
    // /api/tasks/T/points/P: the point in full (the task page leaves out the reports)
    if (parts[3] === "points" && parts.length === 5) {
      const pointId = parsePointId(parts[4] ?? "");
      const point = (await fresh(taskId, POINT_CACHE_MS)).points.find((p) => p.pointId === pointId);
      if (!point) throw new ValidationError("NOT_FOUND", `task ${taskId} has no point ${pointId}`);
      return sendJson(res, 200, { point });
    }
    // /api/tasks/T/points/P/(log|metrics|checkpoint)[?attempt=N]
    if (parts[3] === "points" && parts.length === 6) {
      const pointId = parsePointId(parts[4] ?? "");
      const kind = parts[5] as ArtifactKind;
      if (!ARTIFACT_KINDS.includes(kind))
        throw new HttpError(404, "NOT_FOUND", `no artifact kind ${parts[5]}: log, metrics or checkpoint`);
      const attempt = parseAttempt(url.searchParams.get("attempt"));
      const items = (await backend.artifacts(taskId, pointId, [kind])).sort((a, b) => a.attempt - b.attempt);
      const item = attempt === undefined ? items[items.length - 1] : items.find((i) => i.attempt === attempt);
      if (!item)
        throw new ValidationError(
          "NOT_FOUND",
          `point ${pointId} of task ${taskId} has no ${kind}${attempt === undefined ? "" : ` of attempt ${attempt}`} (yet)`,
        );
      if (kind === "log") return send(res, 200, "text/plain; charset=utf-8", await backend.logText(item));
      const r = await backend.open(item);
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        // the name comes from steering: keep it to safe characters in the header
        "content-disposition": `attachment; filename="${item.name.replace(/[^\w.+-]/g, "_")}"`,
      });
      if (r.body) Readable.fromWeb(r.body as unknown as WebReadableStream<Uint8Array>).pipe(res);
      else res.end();
      return;
    }
    throw new HttpError(404, "NOT_FOUND", `no API ${url.pathname}`);
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    // the browser reconnects by itself after this long when the stream drops (a monitor restart)
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ user: backend.user })}\n\n`);
    streams.add(res);
    const ping = setInterval(() => res.write(": ping\n\n"), SSE_PING_MS);
    req.on("close", () => {
      clearInterval(ping);
      streams.delete(res);
    });
  }

  async function handlePost(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]) {
    if (parts[0] !== "api" || parts[1] !== "tasks" || parts.length !== 4)
      throw new HttpError(404, "NOT_FOUND", `no action ${url.pathname}`);
    const taskId = parseTaskId(parts[2] ?? "");
    mustSee(taskId);
    const verb = parts[3] as string;
    if (!["kill", "pause", "resume", "retry"].includes(verb))
      throw new HttpError(404, "NOT_FOUND", `no action ${verb}: kill, pause, resume or retry`);
    if (!(req.headers["content-type"] ?? "").startsWith("application/json"))
      throw new HttpError(415, "INVALID_ARGUMENT", "send the action as application/json");
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new ValidationError("INVALID_ARGUMENT", "the action's body is not JSON");
    }
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
    if (b.confirm !== taskId)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `confirm: to ${verb} task ${taskId}, send {"confirm": "${taskId}"} (the page asks you first)`,
      );
    if (verb === "retry") return sendJson(res, 200, await backend.retry(taskId, b.failedOnly === true));
    return sendJson(res, 200, { task: await backend.control(verb as ControlVerb, taskId) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // what every answer carries: no caching, no embedding, no referrer (the URL holds the token)
    res.setHeader("cache-control", "no-store");
    res.setHeader("x-content-type-options", "nosniff");
    res.setHeader("referrer-policy", "no-referrer");
    res.setHeader("x-frame-options", "DENY");
    res.setHeader(
      "content-security-policy",
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    try {
      const url = new URL(req.url ?? "/", "http://monitor.invalid");
      checkAccess(req, url);
      const parts = url.pathname.split("/").filter((p) => p !== "");
      if (req.method === "GET" || req.method === "HEAD") await handleGet(req, res, url, parts);
      else if (req.method === "POST") await handlePost(req, res, url, parts);
      else {
        res.setHeader("allow", "GET, POST");
        throw new HttpError(
          405,
          "INVALID_ARGUMENT",
          `${req.method} is not allowed: GET to read, POST to act`,
        );
      }
    } catch (err) {
      sendError(res, err);
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const hostText = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${hostText}:${port}/?token=${token}`,
    port,
    async close() {
      unsubscribe();
      for (const s of streams) s.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
