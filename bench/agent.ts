// Evaluator-agent benchmark: the agent's time per evaluation against a bare `docker run` of the same
// image and command. A real stack (nats-server with TLS and nkeys, s3rver, steering in this
// process, one agent process with one slot) runs N sequential evaluations of a trivial payload;
// each is timed from its job-dispatched commit to its job-finished commit (steering's clock, read
// by wrapping the in-process committer). The baselines run the same command in the same image N
// times: `docker run --rm --network none` with the working dir bind-mounted (the CLI, what a user
// would type), and dockerode create/start/wait/remove (the same calls without the CLI process).
// The rounds interleave (stack, dockerode, CLI) so that a busy machine slows all sides alike.
// Then the same through the process runtime, against a bare spawn of the same command.
//   node --import tsx bench/agent.ts [--n 10] [--rounds 3]
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { LogEvent } from "../steering/core/events.ts";
import type { SteeringService } from "../steering/shell/service.ts";
import { BUSYBOX_IMAGE, dockerAvailable, ensureTestImages, testDocker } from "../test/harness/images.ts";
import { startTestStack, type TestStack } from "../test/harness/stack.ts";
import { arg } from "./args.ts";

/** The `sh -c` script; the exec string `sh -c '…'` passes it to sh as one argument, unchanged. */
const PAYLOAD = String.raw`echo {\"status\":0,\"loss\":1} > output.json`;

interface Phases {
  /** dispatch → result committed, per evaluation (ms). */
  total: number[];
  /** dispatch → claim committed. */
  claim: number[];
  /** agent: claim granted → payload run and verdict (its startedAt → finishedAt). */
  agentRun: number[];
  /** agent finishedAt → result committed (uploads, publish, ingest with S3 HEAD). */
  report: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;

/** Records when the events the timing needs are stored (in-process steering only). */
type Times = Map<string, Partial<Record<LogEvent["type"], number>> & { ev?: LogEvent }>;
const instrumented = new WeakMap<TestStack, Times>();

function instrument(stack: TestStack): Times {
  const known = instrumented.get(stack);
  if (known) return known;
  const service = stack.steering as SteeringService;
  const c = service.committer!;
  const times: Times = new Map();
  instrumented.set(stack, times);
  // Every event goes through stage() (commit() too); the time recorded is when it is stored.
  const stage = c.stage.bind(c);
  c.stage = (ev: LogEvent) => {
    const staged = stage(ev);
    if ("jobId" in ev) {
      void staged.durable.then(
        () => {
          const key = `${ev.jobId}#${ev.attempt}`;
          const t = times.get(key) ?? {};
          t[ev.type] = ev.type === "job-dispatched" ? ev.at : Date.now();
          if (ev.type === "job-finished") t.ev = ev;
          times.set(key, t);
        },
        () => undefined,
      );
    }
    return staged;
  };
  return times;
}

/** N sequential evaluations through the stack's one agent; per-evaluation phases. */
async function throughStack(stack: TestStack, image: string, argv: string, n: number): Promise<Phases> {
  const times = instrument(stack);
  times.clear();
  const api = await stack.connect();
  const taskId = await api.submit({
    outDS: "user.bench.agent/",
    evaluationContainer: image,
    evaluationExec: argv,
    searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
    maxPoints: n,
    nParallelEvaluation: 1,
    nPointsPerIteration: 1,
  });
  const d = await api.waitFinished(taskId, 60_000 + n * 10_000);
  if (d.counts.done !== n)
    throw new Error(`bench task: ${d.counts.done} of ${n} done: ${d.points.find((p) => p.error)?.error}`);
  const out: Phases = { total: [], claim: [], agentRun: [], report: [] };
  for (const t of times.values()) {
    const ev = t.ev;
    if (!t["job-dispatched"] || !t["job-finished"] || ev?.type !== "job-finished") continue;
    out.total.push(t["job-finished"] - t["job-dispatched"]);
    out.claim.push((t["job-claimed"] ?? NaN) - t["job-dispatched"]);
    out.agentRun.push(ev.finishedAt - ev.startedAt);
    out.report.push(t["job-finished"] - ev.finishedAt);
  }
  return out;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** `docker run --rm --network none -v dir:/srv/workDir -w /srv/workDir IMAGE sh -c PAYLOAD`. */
async function dockerCli(n: number, root: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const dir = await mkdtemp(join(root, "cli-"));
    await chmod(dir, 0o777); // the image runs as a non-root user (the agent chowns instead)
    out.push(
      await timed(
        () =>
          new Promise<void>((resolve, reject) => {
            const c = spawn(
              "docker",
              [
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                `${dir}:/srv/workDir`,
                "-w",
                "/srv/workDir",
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                PAYLOAD,
              ],
              { stdio: "ignore" },
            );
            c.once("error", reject);
            c.once("exit", (code) =>
              code === 0 ? resolve() : reject(new Error(`docker run exited ${code}`)),
            );
          }),
      ),
    );
    await readFile(join(dir, "output.json"));
  }
  return out;
}

/** The same through the API: create, attach, start, wait, remove (what the CLI does, minus the CLI). */
async function dockerApi(n: number, root: string): Promise<number[]> {
  const docker = testDocker();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const dir = await mkdtemp(join(root, "api-"));
    await chmod(dir, 0o777);
    out.push(
      await timed(async () => {
        const c = await docker.createContainer({
          Image: BUSYBOX_IMAGE,
          Cmd: ["sh", "-c", PAYLOAD],
          WorkingDir: "/srv/workDir",
          HostConfig: { Binds: [`${dir}:/srv/workDir`], NetworkMode: "none" },
        });
        await c.start();
        await c.wait();
        await c.remove({ force: true });
      }),
    );
    await readFile(join(dir, "output.json"));
  }
  return out;
}

