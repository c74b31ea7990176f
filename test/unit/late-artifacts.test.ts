// A computed loss is never thrown away (issue 14, item 7). The agent's side (real job runner and
// late uploader, a stand-in runtime and an HTTP server playing S3 that can be "down"): the result
// carries the loss and lists the log as missing; the log is uploaded later on its own, or given up
// with its reason. Steering's side (real engine, AgentControl, Committer): the result commits with
// its loss; a late artifact is recorded, or kept as given up; only the agent that ran the attempt
// may presign or report a late upload, and only for the kinds its result listed as missing.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { renderShow } from "../../client/render.ts";
import { runJob } from "../../evaluator/jobRunner.ts";
import { LateUploads, type LatePolicy } from "../../evaluator/lateUploads.ts";
import type { SteeringLink } from "../../evaluator/link.ts";
import type { Runtime, RunOutcome, RunSpec } from "../../evaluator/runtime/types.ts";
import type { RetryPolicy } from "../../evaluator/transfer.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentReply, type AgentReport, type AgentRequest } from "../../protocol/messages.ts";
import { AgentControl } from "../../steering/shell/channels/agentControl.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { buildJob } from "../../steering/core/task/jobBuilder.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { pointView } from "../../steering/core/views.ts";
import { sampleDetail } from "../harness/fakeSteering.ts";
import { openPolicy } from "./fixtures/apiKit.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { AGENT_RULES, dispatcherStub } from "./fixtures/agentKit.ts";
import { TEST_SITE_POLICY } from "./fixtures/sitePolicy.ts";

const logger = createLogger("test", { level: "error" });
const policy = TEST_SITE_POLICY;
const quick: RetryPolicy = { attempts: 2, baseDelayMs: 5, maxDelayMs: 5, requestTimeoutMs: 2000 };
const latePolicy = (attempts: number): LatePolicy => ({
  attempts,
  baseMs: 20,
  maxMs: 40,
  jitter: 0,
  transfer: quick,
});

/** A payload that logs a line and writes output.json with loss 0.25. */
class OkRuntime implements Runtime {
  readonly kind = "process" as const;
  async run(s: RunSpec): Promise<RunOutcome> {
    await mkdir(dirname(s.logFile), { recursive: true });
    await writeFile(s.logFile, "payload says hello\n");
    await writeFile(join(s.workDir, "output.json"), JSON.stringify({ status: 0, loss: 0.25 }));
    await writeFile(join(s.workDir, "metrics.tgz"), "the payload's metrics");
    const o = { exitCode: 0, timedOut: false, oomKilled: false, stopped: false, durationMs: 1 };
    return { ...o, logBytes: 19, logTruncated: false };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** S3's part: PUTs are stored while `up`, refused with 503 while down. */
class FakeS3 {
  up = false;
  readonly objects = new Map<string, string>();
  private server: Server | null = null;
  port = 0;
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (!this.up) return void res.writeHead(503).end("<Error><Code>SlowDown</Code></Error>");
        this.objects.set(new URL(req.url ?? "/", "http://x").pathname, body);
        res.writeHead(200, { etag: '"abc"' }).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as { port: number }).port;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()) ?? r());
  }
}

