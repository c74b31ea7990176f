// The dispatcher's pump (real Dispatcher and Committer; the log and JetStream are in-memory
// stand-ins): jobs are published only once their job-dispatched event is stored, and one task
// whose events the log refuses does not stop the others from being dispatched.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import { AgentRegistry } from "../../steering/core/agentRegistry.ts";
import type { SteeringConfig } from "../../steering/shell/config.ts";
import { Committer } from "../../steering/shell/committer.ts";
import { SteeringState } from "../../steering/core/state.ts";
import { Dispatcher } from "../../steering/shell/dispatcher.ts";
import type { LogEvent } from "../../steering/core/events.ts";
import type { SitePolicy } from "../../steering/security/sitePolicy.ts";
import type { Storage } from "../../steering/shell/storage.ts";
import { Driver, spec } from "./fixtures/engineKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const logger = createLogger("test", { level: "error" });

/** The pumps queued so far have run and what they started (appends, effects) has settled. */
async function drained(c: Committer): Promise<void> {
  await c.serial(() => Promise.resolve());
  await new Promise((r) => setImmediate(r));
}

function setup(refuse: (ev: LogEvent) => boolean, siteUsers: "all" | string[] = "all") {
  const state = new SteeringState();
  for (const id of ["1", "2"])
    for (const ev of new Driver(spec({ maxPoints: 2, nParallelEvaluation: 2 }), id).log) state.apply(ev);
  const stored: LogEvent[] = [];
  let release: (() => void) | null = null;
  const held: Array<() => void> = [];
  const log = {
    append(ev: LogEvent): Promise<void> {
      if (refuse(ev)) throw new GridtuneError("TOO_LARGE", `${ev.type} refused`);
      return new Promise<void>((resolve) => {
        const ok = () => (stored.push(ev), resolve());
        if (release === null) held.push(ok);
        else ok();
      });
    },
  };
  const published: string[] = [];
  const js = {
    publish: (subject: string, _data: string, o: { msgID: string }) => {
      published.push(`${subject} ${o.msgID}`);
      return Promise.resolve({ seq: published.length, duplicate: false });
    },
  };
  const c = new Committer(state, log, { publish: () => undefined }, logger);
  const clock = new FakeClock();
  const registry = new AgentRegistry(60_000);
  registry.register({ site: "s", agent: "a", slots: 8, gpus: [], runtime: "process" }, clock.now());
  const config = { leaseMs: 60_000, dispatchTimeoutMs: 60_000 } as SteeringConfig;
  const policy: SitePolicy = {
    version: 1,
    sites: {
      s: {
        users: siteUsers === "all" ? [] : siteUsers,
        groups: [],
        all: siteUsers === "all",
        runtimes: ["docker"],
      },
    },
    users: {},
  };
  const d = new Dispatcher(c, js, registry, () => policy, {} as Storage, config, logger, 0, undefined, clock);
  const ackAll = () => {
    release = () => {};
    for (const ok of held.splice(0)) ok();
  };
  return { d, c, stored, published, ackAll };
}

void describe("dispatcher pump", () => {
  void it("publishes a job only after its job-dispatched event is stored", async () => {
    const { d, c, stored, published, ackAll } = setup(() => false);
    d.kick();
    await drained(c);
    assert.deepEqual(published, [], "nothing published while the appends wait");
    ackAll();
    await drained(c);
    assert.equal(published.length, 4, "both tasks' jobs published once stored");
    assert.equal(stored.filter((e) => e.type === "job-dispatched").length, 4);
    assert.deepEqual(published.sort(), [
      "gt.jobs.s t1-p0-j1.1",
      "gt.jobs.s t1-p1-j1.1",
      "gt.jobs.s t2-p0-j1.1",
      "gt.jobs.s t2-p1-j1.1",
    ]);
  });

  void it("a task whose events are refused does not hold up the others", async () => {
    const { d, c, published, ackAll } = setup((ev) => ev.taskId === "1");
    ackAll();
    d.kick();
    await drained(c);
    assert.equal(published.length, 2, "task 2 dispatched");
    assert.ok(
      published.every((p) => p.includes("t2-")),
      published.join(", "),
    );
  });

  void it("never sends a job to a site that does not accept the task's user", async () => {
    const { d, c, stored, published, ackAll } = setup(() => false, ["someone-else"]);
    ackAll();
    d.kick();
    await drained(c); // the pump ran, and anything it staged would be published by now
    assert.deepEqual(published, [], "site s has room but does not accept the tasks' user");
    assert.equal(stored.filter((e) => e.type === "job-dispatched").length, 0);
  });
});