/** A bare spawn of `sh -c PAYLOAD` in a fresh directory (the process runtime's baseline). */
async function bareSpawn(n: number, root: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const dir = await mkdtemp(join(root, "sp-"));
    out.push(
      await timed(
        () =>
          new Promise<void>((resolve, reject) => {
            const c = spawn("sh", ["-c", PAYLOAD], { cwd: dir, stdio: "ignore" });
            c.once("error", reject);
            c.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`sh exited ${code}`))));
          }),
      ),
    );
  }
  return out;
}

function concat(a: Phases, b: Phases): Phases {
  return {
    total: [...a.total, ...b.total],
    claim: [...a.claim, ...b.claim],
    agentRun: [...a.agentRun, ...b.agentRun],
    report: [...a.report, ...b.report],
  };
}

const empty = (): Phases => ({ total: [], claim: [], agentRun: [], report: [] });

function phaseLine(label: string, p: Phases): string {
  return (
    `${label}: median ${fmt(median(p.total))} (mean ${fmt(mean(p.total))}) per evaluation; ` +
    `phases (medians): dispatch→claim ${fmt(median(p.claim))}, agent run ${fmt(median(p.agentRun))}, ` +
    `result→committed ${fmt(median(p.report))}`
  );
}

export async function benchAgent(): Promise<void> {
  const n = arg("n", 10);
  const rounds = arg("rounds", 3);
  const root = await mkdtemp(join(tmpdir(), "gt-bench-agent-"));
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  say(
    `Evaluator agent, ${rounds} rounds × ${n} sequential evaluations, 1 agent × 1 slot (Node ${process.version})`,
  );
  try {
    if (await dockerAvailable()) {
      await ensureTestImages();
      const stack = await startTestStack({
        agents: 1,
        slotsPerAgent: 1,
        runtime: "docker",
        allowedImages: [BUSYBOX_IMAGE],
      });
      let agent = empty();
      const cli: number[] = [];
      const api: number[] = [];
      try {
        // Warm-up: image resolution, first container, connections.
        await throughStack(stack, BUSYBOX_IMAGE, `sh -c '${PAYLOAD}'`, 2);
        await dockerCli(2, root);
        await dockerApi(2, root);
        for (let r = 0; r < rounds; r++) {
          agent = concat(agent, await throughStack(stack, BUSYBOX_IMAGE, `sh -c '${PAYLOAD}'`, n));
          api.push(...(await dockerApi(n, root)));
          cli.push(...(await dockerCli(n, root)));
        }
      } finally {
        await stack.cleanup();
      }
      say(phaseLine("docker runtime, agent", agent));
      say(`bare docker run (CLI): median ${fmt(median(cli))} (mean ${fmt(mean(cli))})`);
      say(`dockerode create/start/wait/remove: median ${fmt(median(api))} (mean ${fmt(mean(api))})`);
      say(
        `ratio agent / docker run: ${(median(agent.total) / median(cli)).toFixed(2)}× (target ≤ 1.1×); ` +
          `agent / dockerode: ${(median(agent.total) / median(api)).toFixed(2)}×`,
      );
    } else {
      say("docker runtime: skipped (no Docker daemon answers)");
    }

    const pstack = await startTestStack({ agents: 1, slotsPerAgent: 1, runtime: "process" });
    let proc = empty();
    const spawnT: number[] = [];
    try {
      await throughStack(pstack, "none", `sh -c '${PAYLOAD}'`, 2);
      for (let r = 0; r < rounds; r++) {
        proc = concat(proc, await throughStack(pstack, "none", `sh -c '${PAYLOAD}'`, n));
        spawnT.push(...(await bareSpawn(n, root)));
      }
    } finally {
      await pstack.cleanup();
    }
    say(phaseLine("process runtime, agent", proc));
    say(`bare spawn of sh -c: median ${fmt(median(spawnT))} (mean ${fmt(mean(spawnT))})`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  benchAgent().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
