// What reading a payload's files without following its links (evaluator/payloadFs.ts, issue 14)
// costs the agent, against the plain ways:
// - output.json (a small file, read once per evaluation): readPayloadFile (a descriptor on the
//   working directory, one lstat+open per component, fstat, read) against realpath + open +
//   fstat + read (what the agent did before: it follows links, then checks the result) and a bare
//   readFileSync; CPU µs per read;
// - a checkpoint (many small files and one large one): createTarball (the agent writes the tar
//   from descriptors it opened itself) against node-tar's create on the same paths (which opens
//   paths and so follows a linked parent); CPU and wall ms, MB/s of input.
// The rounds interleave the sides so that a busy machine slows them alike.
//   node --import tsx bench/payloadFiles.ts [--reads 20000] [--rounds 3] [--mb 64]
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tar from "tar";
import { createTarball } from "../evaluator/archive.ts";
import { readPayloadFile } from "../evaluator/payloadFs.ts";
import { arg } from "./args.ts";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** CPU time (user + system) of fn, in µs. */
async function cpu(fn: () => unknown): Promise<{ cpuUs: number; wallMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  return { cpuUs: c.user + c.system, wallMs: performance.now() - t0 };
}

/** The former check: realpath, then open the result (O_NOFOLLOW), fstat, read. */
function realpathRead(root: string, path: string): Buffer {
  const real = realpathSync.native(path);
  if (!real.startsWith(root + "/")) throw new Error("outside");
  const fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    const buf = Buffer.allocUnsafe(st.size + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export async function benchPayloadFiles(): Promise<void> {
  const reads = arg("reads", 20_000);
  const rounds = arg("rounds", 3);
  const mb = arg("mb", 64);
  const dir = mkdtempSync(join(tmpdir(), "gt-bench-payload-"));
  try {
    const work = join(dir, "work");
    mkdirSync(join(work, "results"), { recursive: true });
    writeFileSync(join(work, "output.json"), '{"status": 0, "loss": 0.25}');
    writeFileSync(join(work, "results", "output.json"), '{"status": 0, "loss": 0.25}');
    // a checkpoint: 500 files of 16 KiB in 10 directories, and one of `mb` MiB (random bytes)
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(work, "ckpt", `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++)
        writeFileSync(join(work, "ckpt", `d${d}`, `f${f}.bin`), Buffer.alloc(16384, f));
    }
    const big = Buffer.alloc(mb * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
    writeFileSync(join(work, "ckpt", "model.bin"), big);
    const inputMb = (500 * 16384 + big.length) / 1024 ** 2;
    const root = realpathSync(work);

    const side: Record<string, number[]> = {};
    const add = (k: string, v: number) => (side[k] ??= []).push(v);
    for (let r = 0; r < rounds; r++) {
      for (const [name, fn] of [
        ["readPayloadFile output.json", () => readPayloadFile(work, "output.json", 65536)],
        ["readPayloadFile results/output.json", () => readPayloadFile(work, "results/output.json", 65536)],
        ["realpath+open output.json (before)", () => realpathRead(root, join(work, "output.json"))],
        ["readFileSync output.json (no check)", () => readFileSync(join(work, "output.json"))],
      ] as const) {
        const { cpuUs } = await cpu(() => {
          for (let i = 0; i < reads; i++) fn();
        });
        add(name, cpuUs / reads);
      }
      for (const [name, fn] of [
        ["createTarball (payloadFs walk)", () => createTarball(work, ["ckpt"], join(dir, "a.tgz"))],
        [
          "node-tar create (follows links)",
          () => tar.c({ gzip: true, file: join(dir, "b.tgz"), cwd: work, portable: true }, ["ckpt"]),
        ],
      ] as const) {
        const { cpuUs, wallMs } = await cpu(fn);
        add(`${name} cpu ms`, cpuUs / 1000);
        add(`${name} wall ms`, wallMs);
      }
    }
    process.stdout.write(
      `reads: ${reads} per round, ${rounds} rounds; checkpoint: ${inputMb.toFixed(1)} MiB in 501 files\n`,
    );
    for (const [k, v] of Object.entries(side)) {
      const m = median(v);
      const unit = k.includes(" ms") ? "" : " µs CPU per read";
      const rate = k.endsWith("wall ms") ? ` (${(inputMb / (m / 1000)).toFixed(0)} MiB/s)` : "";
      process.stdout.write(`${k.padEnd(44)} median ${m.toFixed(k.includes(" ms") ? 0 : 1)}${unit}${rate}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await benchPayloadFiles();
