// DockerRuntime against the real daemon with the locally built images (containers/build-images.sh):
// what only the docker runtime does (what both runtimes promise alike is in runtime-contract.test.ts).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildContainerConfig, DockerRuntime } from "../../evaluator/runtime/docker.ts";
import type { RunHooks, RunSpec } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";
import { runSpecIn } from "../harness/runSpec.ts";
import {
  BUSYBOX_IMAGE,
  dockerAvailable,
  ensureTestImages,
  PYTHON_IMAGE,
  testDocker,
} from "../harness/images.ts";

const available = await dockerAvailable();
const skip = available ? false : "no Docker daemon answers on /var/run/docker.sock (start dockerd)";

let root = "";
let seq = 0;

function newSpec(argv: string[], over: Partial<RunSpec> = {}): Promise<RunSpec> {
  return runSpecIn(root, `rtdocker-${process.pid}-${++seq}`, argv, {
    image: BUSYBOX_IMAGE,
    limits: { wallClockMs: 20_000, memoryBytes: 128 << 20, pidsLimit: 64 },
    ...over,
  });
}

function hooks(lines?: string[], signal = new AbortController().signal): RunHooks {
  return { signal, onStdoutLine: (l) => lines?.push(l) };
}

async function assertNoContainer(key: string): Promise<void> {
  const list = await testDocker().listContainers({
    all: true,
    filters: { label: [`org.gridtune.key=${key}`] },
  });
  assert.equal(list.length, 0, `container of ${key} was not removed`);
}

