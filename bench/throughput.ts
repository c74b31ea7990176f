// End-to-end throughput of null evaluations (issue 5's target: ≥ 2,000 evaluations/s with the
// process runtime on this 2-core machine) and steering's CPU per evaluation. A real stack
// (nats-server with TLS and nkeys, s3rver, steering in this process, agent processes) runs one
// task of N points whose payload only writes output.json; throughput is points evaluated over
// the time from submission to the task's end. Steering's CPU is this process's CPU time over the
// same span (the agents are separate processes).
//   node --import tsx bench/throughput.ts [--n 3000] [--agents 2] [--slots 16]
import { pathToFileURL } from "node:url";
import { startTestStack } from "../test/harness/stack.ts";
import { nullTask, waitEnded } from "./nullTask.ts";
import { arg } from "./args.ts";

const PAYLOAD = String.raw`echo {\"status\":0,\"loss\":1} > output.json`;

export async function benchThroughput(): Promise<void> {
  const n = arg("n", 3000);
  const agents = arg("agents", 2);
  const slots = arg("slots", 16);
  const stack = await startTestStack({ agents, slotsPerAgent: slots, runtime: "process" });
  try {
    const api = await stack.connect();
    const parallel = agents * slots;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const taskId = await api.submit(nullTask(n, parallel, `sh -c '${PAYLOAD}'`));
    const d = await waitEnded(api, taskId);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const rows = [
      ["evaluations", String(d.counts.done)],
      ["failed", String(d.counts.failed)],
      ["wall time", `${seconds.toFixed(1)} s`],
      ["throughput", `${(d.counts.done / seconds).toFixed(1)} evaluations/s`],
      ["steering CPU", `${(cpuMs / Math.max(1, d.counts.done)).toFixed(2)} ms per evaluation`],
      ["agents × slots", `${agents} × ${slots}`],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k!.padEnd(16)} ${v}\n`);
  } finally {
    await stack.cleanup();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchThroughput();
}
