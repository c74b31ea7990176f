// `phpo dataset` transfer benchmark on the embedded stack (nats-server, the SigV4-checking S3
// server, steering in this process): one file of --mib MiB put in one PUT, put in 16 MiB parts,
// and fetched with `get`, each against the bare presigned PUT or GET of the same bytes (what the
// transfer costs without phpo's hashing, steering's read-back of the file and the manifest). The
// rounds interleave so that a busy machine slows all sides alike. Seconds are medians.
//   node --import tsx bench/datasetTransfer.ts [--mib 128] [--rounds 3]
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileSteeringConfig } from "../steering/shell/config.ts";
import { keys, Storage } from "../steering/shell/storage.ts";
import { runPhpo } from "../test/harness/fakeSteering.ts";
import { startTestStack } from "../test/harness/stack.ts";
import { arg } from "./args.ts";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

export async function benchDatasetTransfer(): Promise<void> {
  const mib = arg("mib", 128);
  const rounds = arg("rounds", 3);
  const stack = await startTestStack({ agents: 0 });
  const storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
  const work = await mkdtemp(join(tmpdir(), "gt-bench-ds-"));
  try {
    const file = join(work, "train.bin");
    const data = randomBytes(mib * 1024 * 1024);
    await writeFile(file, data);
    const env = { GRIDTUNE_CONFIG: stack.clientFile, XDG_STATE_HOME: join(work, "state") };
    const phpo = async (args: string[]) => {
      const r = await runPhpo(args, env);
      if (r.code !== 0) throw new Error(`phpo ${args.join(" ")}: ${r.stderr}`);
    };
    const t: Record<string, number[]> = { rawPut: [], single: [], multipart: [], rawGet: [], get: [] };
    for (let i = 0; i < rounds; i++) {
      const rawKey = keys.dataset("bench.raw") + `r${i}.bin`;
      t.rawPut!.push(
        await timed(async () => {
          const url = await storage.presignPut(rawKey, data.length);
          const res = await fetch(url, {
            method: "PUT",
            body: data,
            headers: { "content-length": String(data.length) },
          });
          if (!res.ok) throw new Error(`raw PUT: HTTP ${res.status}`);
        }),
      );
      t.single!.push(
        await timed(() =>
          phpo([
            "dataset",
            "put",
            file,
            "--name",
            `user.demo.single${i}`,
            "--multipart-threshold",
            String(mib + 1),
          ]),
        ),
      );
      t.multipart!.push(
        await timed(() =>
          phpo([
            "dataset",
            "put",
            file,
            "--name",
            `user.demo.multi${i}`,
            "--multipart-threshold",
            "16",
            "--part-size",
            "16",
          ]),
        ),
      );
      t.rawGet!.push(
        await timed(async () => {
          const res = await fetch(await storage.presignGet(rawKey));
          await res.arrayBuffer();
        }),
      );
      const dest = join(work, `got${i}`);
      t.get!.push(await timed(() => phpo(["dataset", "get", `user.demo.multi${i}`, "--dest", dest])));
      await rm(dest, { recursive: true, force: true });
    }
    const row = (name: string, xs: number[]) =>
      `${name.padEnd(44)} ${median(xs).toFixed(2).padStart(6)} s  ${(mib / median(xs)).toFixed(0).padStart(5)} MiB/s`;
    console.log(`phpo dataset, one file of ${mib} MiB, median of ${rounds} rounds`);
    console.log(row("bare presigned PUT (baseline)", t.rawPut!));
    console.log(row("phpo dataset put, one PUT", t.single!));
    console.log(row("phpo dataset put, 16 MiB parts", t.multipart!));
    console.log(row("bare presigned GET (baseline)", t.rawGet!));
    console.log(row("phpo dataset get (sha256 verified)", t.get!));
  } finally {
    storage.close();
    await stack.cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await benchDatasetTransfer();
