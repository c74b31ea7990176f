// The integration-test harness: a real embedded stack (nats-server with TLS and nkeys, s3rver,
// steering, agents) in a temporary directory on OS-chosen ports, a typed client for the steering
// API as a given user, and waiting helpers. Everything is removed after the test.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { steeringIdentity, userIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { ApiReplies, type ApiRequest, type TaskDetail } from "../../protocol/api.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { subjects } from "../../protocol/subjects.ts";
import { showAll } from "../../client/paging.ts";
import { type TaskSpecInput } from "../../protocol/taskConfig.ts";
import { GridtuneError } from "../../protocol/errors.ts";
import { ROOT, startEmbeddedStack, type EmbeddedStack, type StackOptions } from "../../stack/embedded.ts";

export const FIXTURES = new URL("../fixtures", import.meta.url).pathname;
export const STEPS_PAYLOAD = join(FIXTURES, "payloads", "steps.py");

export interface TestStack extends EmbeddedStack {
  /** A client connection as `user` (created on demand; the server is reloaded for a new user). */
  connect(user?: string): Promise<StackClient>;
  cleanup(): Promise<void>;
}

export class StackClient {
  constructor(
    readonly nc: NatsConnection,
    readonly user: string,
  ) {}

  async call<V extends keyof typeof ApiReplies>(
    verb: V,
    body: Omit<Extract<ApiRequest, { verb: V }>, "verb">,
    timeoutMs = 15_000,
  ) {
    const m = await this.nc.request(subjects.api(this.user, verb), JSON.stringify({ verb, ...body }), {
      timeout: timeoutMs,
    });
    const r = m.json<{
      ok: boolean;
      data?: unknown;
      error?: { code: string; message: string; retryable: boolean };
    }>();
    if (!r.ok) throw GridtuneError.fromWire(r.error as never);
    return ApiReplies[verb].parse(r.data) as ReturnType<(typeof ApiReplies)[V]["parse"]>;
  }

  async submit(spec: TaskSpecInput): Promise<string> {
    return (await this.call("submit", { spec: spec as never })).taskId;
  }

  /** The task with all its points (page by page, as phpo fetches them). */
  show(taskId: string): Promise<TaskDetail> {
    return showAll((pointsFrom, pointsLimit) => this.call("show", { taskId, pointsFrom, pointsLimit }));
  }

