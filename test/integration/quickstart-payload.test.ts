// The quickstart payload (examples/quickstart) trains for real in gridtune/python:1 and as a local
// process: the loss falls, a killed run resumes from its checkpoint epoch, output.json is valid.
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import * as tar from "tar";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";
import { ProcessRuntime } from "../../evaluator/runtime/process.ts";
import type { RunOutcome, RunSpec, Runtime } from "../../evaluator/runtime/types.ts";
import { dockerAvailable, ensureTestImages, PYTHON_IMAGE } from "../harness/images.ts";

const EXAMPLE = fileURLToPath(new URL("../../examples/quickstart", import.meta.url));
const available = await dockerAvailable();

interface Progress {
  epoch: number;
  loss: number;
  accuracy: number;
}

interface Variant {
  name: string;
  make(): Runtime;
  image?: string;
  skip: string | false;
}

const variants: Variant[] = [
  {
    name: "docker",
    make: () => new DockerRuntime(),
    image: PYTHON_IMAGE,
    skip: available ? false : "no Docker daemon (start dockerd)",
  },
  { name: "process", make: () => new ProcessRuntime(), skip: false },
];

for (const v of variants) {
  describe(`quickstart payload (${v.name})`, { skip: v.skip }, () => {
    let runtime: Runtime;
    let root = "";
    let seq = 0;

    before(async () => {
      if (v.name === "docker") await ensureTestImages();
      runtime = v.make();
      root = await mkdtemp(join(tmpdir(), `gt-quickstart-${v.name}-`));
    });
    after(async () => {
      await runtime.close();
      await rm(root, { recursive: true, force: true });
    });

    async function workDir(point: Record<string, unknown>): Promise<string> {
      const dir = join(root, `job-${++seq}`);
      await mkdir(dir);
      for (const f of ["train.py", "moons.py", "exec_in_container.sh"])
        await cp(join(EXAMPLE, f), join(dir, f));
      await writeFile(join(dir, "input.json"), JSON.stringify(point));
      return dir;
    }

    async function run(
      dir: string,
      argv: string[],
      signal: AbortSignal,
      onProgress?: (p: Progress) => void,
    ): Promise<{ out: RunOutcome; stdout: string[] }> {
      const stdout: string[] = [];
      const spec: RunSpec = {
        key: `qs-${v.name}-${process.pid}-${++seq}`,
        ...(v.image ? { image: v.image } : {}),
        argv,
        workDir: dir,
        env: {},
        limits: { wallClockMs: 60_000, memoryBytes: 512 << 20 },
        network: "none",
        gpus: [],
        logFile: join(root, `log-${seq}.txt`),
        maxLogBytes: 1 << 20,
        stopGraceMs: 3000,
      };
      const out = await runtime.run(spec, {
        signal,
        onStdoutLine: (line) => {
          stdout.push(line);
          if (line.startsWith("GRIDTUNE_PROGRESS ")) onProgress?.(JSON.parse(line.slice(18)) as Progress);
        },
      });
      return { out, stdout };
    }

    async function progressFile(dir: string): Promise<Progress[]> {
      return (await readFile(join(dir, "progress.jsonl"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Progress);
    }

    async function output(dir: string): Promise<{ status: number; loss: number | null; message: string }> {
      return JSON.parse(await readFile(join(dir, "output.json"), "utf8")) as {
        status: number;
        loss: number | null;
        message: string;
      };
    }

    it("trains: the validation loss falls, progress is reported, output/meta/metrics are written", async () => {
      const dir = await workDir({ lr: 0.3, hidden: 8, batch_size: 16, momentum: 0.5, epochs: 15 });
      const reported: Progress[] = [];
      const { out } = await run(dir, ["sh", "./exec_in_container.sh"], new AbortController().signal, (p) =>
        reported.push(p),
      );
      assert.equal(
        out.exitCode,
        0,
        await readFile(join(dir, "..", `log-${seq}.txt`), "utf8").catch(() => ""),
      );
      const progress = await progressFile(dir);
      assert.deepEqual(
        progress.map((p) => p.epoch),
        Array.from({ length: 15 }, (_, i) => i + 1),
      );
      assert.deepEqual(reported, progress, "stdout markers match progress.jsonl");
      const first = progress[0]!;
      const last = progress.at(-1)!;
      assert.ok(last.loss < first.loss * 0.8, `loss ${first.loss} -> ${last.loss}`);
      assert.ok(last.accuracy > 0.85, `accuracy ${last.accuracy}`);
      const result = await output(dir);
      assert.equal(result.status, 0);
      assert.equal(result.loss, last.loss);
      assert.match(result.message, /after 15 epochs/);
      const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as { epochs_trained: number };
      assert.equal(meta.epochs_trained, 15);
      const extracted = join(dir, "extracted");
      await mkdir(extracted);
      await tar.x({ file: join(dir, "metrics.tgz"), cwd: extracted, strict: true });
      const csv = (await readFile(join(extracted, "metrics.csv"), "utf8")).trim().split("\n");
      assert.equal(csv[0], "epoch,train_loss,val_loss,val_accuracy,seconds");
      assert.equal(csv.length, 16);
    });

    it("a killed run resumes from its checkpoint epoch", async () => {
      const dir = await workDir({ lr: 0.2, hidden: 6, batch_size: 8, epochs: 5000 });
      const ac = new AbortController();
      const first = await run(
        dir,
        ["python3", "-u", "train.py"],
        ac.signal,
        (p) => p.epoch >= 3 && ac.abort(),
      );
      assert.equal(first.out.stopped, true);
      const state = JSON.parse(await readFile(join(dir, "checkpoint", "state.json"), "utf8")) as {
        epoch: number;
      };
      const k = state.epoch;
      assert.ok(k >= 3 && k < 5000, `checkpoint at epoch ${k}`);
      const before = await progressFile(dir);
      assert.ok(before.length >= 3 && before.length <= k);

      // Resume with the target raised by 3 epochs (an ASHA promotion looks the same).
      await writeFile(
        join(dir, "input.json"),
        JSON.stringify({ lr: 0.2, hidden: 6, batch_size: 8, epochs: k + 3 }),
      );
      const resumed: Progress[] = [];
      const second = await run(
        dir,
        ["python3", "-u", "train.py", "--metrics", "metrics.tgz"],
        new AbortController().signal,
        (p) => resumed.push(p),
      );
      assert.equal(second.out.exitCode, 0);
      assert.ok(second.stdout[0]?.includes(`resumed from epoch ${k}`), second.stdout[0]);
      assert.deepEqual(
        resumed.map((p) => p.epoch),
        [k + 1, k + 2, k + 3],
      );
      const result = await output(dir);
      assert.equal(result.status, 0);
      assert.ok(typeof result.loss === "number" && Number.isFinite(result.loss));
      assert.match(result.message, new RegExp(`resumed from epoch ${k}; .* after ${k + 3} epochs`));
      // The metrics span the whole history, across the kill.
      const names: string[] = [];
      await tar.t({ file: join(dir, "metrics.tgz"), onReadEntry: (e) => names.push(e.path) });
      assert.deepEqual(names, ["metrics.csv"]);
    });

    it("invalid input: PanDA status 1 with a message naming the key, exit code 1", async () => {
      const dir = await workDir({ lr: "fast", epochs: 2 });
      const { out } = await run(dir, ["python3", "train.py"], new AbortController().signal);
      assert.equal(out.exitCode, 1);
      const result = await output(dir);
      assert.equal(result.status, 1);
      assert.equal(result.loss, null);
      assert.match(result.message, /lr must be a finite number/);
    });
  });
}
