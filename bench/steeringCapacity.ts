// Steering's own capacity: null evaluations through the real steering service, nats-server (TLS,
// nkeys) and the real Agent class (claims, leases, heartbeats, working directories, input.json,
// output.json, result reports), with one thing replaced: the evaluation itself. A bench-only
// runtime writes output.json in the working directory instead of starting a process, so the
// figure says what steering and the protocol sustain when process creation (about 1 ms of CPU per
// evaluation on this machine, see docs/benchmarks.md) is not in the way. Steering runs as its own
// process (its CPU is read from /proc); the agents run in this process.
//   node --import tsx bench/steeringCapacity.ts [--n 3000] [--agents 2] [--slots 32]
import { readFile, writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Agent } from "../evaluator/agent.ts";
import type { RunOutcome, RunSpec, Runtime } from "../evaluator/runtime/types.ts";
import { agentIdentity, userIdentity } from "../protocol/identity.ts";
import { createLogger } from "../protocol/log.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import { startEmbeddedStack, type ServiceProcess } from "../stack/embedded.ts";
import { StackClient } from "../test/harness/stack.ts";
import { nullTask, waitEnded } from "./nullTask.ts";
import { arg } from "./args.ts";

/** Stands in for the payload: writes output.json as `sh -c 'echo … > output.json'` would. */
class NullRuntime implements Runtime {
  readonly kind = "process" as const;
  async run(spec: RunSpec): Promise<RunOutcome> {
    const t0 = Date.now();
    await writeFile(join(spec.workDir, "output.json"), '{"status":0,"loss":1}\n');
    return {
      exitCode: 0,
      timedOut: false,
      oomKilled: false,
      stopped: false,
      durationMs: Date.now() - t0,
      logBytes: 0,
      logTruncated: false,
    };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 10 ms). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function benchSteeringCapacity(): Promise<void> {
  const n = arg("n", 3000);
  const nAgents = arg("agents", 2);
  const slots = arg("slots", 32);
  const dir = await mkdtemp(join(tmpdir(), "gridtune-bench-"));
  const logger = createLogger("bench", { level: "warn" });
  const stack = await startEmbeddedStack({ dir, agents: 0, mode: "process", logger, leaseMs: 10_000 });
  const agents: Agent[] = [];
  try {
    for (let i = 1; i <= nAgents; i++) {
      const created = await stack.store.ensure(agentIdentity(stack.site, `null${i}`));
      if (created.created) await stack.nats.reload();
      const agent = new Agent({
        site: stack.site,
        agent: `null${i}`,
        natsUrl: stack.nats.url,
        seedFile: created.seedFile,
        caFile: stack.nats.caFile,
        slots: Array.from({ length: slots }, () => []),
        runtime: new NullRuntime(),
        trustedUsers: [stack.client.user],
        workRoot: join(dir, "work", `null${i}`),
        policy: {
          allowNetwork: false,
          maxMemoryBytes: 1024 ** 3,
          maxNanoCpus: 1e9,
          pidsLimit: 64,
          maxLogBytes: 1024 * 1024,
          maxWallClockMs: 60_000,
          stopGraceMs: 1000,
          maxInputBytes: 1024 ** 3,
        },
        logger,
      });
      await agent.start();
      agents.push(agent);
    }
    const nc = await connectNats({
      servers: stack.nats.url,
      seedFile: stack.client.seedFile,
      caFile: stack.nats.caFile,
      identity: userIdentity(stack.client.user),
    });
    const api = new StackClient(nc, stack.client.user);
    const steeringPid = (stack.steering as ServiceProcess).child.pid!;
    const natsPid = stack.nats.pid;
    const parallel = nAgents * slots;
    const [s0, n0] = [await cpuSeconds(steeringPid), await cpuSeconds(natsPid)];
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const taskId = await api.submit(nullTask(n, parallel, "null"));
    const d = await waitEnded(api, taskId);
    const seconds = (performance.now() - t0) / 1000;
    const steeringCpu = (await cpuSeconds(steeringPid)) - s0;
    const natsCpu = (await cpuSeconds(natsPid)) - n0;
    const self = process.cpuUsage(self0);
    const agentCpu = (self.user + self.system) / 1e6;
    const done = Math.max(1, d.counts.done);
    const per = (s: number) => `${((s * 1000) / done).toFixed(2)} ms per evaluation`;
    const rows = [
      ["evaluations", `${d.counts.done} (${d.counts.failed} failed)`],
      ["wall time", `${seconds.toFixed(1)} s`],
      ["throughput", `${(d.counts.done / seconds).toFixed(0)} evaluations/s`],
      ["steering CPU", per(steeringCpu)],
      ["nats-server CPU", per(natsCpu)],
      ["agents CPU", `${per(agentCpu)} (${nAgents} agents × ${slots} slots, one process)`],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k!.padEnd(16)} ${v}\n`);
    await nc.close();
  } finally {
    await Promise.allSettled(agents.map((a) => a.close(2000)));
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchSteeringCapacity();
}