void describe("agent: an attempt whose log S3 does not take", () => {
  const s3 = new FakeS3();
  before(() => s3.start());
  after(() => s3.stop());

  async function run(lateAttempts: number, metrics = false) {
    const d = new Driver(
      spec({ maxPoints: 1, ...(metrics ? { evaluationMetrics: "metrics.tgz" } : {}) }),
      "7",
    );
    d.sampleAll();
    const ref = d.dispatch("s")!;
    const job = buildJob(d.engine, ref.jobId, []);
    const workRoot = await mkdtemp(join(tmpdir(), "gt-late-"));
    const reports: AgentReport[] = [];
    const presigns: AgentRequest[] = [];
    const link: SteeringLink = {
      request: (req) => {
        presigns.push(req);
        if (req.type !== "presign") throw new Error(`unexpected ${req.type}`);
        const uploads = req.artifacts.map((a) => ({
          kind: a.kind,
          key: `k/${a.kind}`,
          url: `http://127.0.0.1:${s3.port}/gridtune/k/${a.kind}?X-Amz-Signature=x`,
        }));
        return Promise.resolve({ type: "presigned", uploads });
      },
      report: (r) => (reports.push(r), Promise.resolve()),
    };
    const late = new LateUploads(workRoot, link, logger, latePolicy(lateAttempts));
    await runJob({
      job,
      grant: { sandbox: null, trainingData: [], checkpoint: null },
      link,
      runtime: new OkRuntime(),
      workRoot,
      gpus: [],
      policy,
      logger,
      signal: new AbortController().signal,
      late,
      uploadRetry: quick,
      instance: "test",
      trustedUsers: [job.user],
    });
    return { reports, presigns, late, workRoot };
  }

  void it("reports the loss with the log missing, then uploads the log once S3 is back", async (t) => {
    s3.up = false;
    s3.objects.clear();
    const { reports, presigns, late, workRoot } = await run(50);
    t.after(() => rm(workRoot, { recursive: true, force: true }));
    const result = reports.find((r) => r.type === "result");
    assert.ok(result?.type === "result");
    assert.equal(result.status, "ok", JSON.stringify(result));
    assert.equal(result.loss, 0.25, "the computed loss is kept");
    assert.deepEqual(result.artifacts, []);
    assert.deepEqual(
      result.missing.map((m) => m.kind),
      ["log"],
    );
    assert.match(result.missing[0]!.reason, /HTTP 503 SlowDown.*the agent keeps trying/);
    assert.deepEqual(
      await readdir(workRoot),
      [".late-uploads"],
      "the attempt's folders are gone, the log kept",
    );
    s3.up = true;
    await late.idle();
    const art = reports.find((r) => r.type === "artifact");
    assert.deepEqual(art, {
      type: "artifact",
      jobId: result.jobId,
      attempt: result.attempt,
      kind: "log",
      artifact: { kind: "log", key: "k/log", size: 19, etag: "abc" },
      reason: null,
    });
    assert.equal(s3.objects.get("/gridtune/k/log"), "payload says hello\n");
    assert.ok(presigns.length >= 2, "a fresh URL for the late upload");
    assert.deepEqual(await readdir(join(workRoot, ".late-uploads")), [], "the held file is removed");
  });

  void it("keeps a payload file (metrics) as a copy of the agent's own and uploads its bytes later", async (t) => {
    s3.up = false;
    s3.objects.clear();
    const { reports, late, workRoot } = await run(50, true);
    t.after(() => rm(workRoot, { recursive: true, force: true }));
    const result = reports.find((r) => r.type === "result");
    assert.ok(result?.type === "result");
    assert.equal(result.loss, 0.25);
    assert.deepEqual(result.missing.map((m) => m.kind).sort(), ["log", "metrics"]);
    s3.up = true;
    await late.idle();
    const metrics = reports.find((r) => r.type === "artifact" && r.kind === "metrics");
    assert.ok(metrics?.type === "artifact" && metrics.artifact !== null, JSON.stringify(metrics));
    assert.equal(s3.objects.get("/gridtune/k/metrics"), "the payload's metrics");
  });

  void it("gives the log up with its reason when S3 stays away through every try", async (t) => {
    s3.up = false;
    const { reports, late, workRoot } = await run(2);
    t.after(() => rm(workRoot, { recursive: true, force: true }));
    await late.idle();
    const art = reports.find((r) => r.type === "artifact");
    assert.ok(art?.type === "artifact");
    assert.equal(art.artifact, null);
    assert.match(art.reason ?? "", /the log could not be uploaded in 2 tries: .*HTTP 503/);
    assert.equal(reports.find((r) => r.type === "result")?.type === "result" ? 0.25 : null, 0.25);
  });

  void it("gives up what is still waiting when the agent stops", async (t) => {
    s3.up = false;
    const { reports, late, workRoot } = await run(1000);
    t.after(() => rm(workRoot, { recursive: true, force: true }));
    await late.close();
    const art = reports.find((r) => r.type === "artifact");
    assert.ok(art?.type === "artifact" && art.artifact === null);
    assert.match(art.reason ?? "", /the agent stopped before the log could be uploaded/);
  });
});