describe("DockerRuntime (real dockerd)", { skip }, () => {
  const runtime = new DockerRuntime();

  before(async () => {
    await ensureTestImages();
    root = await mkdtemp(join(tmpdir(), "gt-rtdocker-"));
  });
  after(async () => {
    await runtime.close();
    await rm(root, { recursive: true, force: true });
  });

  it("runs hardened: no capabilities, no-new-privs, read-only root, only lo, uid 1000, work dir writable cwd", async () => {
    const lines: string[] = [];
    const script = [
      "echo uid=$(id -u) gid=$(id -g)",
      "echo pwd=$(pwd)",
      "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
      "echo nets=$(ls /sys/class/net | tr '\\n' ' ')",
      "touch /rootfs-write 2>/dev/null && echo rootfs=writable || echo rootfs=readonly",
      "touch /tmp/t && echo tmp=writable",
      "cat input.json",
      "echo written > result.txt && echo cwd=writable",
    ].join("; ");
    const spec = await newSpec(["sh", "-c", script]);
    await writeFile(join(spec.workDir, "input.json"), '{"x": 1}\n');
    const out = await runtime.run(spec, hooks(lines));
    assert.equal(out.exitCode, 0, lines.join("\n"));
    assert.ok(lines.includes("uid=1000 gid=1000"), lines.join("\n"));
    assert.ok(lines.includes("pwd=/srv/workDir"));
    assert.ok(lines.includes("CapEff:\t0000000000000000"));
    assert.ok(lines.includes("CapBnd:\t0000000000000000"));
    assert.ok(lines.includes("NoNewPrivs:\t1"));
    assert.ok(lines.includes("nets=lo"), lines.join("\n"));
    assert.ok(lines.includes("rootfs=readonly"));
    assert.ok(lines.includes("tmp=writable"));
    assert.ok(lines.includes('{"x": 1}'), "the prepared input is readable");
    assert.ok(lines.includes("cwd=writable"));
    assert.equal(await readFile(join(spec.workDir, "result.txt"), "utf8"), "written\n");
    assert.equal((await stat(join(spec.workDir, "result.txt"))).uid, 1000);
    assert.deepEqual(
      [out.timedOut, out.stopped, out.oomKilled, out.logTruncated],
      [false, false, false, false],
    );
    await assertNoContainer(spec.key);
  });

  it("reports OOMKilled when the payload exceeds its memory limit", async () => {
    const spec = await newSpec(["python3", "-c", "x = 'a' * (400 << 20); print(len(x))"], {
      image: PYTHON_IMAGE,
      limits: { wallClockMs: 30_000, memoryBytes: 64 << 20 },
    });
    const out = await runtime.run(spec, hooks());
    assert.equal(out.oomKilled, true);
    assert.equal(out.exitCode, 137);
    assert.match(await readFile(spec.logFile, "utf8"), /memory limit/);
  });

  it("missing image: IMAGE_MISSING naming the image and what to do (the build script builds only ours)", async () => {
    const spec = await newSpec(["sh"], { image: "gridtune/does-not-exist:9" });
    await assert.rejects(runtime.run(spec, hooks()), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.code, "IMAGE_MISSING");
      assert.match(e.message, /gridtune\/does-not-exist:9/);
      // a user's image: containers/build-images.sh cannot build it, so it is not the advice
      assert.doesNotMatch(e.message, /build-images/);
      assert.match(e.message, /docker pull gridtune\/does-not-exist:9, or docker load/);
      return true;
    });
  });

  it("allow-list by image ID: refuses an image not listed, and one re-tagged as a listed name", async () => {
    const docker = testDocker();
    const tag = `gridtune-test/allowed-${process.pid}`;
    await docker.getImage(BUSYBOX_IMAGE).tag({ repo: tag, tag: "1" });
    const guarded = new DockerRuntime({ allowedImages: [`${tag}:1`] });
    try {
      await guarded.init();
      const ok = await guarded.run(await newSpec(["sh", "-c", "exit 0"], { image: `${tag}:1` }), hooks());
      assert.equal(ok.exitCode, 0);
      await assert.rejects(
        guarded.run(await newSpec(["sh", "-c", "exit 0"], { image: PYTHON_IMAGE }), hooks()),
        (e: unknown) =>
          e instanceof RuntimeError && e.code === "IMAGE_NOT_ALLOWED" && e.message.includes(PYTHON_IMAGE),
      );
      // Someone with access to the daemon points the allowed name at another image.
      await docker.getImage(PYTHON_IMAGE).tag({ repo: tag, tag: "1" });
      const spec = await newSpec(["sh", "-c", "echo ran > ran.txt"], { image: `${tag}:1` });
      await assert.rejects(
        guarded.run(spec, hooks()),
        (e: unknown) => e instanceof RuntimeError && e.code === "IMAGE_NOT_ALLOWED",
      );
      await assert.rejects(stat(join(spec.workDir, "ran.txt")));
    } finally {
      await guarded.close();
      await docker
        .getImage(`${tag}:1`)
        .remove({ noprune: true })
        .catch(() => {});
    }
  });

  it("a job spec carrying privileged/mount requests still runs unprivileged with only its work dir", async () => {
    const spec = await newSpec(["sh", "-c", "grep CapEff /proc/self/status; ls /host 2>&1 | head -1; id -u"]);
    const hostile = {
      ...spec,
      HostConfig: { Privileged: true, Binds: ["/:/host"], CapAdd: ["ALL"] },
      privileged: true,
      user: "0:0",
    } as unknown as RunSpec;
    assert.deepEqual(
      buildContainerConfig(hostile, {
        imageId: "sha256:x",
        user: "1000:1000",
        tmpfsSize: "64m",
        nofile: 1024,
        defaultPidsLimit: 64,
      }).HostConfig.Binds,
      [`${spec.workDir}:/srv/workDir:rw`],
    );
    const lines: string[] = [];
    const out = await runtime.run(hostile, hooks(lines));
    assert.equal(out.exitCode, 0);
    assert.deepEqual(lines, ["CapEff:\t0000000000000000", "ls: /host: No such file or directory", "1000"]);
  });

  it("GPUs without nvidia-container-toolkit (none here): RUNTIME_UNAVAILABLE saying what to install", async () => {
    const spec = await newSpec(["sh", "-c", "exit 0"], { gpus: ["0"] });
    await assert.rejects(runtime.run(spec, hooks()), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.code, "RUNTIME_UNAVAILABLE");
      assert.match(e.message, /nvidia-container-toolkit/);
      return true;
    });
    await assertNoContainer(spec.key);
  });

  it("an unreachable daemon: RUNTIME_UNAVAILABLE naming the socket", async () => {
    const lost = new DockerRuntime({ socketPath: join(root, "no-such.sock") });
    await assert.rejects(lost.run(await newSpec(["sh"]), hooks()), (e: unknown) => {
      assert.ok(e instanceof RuntimeError);
      assert.equal(e.code, "RUNTIME_UNAVAILABLE");
      assert.match(e.message, /no-such\.sock/);
      return true;
    });
    await lost.close();
  });
});
