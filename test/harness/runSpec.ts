// The RunSpec the runtime tests start from: a fresh working directory under `root`, the log beside
// it, a 20 s wall clock, no network, no GPU; `over` changes any field (an image, memory limits).
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import type { RunSpec } from "../../evaluator/runtime/types.ts";

export async function runSpecIn(
  root: string,
  key: string,
  argv: string[],
  over: Partial<RunSpec> = {},
): Promise<RunSpec> {
  return {
    key,
    argv,
    workDir: await mkdtemp(join(root, "wd-")),
    env: {},
    limits: { wallClockMs: 20_000 },
    network: "none",
    gpus: [],
    logFile: join(root, `${key}.log`),
    maxLogBytes: 64 * 1024,
    stopGraceMs: 2000,
    ...over,
  };
}