/** Task "1", one point: its attempt ran on s/a and ended with loss 0.5 and its log missing. */
function ended() {
  const d = new Driver(spec({ maxPoints: 1 }), "1");
  d.sampleAll();
  const ref = d.dispatch("s")!;
  d.claim(ref, "s", "a");
  d.apply({
    ...d.finishEvent(ref, "ok", 0.5, "s", "a"),
    missing: [{ kind: "log", reason: "upload to x failed after 6 tries: HTTP 503" }],
  });
  return { d, ref };
}

void describe("steering: a result with a missing artifact", () => {
  void it("commits with its loss; the point shows the log as missing until it arrives", () => {
    const { d, ref } = ended();
    const p = d.engine.points.get(0)!;
    assert.equal(p.state, "done");
    assert.equal(p.loss, 0.5);
    assert.deepEqual(pointView(d.engine, p).missing, [
      {
        job: 1,
        attempt: 1,
        kind: "log",
        reason: "upload to x failed after 6 tries: HTTP 503",
        pending: true,
      },
    ]);
    const key = "tasks/1/points/0/t1-p0-j1/a1/log.txt";
    d.apply({
      type: "job-artifact",
      taskId: "1",
      at: d.tick(),
      ...ref,
      kind: "log",
      artifact: { kind: "log", key, size: 5, etag: "e" },
      reason: null,
    });
    assert.deepEqual(p.logKeys, [key]);
    assert.equal(pointView(d.engine, p).missing, undefined);
  });

  void it("a given-up artifact stays listed with the agent's reason, and nothing more is accepted", () => {
    const { d, ref } = ended();
    const ev = { type: "job-artifact" as const, taskId: "1", ...ref, kind: "log" as const };
    d.apply({ ...ev, at: d.tick(), artifact: null, reason: "S3 stayed away" });
    const p = d.engine.points.get(0)!;
    assert.deepEqual(pointView(d.engine, p).missing?.[0], {
      job: 1,
      attempt: 1,
      kind: "log",
      reason: "S3 stayed away",
      pending: false,
    });
    assert.deepEqual(d.engine.lateFence(ref.jobId, 1, "log", "s", "a"), {
      ok: false,
      reason: "the log of t1-p0-j1 attempt 1 was given up",
    });
    d.apply({ ...ev, at: d.tick(), artifact: { kind: "log", key: "k", size: 1, etag: "" }, reason: null });
    assert.deepEqual(p.logKeys, [], "a given-up artifact is not reopened");
  });

  void it("never awaits a checkpoint, a kind that arrived with the result, or one kind twice", () => {
    const d = new Driver(spec({ maxPoints: 1 }), "1");
    d.sampleAll();
    const ref = d.dispatch("s")!;
    d.claim(ref, "s", "a");
    const log = { kind: "log" as const, key: "tasks/1/points/0/t1-p0-j1/a1/log.txt", size: 3, etag: "" };
    d.apply({
      ...d.finishEvent(ref, "ok", 0.5, "s", "a"),
      artifacts: [log],
      missing: ["checkpoint", "log", "metrics", "metrics"].map((kind) => ({
        kind: kind as never,
        reason: "r",
      })),
    });
    const p = d.engine.points.get(0)!;
    assert.deepEqual(
      p.missing.map((m) => m.kind),
      ["metrics"],
    );
    assert.equal(d.engine.lateFence(ref.jobId, 1, "checkpoint", "s", "a").ok, false);
    assert.equal(d.engine.lateFence(ref.jobId, 1, "log", "s", "a").ok, false);
  });

  void it("lateFence: only the attempt's own site and agent, only the kinds listed as missing", () => {
    const { d, ref } = ended();
    assert.equal(d.engine.lateFence(ref.jobId, 1, "log", "s", "a").ok, true);
    assert.match(reasonOf(d.engine.lateFence(ref.jobId, 1, "log", "s", "b")), /ran on s\/a, not s\/b/);
    assert.match(reasonOf(d.engine.lateFence(ref.jobId, 1, "log", "t", "a")), /ran on s\/a, not t\/a/);
    assert.match(reasonOf(d.engine.lateFence(ref.jobId, 1, "metrics", "s", "a")), /has no missing metrics/);
    assert.match(reasonOf(d.engine.lateFence(ref.jobId, 2, "log", "s", "a")), /has no missing log/);
    assert.match(reasonOf(d.engine.lateFence("t2-p0-j1", 1, "log", "s", "a")), /has no missing log/);
  });

  void it("presign for an ended attempt: granted for its missing kind to its agent, refused otherwise", async () => {
    const { d, ref } = ended();
    const state = new SteeringState();
    for (const ev of d.log) state.apply(ev);
    const log = { append: (_: LogEvent) => Promise.resolve() };
    const c = new Committer(state, log, { publish: () => undefined }, logger);
    const registry = new AgentRegistry(AGENT_RULES.leaseMs);
    for (const agent of ["a", "b"])
      registry.register({ site: "s", agent, slots: 1, gpus: [], runtime: "process" }, 1_000);
    const storage = { presignPut: (key: string) => Promise.resolve(`http://s3/${key}?X-Amz-Signature=x`) };
    const ctl = new AgentControl(
      c,
      storage as unknown as Storage,
      dispatcherStub(c, registry).dispatcher,
      {} as JetStreamManager,
      logger,
      { refresh: () => Promise.resolve(openPolicy("s", ["docker", "process"])) },
    );
    const presign = (kind: "log" | "metrics" | "checkpoint", agent = "a") =>
      ask(ctl, { type: "presign", ...ref, artifacts: [{ kind, size: 5 }] }, agent);
    const ok = await presign("log");
    assert.ok(ok.type === "presigned");
    assert.equal(ok.uploads[0]?.key, "tasks/1/points/0/t1-p0-j1/a1/log.txt");
    for (const [kind, agent] of [
      ["log", "b"],
      ["metrics", "a"],
      ["checkpoint", "a"],
    ] as const) {
      const r = await presign(kind, agent);
      assert.equal(r.type === "error" ? r.error.code : r.type, "STALE_ATTEMPT", `${kind} by ${agent}`);
    }
  });
});

