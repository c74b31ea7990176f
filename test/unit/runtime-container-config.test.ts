// buildContainerConfig is the whole security surface of a job container, so it is checked field
// by field. There is no GPU and no nvidia-container-toolkit on the test machines: the GPU request
// is checked by its shape here (the integration test shows the daemon's refusal without a toolkit).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  buildContainerConfig,
  CONTAINER_WORKDIR,
  type ContainerConfigOptions,
} from "../../evaluator/runtime/docker.ts";
import type { RunSpec } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";

const options: ContainerConfigOptions = {
  imageId: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  user: "1000:1000",
  tmpfsSize: "64m",
  nofile: 4096,
  defaultPidsLimit: 256,
};

function spec(over: Partial<RunSpec> = {}): RunSpec {
  return {
    key: "task1-job2-a1",
    image: "gridtune/python:1",
    argv: ["python3", "train.py", "--lr", "0.1; rm -rf /"],
    workDir: "/var/lib/gridtune/jobs/task1-job2-a1",
    env: { SEGMENT: "name_A" },
    limits: { wallClockMs: 60_000, memoryBytes: 512 << 20, nanoCpus: 1_500_000_000, pidsLimit: 64 },
    network: "none",
    gpus: [],
    logFile: "/var/lib/gridtune/logs/a1.log",
    maxLogBytes: 1 << 20,
    stopGraceMs: 5000,
    ...over,
  };
}

function envMap(env: string[] | undefined): Map<string, string> {
  return new Map((env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

describe("buildContainerConfig: GPU requests", () => {
  it("requests the slot's device ids from the nvidia driver and renumbers CUDA_VISIBLE_DEVICES", () => {
    const c = buildContainerConfig(spec({ gpus: ["2", "3"] }), options);
    assert.deepEqual(c.HostConfig.DeviceRequests, [
      { Driver: "nvidia", DeviceIDs: ["2", "3"], Capabilities: [["gpu"]] },
    ]);
    const env = envMap(c.Env);
    // Inside the container the two devices are 0 and 1.
    assert.equal(env.get("CUDA_VISIBLE_DEVICES"), "0,1");
    assert.equal(env.get("NVIDIA_VISIBLE_DEVICES"), "2,3");
    assert.equal(env.get("GRIDTUNE_GPUS"), "2,3");
  });

  it("one GPU per slot", () => {
    const c = buildContainerConfig(spec({ gpus: ["1"] }), options);
    assert.deepEqual(c.HostConfig.DeviceRequests?.[0]?.DeviceIDs, ["1"]);
    assert.equal(c.HostConfig.DeviceRequests?.[0]?.Count, undefined, "DeviceIDs and Count are exclusive");
    assert.equal(envMap(c.Env).get("CUDA_VISIBLE_DEVICES"), "0");
  });

  it("a CPU slot requests no device and hides GPUs a CUDA image would expose by default", () => {
    const c = buildContainerConfig(spec({ gpus: [] }), options);
    assert.equal(c.HostConfig.DeviceRequests, undefined);
    assert.equal(envMap(c.Env).get("NVIDIA_VISIBLE_DEVICES"), "void");
    assert.equal(envMap(c.Env).get("CUDA_VISIBLE_DEVICES"), "");
  });

  it("a job cannot pick GPUs through its env", () => {
    const c = buildContainerConfig(
      spec({
        gpus: ["0"],
        env: {
          NVIDIA_VISIBLE_DEVICES: "all",
          CUDA_VISIBLE_DEVICES: "0,1,2,3",
          NVIDIA_DRIVER_CAPABILITIES: "all",
          OK: "1",
        },
      }),
      options,
    );
    const env = envMap(c.Env);
    assert.equal(env.get("NVIDIA_VISIBLE_DEVICES"), "0");
    assert.equal(env.get("CUDA_VISIBLE_DEVICES"), "0");
    assert.equal(env.has("NVIDIA_DRIVER_CAPABILITIES"), false);
    assert.equal(env.get("OK"), "1");
    assert.equal(c.Env?.filter((e) => e.startsWith("NVIDIA_VISIBLE_DEVICES=")).length, 1);
  });
});

describe("buildContainerConfig: the fixed hardening", () => {
  it("produces exactly the agent's HostConfig, with the job's limits", () => {
    const c = buildContainerConfig(spec(), options);
    assert.deepEqual(c.HostConfig, {
      Binds: [`/var/lib/gridtune/jobs/task1-job2-a1:${CONTAINER_WORKDIR}:rw`],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=64m" },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Privileged: false,
      NetworkMode: "none",
      PidsLimit: 64,
      Init: true,
      IpcMode: "private",
      CgroupnsMode: "private",
      Ulimits: [{ Name: "nofile", Soft: 4096, Hard: 4096 }],
      LogConfig: { Type: "none", Config: {} },
      AutoRemove: false,
      Memory: 512 << 20,
      MemorySwap: 512 << 20,
      NanoCpus: 1_500_000_000,
    });
    assert.equal(c.Image, options.imageId, "created from the resolved ID, not the name");
    assert.equal(c.User, "1000:1000");
    assert.equal(c.WorkingDir, CONTAINER_WORKDIR);
    assert.deepEqual(
      c.Cmd,
      ["python3", "train.py", "--lr", "0.1; rm -rf /"],
      "argv is passed as is, no shell",
    );
    assert.equal(c.name, "gridtune-task1-job2-a1");
    assert.equal(c.Labels?.["org.gridtune.key"], "task1-job2-a1");
  });

  it("ignores every field that is not part of RunSpec (a job cannot ask for privileges or mounts)", () => {
    const hostile = {
      ...spec(),
      HostConfig: { Privileged: true, Binds: ["/:/host"], CapAdd: ["SYS_ADMIN"], NetworkMode: "host" },
      privileged: true,
      binds: ["/var/run/docker.sock:/var/run/docker.sock"],
      mounts: [{ Type: "bind", Source: "/", Target: "/host" }],
      user: "0:0",
      Entrypoint: ["/bin/sh"],
      securityOpt: ["seccomp=unconfined"],
    } as unknown as RunSpec;
    assert.deepEqual(buildContainerConfig(hostile, options), buildContainerConfig(spec(), options));
  });

  it("defaults: pids and memory from the options; bridge networking only when the spec says so", () => {
    const s = spec({ limits: { wallClockMs: 1000 }, network: "bridge" });
    const c = buildContainerConfig(s, { ...options, defaultMemoryBytes: 1 << 30 });
    assert.equal(c.HostConfig.PidsLimit, 256);
    assert.equal(c.HostConfig.Memory, 1 << 30);
    assert.equal(c.HostConfig.MemorySwap, 1 << 30);
    assert.equal(c.HostConfig.NanoCpus, undefined);
    assert.equal(c.HostConfig.NetworkMode, "bridge");
    const noMem = buildContainerConfig(spec({ limits: { wallClockMs: 1000 } }), options);
    assert.equal("Memory" in noMem.HostConfig, false);
  });

  it("rejects values that could change the meaning of the bind or the network", () => {
    const bad: Partial<RunSpec>[] = [
      { workDir: "relative/dir" },
      { workDir: "/srv/a:/etc" },
      { workDir: "/srv/a,b" },
      { workDir: "/srv/../etc" },
      { network: "host" as "none" },
      { key: "../evil" },
      { argv: [] },
      { env: { "A=B": "x" } },
    ];
    for (const over of bad) {
      assert.throws(
        () => buildContainerConfig(spec(over), options),
        (e: unknown) => e instanceof RuntimeError && e.code === "INVALID_ARGUMENT",
        JSON.stringify(over),
      );
    }
  });
});
