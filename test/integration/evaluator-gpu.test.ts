// A real GPU through the whole stack (nats-server, s3rver, steering, an agent process started with
// `--gpus`), with the process runtime: each job's payload sees its slot's GPU in
// CUDA_VISIBLE_DEVICES, nvidia-smi lists it and, where PyTorch is installed, a matrix product runs
// on it. Skipped where `nvidia-smi -L` finds no GPU (the CI machines); run on a GPU node with
//   node --import tsx --test test/integration/evaluator-gpu.test.ts
// The docker runtime's GPU request (DeviceRequests, renumbered CUDA_VISIBLE_DEVICES) is checked
// without a GPU by the container-config unit tests.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { Storage } from "../../steering/shell/storage.ts";
import { FIXTURES, startTestStack, type TestStack } from "../harness/stack.ts";

function gpus(): string[] {
  try {
    return execFileSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 30_000 })
      .split("\n")
      .filter((l) => l.startsWith("GPU "));
  } catch {
    return [];
  }
}
const found = gpus();
const skip = found.length > 0 ? false : "no GPU: nvidia-smi -L lists none";
const GPU_IDS = (process.env.GRIDTUNE_TEST_GPUS ?? "0").split(",");

interface GpuMeta {
  CUDA_VISIBLE_DEVICES: string | null;
  GRIDTUNE_GPUS: string | null;
  nvidia_smi?: string[];
  torch: string | null;
  cuda_available?: boolean;
  device_count?: number;
  device_name?: string;
  matmul_tflops_fp32?: number;
  matmul_rel_error?: number;
}

describe("evaluator agent on a GPU node", { skip, timeout: 300_000 }, () => {
  let stack: TestStack;
  let storage: Storage;
  before(async () => {
    stack = await startTestStack({ agents: 0, runtime: "process" });
    await stack.startAgent("gpu1", ["--gpus", GPU_IDS.join(","), "--gpus-per-job", "1"]);
    storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
  });

  it("each job sees its slot's GPU and computes on it", async () => {
    const api = await stack.connect();
    const n = GPU_IDS.length * 2;
    const taskId = await api.submit({
      outDS: "user.test.gpu/",
      evaluationContainer: "gridtune/python:1",
      evaluationExec: `python3 ${join(FIXTURES, "payloads", "gpu_probe.py")}`,
      evaluationMeta: "meta.json",
      searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
      maxPoints: n,
      nParallelEvaluation: n,
      nPointsPerIteration: n,
    });
    const d = await api.waitFinished(taskId, 240_000);
    assert.equal(d.counts.done, n, JSON.stringify(d.points.map((p) => p.error)));
    const seen = new Set<string>();
    for (const p of d.points) {
      const key = (await storage.list(`tasks/${taskId}/points/${p.pointId}/`)).find((o) =>
        o.key.endsWith("/meta.json"),
      )!.key;
      const r = await storage.s3.send(new GetObjectCommand({ Bucket: storage.config.bucket, Key: key }));
      const meta = JSON.parse(await r.Body!.transformToString()) as GpuMeta;
      console.log(`point ${p.pointId}: ${JSON.stringify(meta)}`);
      assert.ok(
        GPU_IDS.includes(meta.CUDA_VISIBLE_DEVICES ?? ""),
        `one slot GPU: ${meta.CUDA_VISIBLE_DEVICES}`,
      );
      seen.add(meta.CUDA_VISIBLE_DEVICES!);
      assert.ok(
        (meta.nvidia_smi ?? []).some((l) => l.startsWith("GPU ")),
        "nvidia-smi lists the GPU",
      );
      if (meta.torch) {
        assert.equal(meta.cuda_available, true);
        assert.equal(meta.device_count, 1, "only the slot's GPU is visible");
        assert.ok((meta.matmul_rel_error ?? 1) < 1e-2, `matmul error ${meta.matmul_rel_error}`);
      }
    }
    assert.equal(seen.size, GPU_IDS.length, "every GPU slot was used");
  });
});