  /** Polls `show` until `done(detail)` or the deadline; returns the last detail. */
  async waitFor(taskId: string, done: (d: TaskDetail) => boolean, timeoutMs = 120_000): Promise<TaskDetail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await this.show(taskId).catch((e: unknown) => {
        if (e instanceof GridtuneError && e.code !== "UNAVAILABLE") throw e;
        return null; // steering restarting
      });
      if (d && done(d)) return d;
      if (Date.now() > deadline) {
        throw new Error(
          `task ${taskId} did not reach the condition within ${timeoutMs} ms; last: ${JSON.stringify(d?.counts)} ${d?.state}`,
        );
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  waitFinished(taskId: string, timeoutMs?: number): Promise<TaskDetail> {
    return this.waitFor(taskId, (d) => d.state === "finished" || d.state === "killed", timeoutMs);
  }
}

/** A NATS connection with steering's own identity (to read GTLOG back, as steering would). */
export function connectAsSteering(stack: EmbeddedStack): Promise<NatsConnection> {
  return connectNats({
    servers: stack.nats.url,
    seedFile: stack.store.seedFile(steeringIdentity()),
    caFile: stack.nats.caFile,
    identity: steeringIdentity(),
    logger: () => undefined,
  });
}

/**
 * The users the tests connect as. With the process runtime (the harness default) a site accepts
 * only the users it trusts, so the test stack's site trusts exactly these.
 */
export const TEST_USERS = ["demo", "alice", "bob"];

export async function startTestStack(o: StackOptions = {}): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), "gridtune-test-"));
  const quiet = createLogger("test-stack", { level: (process.env.GRIDTUNE_TEST_LOG as never) ?? "warn" });
  let stack: EmbeddedStack;
  try {
    stack = await startEmbeddedStack({
      dir,
      runtime: "process",
      mode: "inline",
      leaseMs: 4000,
      heartbeatMs: 1000,
      logger: quiet,
      trustedUsers: TEST_USERS,
      ...o,
      // retries after a short back-off, so tests of failures stay quick (a test may set its own)
      env: { GRIDTUNE_RETRY_BASE_MS: "200", GRIDTUNE_RETRY_MAX_MS: "2000", ...o.env },
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const clients: StackClient[] = [];
  const t = stack as TestStack;
  t.connect = async (user = "demo") => {
    const created = await stack.store.ensure(userIdentity(user));
    if (created.created) await stack.nats.reload();
    const nc = await connectNats({
      servers: stack.nats.url,
      seedFile: created.seedFile,
      caFile: stack.nats.caFile,
      identity: userIdentity(user),
      logger: () => undefined,
    });
    const c = new StackClient(nc, user);
    clients.push(c);
    return c;
  };
  t.cleanup = async () => {
    await Promise.allSettled(clients.map((c) => c.nc.close()));
    await stack.stop();
    if (!process.env.GRIDTUNE_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
  };
  return t;
}

/** A small task on the steps payload, run with the host's python3 (process runtime). */
/**
 * The restart tests' task: 6 points of the steps payload, 2 at a time, the random sampler at seed
 * 42, so an undisturbed run and a disturbed one can be compared point for point (outcomeOf).
 */
export const seededStepsTask = (): TaskSpecInput =>
  stepsTask(
    { maxPoints: 6, nParallelEvaluation: 2, sampler: { type: "random", seed: 42 } },
    { steps: 8, delay: 0.1 },
  );

/** What a restart must not change: each point's values, loss and state. */
export const outcomeOf = (d: TaskDetail) =>
  d.points.map((p) => ({ id: p.pointId, values: p.values, loss: p.loss, state: p.state }));

export function stepsTask(
  over: Partial<TaskSpecInput> = {},
  pointDefaults: Record<string, unknown> = {},
): TaskSpecInput {
  const fixed = Object.entries(pointDefaults).map(([k, v]) => [
    k,
    { method: "categorical", dimension: { categories: [v] } },
  ]);
  return {
    outDS: "user.test.steps/",
    evaluationContainer: "gridtune/python:1",
    evaluationExec: `/usr/bin/python3 ${STEPS_PAYLOAD}`,
    searchSpace: {
      x: { method: "uniform", dimension: { low: 0, high: 6 } },
      ...Object.fromEntries(fixed),
    } as never,
    maxPoints: 4,
    nParallelEvaluation: 2,
    nPointsPerIteration: 2,
    ...over,
  };
}

/**
 * Runs one of the project's commands (bin/<name>) as a subprocess and collects its output. With
 * `env`, the command gets only PATH and that environment (a user's shell, not the test's); without,
 * it inherits the test's.
 */
export function runBin(
  name: string,
  args: string[],
  o: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", name), ...args], {
      cwd: o.cwd,
      env: o.env ? { PATH: process.env.PATH ?? "", ...o.env } : process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A plain user's environment for phpo as a subprocess: a connection profile (0600, in `work`) and
 * its own state directory; no S3 endpoint and no S3 keys. The user must exist (stack.connect).
 */
export async function plainUserEnv(
  stack: TestStack,
  work: string,
  user: string,
): Promise<Record<string, string>> {
  const file = join(work, `${user}.json`);
  const profile = {
    natsUrl: stack.nats.url,
    user,
    seedFile: stack.store.seedFile(userIdentity(user)),
    caFile: stack.nats.caFile,
  };
  await writeFile(file, JSON.stringify(profile), { mode: 0o600 });
  return { GRIDTUNE_CONFIG: file, XDG_STATE_HOME: join(work, `state-${user}`) };
}
