// Standby steering's takeover time (docs/architecture.md, "Standby steering"): the embedded stack
// with two `gridtune-steering serve` processes; the leader is SIGKILLed and the clock runs until a
// user's `list` request is answered again (the standby noticed the lapsed lease, rebuilt from the
// log and serves). Round after round, the killed process is replaced by a fresh standby. Also
// prints the "took over" log line's own rebuild time. The lease TTL dominates: a killed leader's
// lease lives out its TTL, then the standby's next poll (every TTL/3) takes it.
//   node --import tsx bench/standbyTakeover.ts [--ttl-ms 10000] [--rounds 3]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../protocol/log.ts";
import { startEmbeddedStack, type ServiceProcess } from "../stack/embedded.ts";
import { startSteeringProcess, steeringProcessOf, type SteeringProcess } from "../test/harness/standby.ts";
import { StackClient } from "../test/harness/stack.ts";
import { connectNats } from "../protocol/natsConnect.ts";
import { userIdentity } from "../protocol/identity.ts";
import { arg } from "./args.ts";

const ttlMs = arg("ttl-ms", 10_000);
const rounds = arg("rounds", 3);

const dir = await mkdtemp(join(tmpdir(), "gridtune-bench-standby-"));
const stack = await startEmbeddedStack({
  dir,
  runtime: "process",
  agents: 1,
  logger: createLogger("bench", { level: "warn" }),
  env: { GRIDTUNE_LEADER_TTL_MS: String(ttlMs) },
});
try {
  const user = stack.client.user;
  const nc = await connectNats({
    servers: stack.nats.url,
    seedFile: stack.client.seedFile,
    caFile: stack.nats.caFile,
    identity: userIdentity(user),
    logger: () => undefined,
  });
  const api = new StackClient(nc, user);
  let leader: SteeringProcess = steeringProcessOf(
    stack.steering as ServiceProcess,
    join(dir, "logs", "steering.log"),
  );
  let standby = await startSteeringProcess(stack, "s1");
  const takeovers: number[] = [];
  const rebuilds: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    await standby.waitLog(/standing by/);
    await api.call("list", {}); // the leader serves
    const killedAt = performance.now();
    await leader.kill();
    for (;;) {
      const ok = await api.call("list", {}, 250).then(
        () => true,
        () => false,
      );
      if (ok) break;
    }
    const ms = performance.now() - killedAt;
    const line = await standby.waitLog(/took over as the steering leader/);
    const rebuild = Number(/rebuildMs[=":]+(\d+)/.exec(line)?.[1] ?? NaN);
    takeovers.push(ms);
    rebuilds.push(rebuild);
    console.log(`round ${r}: kill → serving ${ms.toFixed(0)} ms (rebuild ${rebuild} ms)`);
    leader = standby;
    standby = await startSteeringProcess(stack, `s${r + 1}`);
  }
  const sorted = [...takeovers].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(
    JSON.stringify({
      ttlMs,
      rounds,
      takeoverMs: {
        median: Math.round(median),
        min: Math.round(sorted[0]!),
        max: Math.round(sorted.at(-1)!),
      },
      rebuildMs: rebuilds,
    }),
  );
  await standby.stop();
  await leader.stop();
  await nc.close();
} finally {
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
