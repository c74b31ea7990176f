// The dispatcher's lease clock over steering's two NATS connections: silence proves nothing while
// either is down (heartbeats come in on the request-serving one, which may reconnect seconds after
// the JetStream one), and the leases restart from the later reconnect. Seen in the durability
// test before: the JetStream connection came back first, the lease clock restarted from it, and
// attempts whose heartbeats could not arrive yet were declared lost.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { Committer } from "../../steering/shell/committer.ts";
import type { SteeringConfig } from "../../steering/shell/config.ts";
import { Dispatcher } from "../../steering/shell/dispatcher.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { openPolicy } from "./fixtures/apiKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const logger = createLogger("test", { level: "error" });

function dispatcher() {
  const clock = new FakeClock(100_000);
  const c = new Committer(
    new SteeringState(),
    { append: () => Promise.resolve() },
    { publish: () => undefined },
    logger,
  );
  const config = { leaseMs: 4_000, dispatchTimeoutMs: 60_000 } as SteeringConfig;
  const d = new Dispatcher(
    c,
    { publish: () => Promise.resolve({ seq: 1, duplicate: false }) },
    new AgentRegistry(config.leaseMs),
    () => openPolicy("s", ["process"]),
    {} as Storage,
    config,
    logger,
    clock.now(),
    undefined,
    clock,
  );
  return { d, clock };
}

void describe("the lease clock over steering's connections", () => {
  void it("stays paused until both connections are back, then restarts from the later reconnect", () => {
    const { d, clock } = dispatcher();
    d.pauseLeases("steering");
    d.pauseLeases("steering-api");
    clock.advance(6_000);
    d.restartLeases(clock.now(), "steering");
    assert.equal(d.world().leases.paused, true, "heartbeats cannot arrive yet");
    clock.advance(2_000);
    d.restartLeases(clock.now(), "steering-api");
    assert.deepEqual(d.world().leases, { baseline: clock.now(), paused: false });
  });

  void it("one connection's outage alone pauses it", () => {
    const { d } = dispatcher();
    d.pauseLeases("steering-api");
    assert.equal(d.world().leases.paused, true);
    d.restartLeases(undefined, "steering-api");
    assert.equal(d.world().leases.paused, false);
  });

  void it("is paused while this process's leader term does not hold (no heartbeat is let in then)", () => {
    const { d } = dispatcher();
    let holds = true;
    d.leading = () => holds;
    assert.equal(d.world().leases.paused, false);
    holds = false;
    assert.equal(d.world().leases.paused, true);
  });
});
