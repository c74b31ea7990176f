// Application-level attacks of issue 8 against a real stack (nats-server with TLS and nkeys,
// s3rver, steering, agent processes): users kept apart, a sandbox key of another user, an expired
// presigned URL, artifacts that do not match what the agent declared, a removed agent mid-job and
// an invalid identity name on the admin CLI. Each is refused, logged, and changes nothing stored.
// (NATS-level attacks: security-nats.test.ts; forged results of other attempts: faults-agent.)
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { download, upload } from "../../evaluator/transfer.ts";
import { GridtuneError, UnavailableError } from "../../protocol/errors.ts";
import { agentIdentity, connectionName } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentReply, type AgentReport, type AgentRequest } from "../../protocol/messages.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { subjects } from "../../protocol/subjects.ts";
import type { SteeringService } from "../../steering/shell/service.ts";
import { Storage } from "../../steering/shell/storage.ts";
import { runBin, startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const refusedAs = (code: string) => (e: unknown) => {
  assert.ok(e instanceof GridtuneError, `expected a GridtuneError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

/** A logger that keeps steering's lines (warn and above) for the assertions. */
function captureLogs(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger("steering", { level: "warn", sink: (l) => lines.push(l) }) };
}

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("users are kept apart", { timeout: 120_000 }, () => {
  let stack: TestStack;
  const logs = captureLogs();
  before(async () => (stack = await startTestStack({ agents: 1, slotsPerAgent: 2, logger: logs.logger })));
  after(() => stack?.cleanup());

  it("another user's task: list, show, kill, pause, resume, retry, download are NOT_FOUND; nothing changes", async () => {
    const alice = await stack.connect("alice");
    const bob = await stack.connect("bob");
    const taskId = await alice.submit(stepsTask({ maxPoints: 2 }, { steps: 100, delay: 0.1 }));
    const before = await alice.waitFor(taskId, (d) => d.counts.running > 0, 30_000);
    const own = await bob.submit(stepsTask({ maxPoints: 1 }, { steps: 1, delay: 0 }));

    const listed = await bob.call("list", {});
    assert.deepEqual(
      listed.tasks.map((t) => t.taskId),
      [own],
      "bob lists only his own task",
    );
    assert.ok(listed.tasks.every((t) => t.user === "bob"));
    await assert.rejects(bob.show(taskId), refusedAs("NOT_FOUND"));
    for (const verb of ["kill", "pause", "resume"] as const)
      await assert.rejects(bob.call(verb, { taskId }), refusedAs("NOT_FOUND"));
    await assert.rejects(bob.call("retry", { taskId, failedOnly: false }), refusedAs("NOT_FOUND"));
    await assert.rejects(
      bob.call("download", { taskId, kinds: ["metrics", "log", "checkpoint"] }),
      refusedAs("NOT_FOUND"),
    );
    // Same answer as for a task that does not exist: no oracle for other users' task ids.
    const missing = (await bob.show("999").catch((e: unknown) => e)) as GridtuneError;
    const other = (await bob.show(taskId).catch((e: unknown) => e)) as GridtuneError;
    assert.equal(other.message.replace(taskId, "N"), missing.message.replace("999", "N"));

    const afterwards = await alice.show(taskId);
    assert.equal(afterwards.state, "running", "bob's kill/pause did not apply");
    assert.equal(afterwards.user, "alice");
    assert.ok(afterwards.counts.jobs >= before.counts.jobs);
    assert.deepEqual(
      (await alice.call("list", {})).tasks.map((t) => t.taskId),
      [taskId],
    );
    // Steering logged each refusal with the caller and the real owner.
    const refusals = logs.lines.filter(
      (l) => /api request refused/.test(l) && /user=bob/.test(l) && /owner=alice/.test(l),
    );
    for (const verb of ["show", "kill", "pause", "resume", "retry", "download"])
      assert.ok(
        refusals.some((l) => l.includes(`verb=${verb} `)),
        `no refusal logged for ${verb}: ${refusals.join("\n")}`,
      );
    assert.equal((await alice.call("kill", { taskId })).state, "killed", "the owner still controls it");
  });

  it("a submit whose sandboxKey is another user's upload is FORBIDDEN, and logged", async () => {
    const alice = await stack.connect("alice");
    const bob = await stack.connect("bob");
    const { key } = await bob.call("upload", { size: 10 });
    assert.match(key, /^uploads\/bob\//);
    const before = (await alice.call("list", {})).tasks.length;
    const name = key.slice("uploads/bob/".length);
    for (const sandboxKey of [
      key,
      `uploads/alice/../bob/${name}`, // a URL client would normalise this to bob's object
      `uploads/alice/x/../../bob/${name}`,
      `tasks/1/sandbox.tgz`,
      `uploads/alicex/${name}`,
    ]) {
      await assert.rejects(alice.submit(stepsTask({ sandboxKey })), refusedAs("FORBIDDEN"), sandboxKey);
    }
    assert.equal((await alice.call("list", {})).tasks.length, before, "no task was created");
    assert.ok(logs.lines.some((l) => /api request refused/.test(l) && /code=FORBIDDEN/.test(l)));
  });
});

describe("presigned URLs", { timeout: 60_000 }, () => {
  let stack: TestStack;
  let storage: Storage;
  let dir: string;
  before(async () => {
    stack = await startTestStack({ agents: 0 });
    dir = await mkdtemp(join(tmpdir(), "gt-presign-"));
    storage = new Storage({
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      bucket: "gridtune",
      ...stack.s3.credentials,
      presignTtlSeconds: 1,
    });
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("are refused by S3 after expiry; the agent says 'expired' and never shows the query", async () => {
    await storage.put("tasks/x/in.txt", "payload");
    const get = await storage.presignGet("tasks/x/in.txt");
    const put = await storage.presignPut("tasks/x/out.txt", 3);
    const fresh = await storage.presignGet("tasks/x/in.txt", 300);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await download(fresh, join(dir, "ok.txt"), { maxBytes: 100 }), 7, "a live URL works");
    const noRetry = { attempts: 3, baseDelayMs: 10, maxDelayMs: 10, requestTimeoutMs: 5000 };
    const leaks = (e: unknown) => {
      const text = `${String(e)} ${JSON.stringify(e)} ${(e as Error).stack ?? ""}`;
      assert.doesNotMatch(text, /X-Amz-Signature|X-Amz-Credential|\?/);
      return true;
    };
    await assert.rejects(download(get, join(dir, "in.txt"), { maxBytes: 100, retry: noRetry }), (e) => {
      assert.ok(e instanceof GridtuneError);
      assert.equal(e.code, "STORAGE_FAILED");
      assert.match(e.message, /download of .*\/gridtune\/tasks\/x\/in\.txt: the presigned URL has expired/);
      assert.equal(e.retryable, false);
      return leaks(e);
    });
    await writeFile(join(dir, "out.txt"), "abc");
    await assert.rejects(upload(put, join(dir, "out.txt"), { retry: noRetry }), (e) => {
      assert.match((e as Error).message, /upload to .*tasks\/x\/out\.txt: the presigned URL has expired/);
      return leaks(e);
    });
    assert.equal(await storage.head("tasks/x/out.txt"), null, "nothing was stored");
  });
});

describe("artifacts that do not match the upload", { timeout: 120_000 }, () => {
  let stack: TestStack;
  let nc: NatsConnection | undefined;
  let dir: string;
  const logs = captureLogs();
  before(async () => {
    // A long lease: the real agent is killed and its identity used while the job is still leased.
    stack = await startTestStack({ agents: 1, slotsPerAgent: 1, leaseMs: 60_000, logger: logs.logger });
    dir = await mkdtemp(join(tmpdir(), "gt-artifacts-"));
  });
  after(async () => {
    await nc?.close();
    await stack?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("a size or ETag that differs from the stored object: the artifact is dropped, logged, not counted", async () => {
    const api = await stack.connect();
    const taskId = await api.submit(
      stepsTask({ maxPoints: 1, nParallelEvaluation: 1 }, { steps: 300, delay: 0.1 }),
    );
    const running = await api.waitFor(taskId, (d) => d.points[0]?.state === "running", 30_000);
    assert.equal(running.points[0]?.agent, "a1");
    const jobId = `t${taskId}-p0-j1`;
    // The legitimately leased agent turns hostile: its process is replaced by a forger with its seed.
    await stack.agents[0]!.kill();
    const identity = agentIdentity(stack.site, "a1");
    nc = await connectNats({
      servers: stack.nats.url,
      seedFile: stack.store.seedFile(identity),
      caFile: stack.nats.caFile,
      identity,
      logger: () => undefined,
    });
    const request = async (req: AgentRequest) =>
      AgentReply.parse((await nc!.request(subjects.heartbeat(stack.site, "a1"), JSON.stringify(req))).json());
    const grant = await request({
      type: "presign",
      jobId,
      attempt: 1,
      artifacts: [
        { kind: "checkpoint", size: 60 },
        { kind: "metrics", size: 60 },
        { kind: "log", size: 10 },
        { kind: "output", size: 20 },
      ],
    });
    assert.equal(grant.type, "presigned");
    const urls = new Map(grant.type === "presigned" ? grant.uploads.map((u) => [u.kind, u]) : []);
    // The signed content-length is enforced by S3 (security-s3.test.ts): the agent uploads what it
    // declared to S3, then claims other sizes or ETags in its reports.
    const put = async (kind: string, bytes: number) => {
      const file = join(dir, kind);
      await writeFile(file, "x".repeat(bytes));
      const r = await upload(urls.get(kind as never)!.url, file);
      return { kind: kind as never, key: urls.get(kind as never)!.key, ...r };
    };
    const checkpoint = await put("checkpoint", 60);
    const metrics = await put("metrics", 60);
    const log = await put("log", 10);
    const output = await put("output", 20);

    const steering = stack.steering as SteeringService;
    const ignored = steering.ingest!.ignored;
    const js = jetstream(nc);
    const publish = (r: AgentReport) =>
      js.publish(subjects.results(stack.site, "a1", jobId), JSON.stringify(r));
    await publish({
      type: "checkpoint",
      jobId,
      attempt: 1,
      artifact: { ...checkpoint, size: 100 },
      resource: 5,
    });
    await publish({
      type: "result",
      jobId,
      attempt: 1,
      status: "ok",
      loss: 0.5,
      metrics: { loss: 0.5 },
      resource: 300,
      error: null,
      output: null,
      artifacts: [
        { ...metrics, size: 100 },
        log,
        { ...output, etag: "0123456789abcdef0123456789abcdef" },
        // A real object with its true size and ETag, but not this attempt's metrics key.
        { ...checkpoint, kind: "metrics" },
      ],
      missing: [],
      startedAt: Date.now() - 1000,
      finishedAt: Date.now(),
      exitCode: 0,
      failureClass: null,
    });
    const d = await api.waitFinished(taskId, 30_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done");
    assert.equal(p.checkpointKey, null, "the short checkpoint was not recorded");
    assert.deepEqual(p.metricsKeys, [], "the short metrics archive was not recorded");
    assert.deepEqual(p.logKeys, [log.key], "the matching log was kept");
    assert.equal(
      steering.ingest!.ignored - ignored,
      4,
      "checkpoint, metrics, output and the foreign key dropped",
    );
    assert.ok(
      logs.lines.some(
        (l) => /report ignored: artifact is not at this attempt's key/.test(l) && l.includes(checkpoint.key),
      ),
      "the foreign key was logged",
    );
    const dropped = logs.lines.filter((l) => /report ignored: artifact does not match the upload/.test(l));
    for (const a of [checkpoint, metrics, output])
      assert.ok(
        dropped.some((l) => l.includes(a.key)),
        `no log line for ${a.key}`,
      );
    // Nothing of the dropped artifacts can be downloaded through steering.
    const items = (await api.call("download", { taskId, kinds: ["metrics", "log", "checkpoint"] })).items;
    assert.deepEqual(
      items.map((i) => i.kind),
      ["log"],
    );
  });
});

describe("a removed agent mid-job", { timeout: 120_000 }, () => {
  let stack: TestStack;
  let dir: string;
  before(async () => {
    stack = await startTestStack({ agents: 2, slotsPerAgent: 1, leaseMs: 3000, heartbeatMs: 500 });
    dir = await mkdtemp(join(tmpdir(), "gt-removed-"));
  });
  after(async () => {
    await stack?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("is cut off at once; its lease lapses, the job is retried elsewhere, nothing it sends counts", async () => {
    const api = await stack.connect();
    const taskId = await api.submit(
      stepsTask({ maxPoints: 1, nParallelEvaluation: 1 }, { steps: 30, delay: 0.1 }),
    );
    const running = await api.waitFor(taskId, (d) => d.points[0]?.state === "running", 30_000);
    const victim = running.points[0]!.agent!;
    const identity = agentIdentity(stack.site, victim);
    const kept = join(dir, "victim.nk");
    await copyFile(stack.store.seedFile(identity), kept); // what the removed site still holds
    const steering = stack.steering as SteeringService;
    const ignored = steering.ingest!.ignored;

    // What `gridtune-steering admin remove-agent` does: drop the key, rewrite, reload (SIGHUP).
    assert.equal((await stack.store.remove(identity)).length, 1);
    await stack.nats.reload();
    const name = connectionName(identity);
    await eventually("the removed agent's connection is closed", async () => {
      const connz = (await (await fetch(`${stack.nats.monitorUrl}/connz?limit=1024`)).json()) as {
        connections?: { name?: string }[];
      };
      return !(connz.connections ?? []).some((c) => c.name === name);
    });
    await eventually("the agent logs why", async () =>
      /closed: .*Authorization Violation.*identity was removed/.test(
        await readFile(join(stack.dir, "logs", `agent-${victim}.log`), "utf8"),
      ),
    );
    // It cannot come back with the seed it kept, so it cannot publish anything.
    await assert.rejects(
      connectNats({ servers: stack.nats.url, seedFile: kept, caFile: stack.nats.caFile, identity }),
      (e) => e instanceof UnavailableError && /Authorization Violation/.test(e.message),
    );

    const d = await api.waitFinished(taskId, 60_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done");
    assert.equal(p.attempts, 2, "the lapsed attempt was retried");
    assert.notEqual(p.agent, victim);
    assert.equal(d.counts.done, 1);
    const x = p.values.x as number;
    assert.ok(Math.abs((p.loss as number) - ((x - 3) ** 2 + 1 / 30)) < 1e-9, "the real result counted");
    assert.ok(
      p.reports.every((r) => r.resource >= 1),
      "progress reports are well-formed (none forged by the removed agent)",
    );
    assert.equal(steering.ingest!.ignored, ignored, "the removed agent got nothing onto the stream");
  });
});

describe("the admin CLI with an invalid identity name", { timeout: 60_000 }, () => {
  it("exits 2 with a clear message and writes nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-admin-cli-"));
    try {
      const cases: string[][] = [
        ["add-site", "cern.ch"],
        ["add-agent", "cern", "a*"],
        ["add-user", "Alice"],
        ["add-user", "bob smith"],
        ["add-site", "cern", "--agents", "a1,a>"],
      ];
      for (const args of cases) {
        const r = await runCli(["admin", "--dir", dir, ...args]);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /^gridtune-steering: .* is not a valid name: use 1–32 characters/);
        assert.match(r.stderr, /no '\.', '\*', '>', spaces or uppercase/);
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
        assert.equal(r.stdout, "");
      }
      await assert.rejects(readFile(join(dir, "identities.json")), /ENOENT/, "nothing was written");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const runCli = (args: string[]) => runBin("gridtune-steering", args);
