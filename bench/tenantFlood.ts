// One tenant against the others (issue 14, item 5): steering's RSS and another user's `list`
// latency before, during and after a flood, on the embedded stack (steering as its own process,
// RSS from /proc). The flood is the attack's: 55 submissions of ~780 KB specs (let through by an
// admin override of spec_bytes and active_tasks, then killed in batches), plus many small tasks
// submitted and killed; then a steering restart, timed, and the same figures again. Phase one
// first shows what the defaults do with the same flood: every large spec is refused unparsed.
// A second part runs steering in this process to read its heap after a full GC, round after
// round of the same flood: what stays in memory per finished task, without the allocator's noise.
//   node --import tsx bench/tenantFlood.ts [--big 55] [--kb 780] [--small 300] [--rounds 3]
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { GridtuneError } from "../protocol/errors.ts";
import { userIdentity } from "../protocol/identity.ts";
import { createLogger } from "../protocol/log.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import type { TaskSpecInput } from "../protocol/taskConfig.ts";
import { setLimits } from "../steering/security/adminLimits.ts";
import type { SteeringService } from "../steering/shell/service.ts";
import { startEmbeddedStack, type EmbeddedStack, type ServiceProcess } from "../stack/embedded.ts";
import { StackClient } from "../test/harness/stack.ts";
import { arg } from "./args.ts";

/** Resident memory of a process, MB. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

function task(specKb: number): TaskSpecInput {
  const n = Math.max(1, Math.ceil((specKb * 1024) / 33));
  return {
    outDS: "user.flood.big/",
    evaluationContainer: "none",
    evaluationExec: "true",
    searchSpace: {
      x: { method: "uniform", dimension: { low: 0, high: 1 } },
      pad: {
        method: "categorical",
        dimension: {
          categories: Array.from({ length: n }, (_, i) => `c${String(i).padStart(8, "0")}-${"x".repeat(19)}`),
        },
      },
    } as never,
    maxPoints: 4,
    nParallelEvaluation: 2,
    nPointsPerIteration: 2,
  };
}

async function connect(stack: EmbeddedStack, user: string): Promise<StackClient> {
  const created = await stack.store.ensure(userIdentity(user));
  if (created.created) await stack.nats.reload();
  const nc = await connectNats({
    servers: stack.nats.url,
    seedFile: created.seedFile,
    caFile: stack.nats.caFile,
    identity: userIdentity(user),
  });
  return new StackClient(nc, user);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The median of `n` `list` calls of `c`, ms. */
async function listMs(c: StackClient, n = 15): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await c.call("list", { from: 0 }, 60_000);
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export async function benchTenantFlood(): Promise<void> {
  await floodProcess();
  await floodHeap();
}