function reasonOf(f: { ok: boolean; reason?: string }): string {
  return f.ok ? "" : (f.reason ?? "");
}

function ask(ctl: AgentControl, req: AgentRequest, agent: string): Promise<AgentReply> {
  return new Promise((resolve, reject) => {
    const msg = {
      subject: `gt.hb.s.${agent}`,
      reply: `_INBOX.site.s.${agent}.x`,
      json: () => req,
      respond: (data: string) => {
        resolve(AgentReply.parse(JSON.parse(data)));
        return true;
      },
    };
    ctl.handle(msg as unknown as Msg).catch(reject);
  });
}

void describe("phpo: missing artifacts", () => {
  void it("show lists each missing artifact with its reason and whether the agent still tries", () => {
    const d = sampleDetail();
    d.points[0]!.missing = [
      { job: 1, attempt: 1, kind: "log", reason: "S3 down", pending: true },
      { job: 1, attempt: 2, kind: "metrics", reason: "given up: S3 down", pending: false },
    ];
    const text = renderShow(d);
    assert.match(text, /missing artifacts \(the loss counts without them\):/);
    assert.match(text, /p0 attempt 1 log: missing, the agent is still uploading it \(S3 down\)/);
    assert.match(text, /p0 attempt 2 metrics: missing for good \(given up: S3 down\)/);
    assert.doesNotMatch(renderShow(sampleDetail()), /missing artifacts/);
  });
});
