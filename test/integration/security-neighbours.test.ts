// Neighbours are safe (issue 14, item 4), with the docker runtime on the machine's real dockerd:
// a container that is not the agent's but has the very name the agent will use (another
// deployment's job, a user's container) is neither stopped nor removed, and the attempt fails with
// a message saying so; an agent killed with SIGKILL mid-attempt and started again removes its own
// leftover container and working directory. The daemon itself is never restarted here.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { agentInstance } from "../../evaluator/config.ts";
import { LABEL_AGENT_INSTANCE } from "../../evaluator/runtime/containerConfig.ts";
import { LABEL_MANAGED } from "../../protocol/names.ts";
import {
  BUSYBOX_IMAGE,
  dockerAvailable,
  dockerObjectExists,
  ensureTestImages,
  testDocker,
} from "../harness/images.ts";
import { startTestStack, type TestStack } from "../harness/stack.ts";

const available = await dockerAvailable();
const skip = available ? false : "no Docker daemon answers on /var/run/docker.sock (start dockerd)";
const docker = testDocker();

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const running = async (name: string): Promise<boolean> =>
  docker
    .getContainer(name)
    .inspect()
    .then(
      (i) => i.State.Running,
      () => false,
    );

describe("neighbours are safe", { skip, timeout: 300_000 }, () => {
  let stack: TestStack;
  let instance: string;
  const foreign: string[] = [];
  before(async () => {
    await ensureTestImages();
    stack = await startTestStack({ agents: 1, slotsPerAgent: 1, runtime: "docker" });
    instance = agentInstance({ natsUrl: stack.nats.url, site: stack.site, agent: "a1" });
  });
  after(async () => {
    for (const id of foreign)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined);
    await stack?.cleanup();
  });

  it("a foreign container with the agent's container name survives; the attempt fails saying so", async () => {
    // another deployment's agent (its own instance label) made a container of exactly this name
    const name = `gridtune-${instance}-t1-p0-j1-a1`;
    const c = await docker.createContainer({
      name,
      Image: BUSYBOX_IMAGE,
      Cmd: ["sleep", "600"],
      Labels: { [LABEL_MANAGED]: "true", [LABEL_AGENT_INSTANCE]: "0123456789ab" },
      HostConfig: { NetworkMode: "none" },
    });
    foreign.push(c.id);
    await c.start();
    const api = await stack.connect("demo");
    const taskId = await api.submit({
      outDS: "user.test.neighbour/",
      evaluationContainer: BUSYBOX_IMAGE,
      evaluationExec: `sh -c 'echo "{\\"status\\": 0, \\"loss\\": 0.5}" > output.json'`,
      searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
      maxPoints: 1,
      maxEvaluationJobs: 2,
      nParallelEvaluation: 1,
    });
    assert.equal(taskId, "1", "the first task of the stack: its job is t1-p0-j1");
    const d = await api.waitFinished(taskId, 120_000);
    const p = d.points[0]!;
    const first = (p.history ?? []).find((h) => h.attempt === 1);
    assert.match(
      first?.error ?? "",
      new RegExp(`a container named ${name} already exists and is not this agent's .*it was left alone`),
      JSON.stringify(p.history),
    );
    assert.equal(p.state, "done", "the retry (another name) ran");
    const info = await docker.getContainer(name).inspect();
    assert.equal(info.Id, c.id, "the same container");
    assert.equal(info.State.Running, true, "still running: never stopped");
  });

  it("an agent killed with SIGKILL mid-attempt and started again removes its leftover container and work dir", async () => {
    const api = await stack.connect("demo");
    const taskId = await api.submit({
      outDS: "user.test.leftover/",
      evaluationContainer: BUSYBOX_IMAGE,
      evaluationExec: "sleep 600",
      searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
      maxPoints: 1,
      nParallelEvaluation: 1,
    });
    const key = `${instance}-t${taskId}-p0-j1-a1`;
    const workDir = join(stack.dir, "work", "a1", key);
    await eventually("the attempt's container runs", () => running(`gridtune-${key}`));
    assert.ok(existsSync(workDir), "its working directory exists");
    await stack.agents[0]!.kill(); // SIGKILL: the agent cannot clean up
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(await running(`gridtune-${key}`), "the container outlives the killed agent");

    await stack.startAgent("a1");
    const exists = await dockerObjectExists(() => docker.getContainer(`gridtune-${key}`).inspect());
    assert.equal(exists, false, "the restarted agent removed its leftover container before running");
    assert.equal(existsSync(workDir), false, "and its leftover working directory");
    assert.equal(existsSync(join(stack.dir, "work", "a1", `.${key}`)), false, "and its scratch directory");
    await api.call("kill", { taskId });
  });
});