async function floodProcess(): Promise<void> {
  const big = arg("big", 55);
  const kb = arg("kb", 780);
  const small = arg("small", 300);
  const dir = await mkdtemp(join(tmpdir(), "gridtune-bench-"));
  const logger = createLogger("bench", { level: "warn" });
  const stack = await startEmbeddedStack({ dir, agents: 0, mode: "process", logger });
  const row = (k: string, v: string) => {
    process.stdout.write(`${k.padEnd(44)} ${v}\n`);
  };
  try {
    const other = await connect(stack, "other");
    const flood = await connect(stack, "flood");
    const pid = () => (stack.steering as ServiceProcess).child.pid!;
    for (let i = 0; i < 3; i++) await other.submit(task(1));
    const spec = task(kb);
    const bytes = Buffer.byteLength(JSON.stringify({ verb: "submit", spec }));
    const rss0 = await rssMb(pid());
    const list0 = await listMs(other);
    row("spec size", `${(bytes / 1024).toFixed(0)} KB`);
    row("before: steering RSS", `${rss0.toFixed(0)} MB`);
    row("before: other user's list", `${list0.toFixed(1)} ms`);

    // 1. the defaults: each large spec is refused before it is parsed
    let refused = 0;
    for (let i = 0; i < big; i++)
      await flood.submit(spec).catch((e: unknown) => {
        if (e instanceof GridtuneError && e.code === "LIMIT_EXCEEDED") refused++;
        else throw e;
      });
    row("defaults: large specs refused", `${refused}/${big}`);
    row("defaults: steering RSS after them", `${(await rssMb(pid())).toFixed(0)} MB`);

    // 2. an admin lets this user through: the flood is submitted, and killed in batches
    await setLimits(dir, "flood", {
      specBytes: String(bytes + 1024),
      activeTasks: "20",
      submitsPerMinute: String(2 * (big + small) + 10),
    });
    const during: number[] = [];
    let rssPeak = 0;
    /** The attack once: the large specs in batches of 10 (each killed), then the small tasks. */
    const floodOnce = async () => {
      const ids: string[] = [];
      for (let i = 0; i < big; i += 10) {
        const batch = Math.min(10, big - i);
        const submits = Promise.all(Array.from({ length: batch }, () => flood.submit(spec)));
        during.push(await listMs(other, 3));
        ids.push(...(await submits));
        rssPeak = Math.max(rssPeak, await rssMb(pid()));
        for (const id of ids.splice(0)) await flood.call("kill", { taskId: id });
      }
      for (let i = 0; i < small; i++) {
        const id = await flood.submit(task(1));
        await flood.call("kill", { taskId: id });
        if (i % 50 === 0) during.push(await listMs(other, 3));
      }
      // V8 hands memory back to the system only after some idle time
      await new Promise((r) => setTimeout(r, 10_000));
    };
    await floodOnce();
    row("during: other user's list (median)", `${median(during).toFixed(1)} ms`);
    row("during: steering RSS (peak)", `${rssPeak.toFixed(0)} MB`);
    const rss1 = await rssMb(pid());
    const list1 = await listMs(other);
    row("after the flood: steering RSS", `${rss1.toFixed(0)} MB`);
    row("after the flood: other user's list", `${list1.toFixed(1)} ms`);
    // the same flood again: memory must not grow with the number of finished tasks
    await floodOnce();
    const rssTwice = await rssMb(pid());
    row("after a second flood: steering RSS", `${rssTwice.toFixed(0)} MB`);
    row("after a second flood: other user's list", `${(await listMs(other)).toFixed(1)} ms`);
    const tasks = (await flood.call("list", { from: 0 })).tasks.length;
    row("flood's tasks listed", String(tasks));

    // 3. restart: start-up reads the active tasks' logs and one summary per finished task
    await (stack.steering as ServiceProcess).stop();
    const t0 = performance.now();
    stack.steering = await stack.startSteering();
    row("restart: steering ready in", `${((performance.now() - t0) / 1000).toFixed(2)} s`);
    const list2 = await listMs(other);
    const rss2 = await rssMb(pid());
    row("after restart: steering RSS", `${rss2.toFixed(0)} MB`);
    row("after restart: other user's list", `${list2.toFixed(1)} ms`);
    const t1 = performance.now();
    const first = (await flood.call("list", { from: 0 })).tasks[0]!.taskId;
    await flood.call("show", { taskId: first, pointsFrom: 0, pointsLimit: 100 });
    row("after restart: show of a finished large task", `${(performance.now() - t1).toFixed(0)} ms`);
    row(
      "ratios",
      `RSS after/before ${(rss1 / rss0).toFixed(2)}, after two floods/after one ${(rssTwice / rss1).toFixed(2)}, after restart/before ${(rss2 / rss0).toFixed(2)}; ` +
        `list during/before ${(median(during) / list0).toFixed(2)}, after/before ${(list1 / list0).toFixed(2)}`,
    );
    await Promise.allSettled([other.nc.close(), flood.nc.close()]);
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Steering's heap after a full GC (steering in this process), after each round of the flood. */
async function floodHeap(): Promise<void> {
  const big = arg("big", 55);
  const kb = arg("kb", 780);
  const small = arg("small", 300);
  const rounds = arg("rounds", 3);
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heapMb = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 200));
    }
    return process.memoryUsage().heapUsed / 2 ** 20;
  };
  const dir = await mkdtemp(join(tmpdir(), "gridtune-bench-"));
  const logger = createLogger("bench", { level: "error" });
  const stack = await startEmbeddedStack({ dir, agents: 0, mode: "inline", logger });
  try {
    const flood = await connect(stack, "flood");
    await setLimits(dir, "flood", { specBytes: "2000000", activeTasks: "20", submitsPerMinute: "1000000" });
    const state = (stack.steering as SteeringService).committer!.state;
    const spec = task(kb);
    process.stdout.write(
      `${"steering in process: heap after GC".padEnd(44)} ${(await heapMb()).toFixed(1)} MB\n`,
    );
    for (let round = 1; round <= rounds; round++) {
      for (let i = 0; i < big; i += 10) {
        const n = Math.min(10, big - i);
        const ids = await Promise.all(Array.from({ length: n }, () => flood.submit(spec)));
        for (const id of ids) await flood.call("kill", { taskId: id });
      }
      for (let i = 0; i < small; i++) await flood.call("kill", { taskId: await flood.submit(task(1)) });
      await new Promise((r) => setTimeout(r, 500)); // the last retirements
      process.stdout.write(
        `${`after flood ${round}: heap after GC`.padEnd(44)} ${(await heapMb()).toFixed(1)} MB ` +
          `(${state.engines.size} tasks in memory, ${state.finished.size} finished)\n`,
      );
    }
    await flood.nc.close();
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchTenantFlood();
}
