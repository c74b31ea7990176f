// Steering containers left by a steering killed with SIGKILL (real stack, real Docker daemon): a
// restarted steering removes the containers labelled with its own instance, and only those;
// another stack's steering containers on the same host stay; a steering stopped gracefully
// removes its own; the same holds for the iterations' scratch directories. The instance name is
// stable for one deployment. A local steering program (no steeringContainer) dies with a steering
// killed with SIGKILL, all of its process group.
import assert from "node:assert/strict";
import { readdir, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LABEL_MANAGED } from "../../protocol/names.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import {
  LABEL_STEERING_INSTANCE,
  LocalSteeringRunner,
  steeringInstance,
} from "../../steering/program/runner.ts";
import { BUSYBOX_IMAGE, dockerObjectExists, ensureTestImages, testDocker } from "../harness/images.ts";
import { startTestStack, stepsTask } from "../harness/stack.ts";

const docker = testDocker();
const suffix = `${process.pid}-${Date.now()}`;
const mine = `sweep-a-${suffix}`;
const other = `sweep-b-${suffix}`;

async function leftover(instance: string): Promise<string> {
  const c = await docker.createContainer({
    Image: BUSYBOX_IMAGE,
    Cmd: ["sleep", "300"],
    Labels: { [LABEL_MANAGED]: "steering", [LABEL_STEERING_INSTANCE]: instance },
    HostConfig: { NetworkMode: "none" },
  });
  await c.start();
  return c.id;
}

const exists = (id: string) => dockerObjectExists(() => docker.getContainer(id).inspect());

/** PIDs of the processes whose working directory is `dir`. */
async function processesIn(dir: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
  const cwds = await Promise.all(pids.map((p) => readlink(`/proc/${p}/cwd`).catch(() => "")));
  return pids.filter((_, i) => cwds[i] === dir).map(Number);
}

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("steering container sweep", { timeout: 120_000 }, () => {
  const made: string[] = [];
  before(async () => {
    await ensureTestImages();
  });
  after(async () => {
    await Promise.all(
      made.map((id) =>
        docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  });

  it("removes this instance's leftover containers, running or not, and leaves the others", async () => {
    const running = await leftover(mine);
    const stopped = await leftover(mine);
    await docker.getContainer(stopped).kill();
    const foreign = await leftover(other);
    made.push(running, stopped, foreign);
    assert.equal(await new LocalSteeringRunner(undefined, mine).sweep(), 2);
    assert.equal(await exists(running), false);
    assert.equal(await exists(stopped), false);
    assert.equal(await exists(foreign), true, "another stack's steering container stays");
    assert.equal(await new LocalSteeringRunner(undefined, mine).sweep(), 0, "nothing left to remove");
  });

  it("steering killed with SIGKILL mid-iteration: the restarted steering removes its container", async () => {
    const stack = await startTestStack({ agents: 0, mode: "process" });
    try {
      const instance = steeringInstance(compileSteeringConfig({}, stack.steeringEnv));
      const containers = () =>
        docker.listContainers({
          all: true,
          filters: { label: [`${LABEL_MANAGED}=steering`, `${LABEL_STEERING_INSTANCE}=${instance}`] },
        });
      const waitFor = async (what: string, ok: (ids: string[]) => boolean) => {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const ids = (await containers()).map((c) => c.Id);
          if (ok(ids)) return ids;
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${ids.join(", ")}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      const api = await stack.connect();
      // a steering program that never answers: its iteration is in flight when steering dies
      await api.submit(
        stepsTask({
          maxPoints: 2,
          steeringContainer: BUSYBOX_IMAGE,
          steeringExec: "sh -c 'sleep 300' %OUT",
        }),
      );
      const [first] = await waitFor("the steering container", (ids) => ids.length === 1);
      made.push(first!);
      const scratch = async () =>
        (await readdir(tmpdir())).filter((n) => n.startsWith(`gridtune-steering-${instance}-`));
      const [oldScratch] = await scratch();
      assert.ok(oldScratch, "the iteration's scratch directory is named after the instance");
      const steering = stack.steering;
      assert.ok(!("start" in steering));
      await steering.kill();
      assert.equal(await exists(first!), true, "a killed steering cannot remove its container");
      const restarted = await stack.startSteering();
      stack.steering = restarted;
      // the iteration runs again (only the log counts) in a new container; the old one is gone
      const [second] = await waitFor(
        "the old container to go and the iteration's new one",
        (ids) => ids.length === 1 && !ids.includes(first!),
      );
      made.push(second!);
      assert.equal(
        (await scratch()).includes(oldScratch),
        false,
        "the killed steering's scratch dir is gone",
      );
      // a steering stopped with SIGTERM removes the container of the iteration it was running
      assert.ok(!("start" in restarted));
      await restarted.stop(15_000);
      assert.deepEqual(await containers(), [], "no container left after a graceful stop");
      assert.deepEqual(await scratch(), [], "no scratch directory left after a graceful stop");
    } finally {
      await stack.cleanup();
    }
  });

  it("steering killed with SIGKILL mid-iteration: its local steering program dies with it", async () => {
    const stack = await startTestStack({ agents: 0, mode: "process" });
    let dir = "";
    try {
      const instance = steeringInstance(compileSteeringConfig({}, stack.steeringEnv));
      const api = await stack.connect();
      // a program that never answers, and starts a process of its own (same group)
      await api.submit(stepsTask({ maxPoints: 2, steeringExec: "sh -c 'sleep 300 & wait' %OUT" }));
      const [name] = await until(
        "the iteration's scratch directory",
        async () => (await readdir(tmpdir())).filter((n) => n.startsWith(`gridtune-steering-${instance}-`)),
        (names) => names.length === 1,
      );
      dir = join(tmpdir(), name!);
      // sh and sleep (the watchdog's cwd is the directory too)
      await until(
        "the program and its child",
        () => processesIn(dir),
        (pids) => pids.length >= 3,
      );
      const steering = stack.steering;
      assert.ok(!("start" in steering));
      await steering.kill();
      const left = await until(
        "the program to go",
        () => processesIn(dir),
        (pids) => pids.length === 0,
      );
      assert.deepEqual(left, []);
    } finally {
      // when the test fails, the orphans it found must not outlive it
      for (const pid of dir ? await processesIn(dir) : []) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      await stack.cleanup();
    }
  });

  it("names an instance by its NATS server, S3 endpoint and bucket", () => {
    const c = {
      natsUrl: "tls://127.0.0.1:4222",
      s3: { endpoint: "http://127.0.0.1:9000", bucket: "gridtune" },
    };
    assert.equal(steeringInstance(c), steeringInstance({ ...c }));
    assert.match(steeringInstance(c), /^[0-9a-f]{16}$/);
    assert.notEqual(steeringInstance(c), steeringInstance({ ...c, natsUrl: "tls://127.0.0.1:4223" }));
    assert.notEqual(steeringInstance(c), steeringInstance({ ...c, s3: { ...c.s3, bucket: "other" } }));
  });
});
