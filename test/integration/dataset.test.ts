// `phpo dataset` on the real stack (nats-server, the SigV4-checking S3 server, steering, a process
// agent): a plain user with no S3 keys puts training data and runs a segmented task on it; the
// scope rules (another user's private dataset refused at put, show, get and --trainingDS; an
// admin's dataset readable by all); steering's read-back check of each file's sha256; the quota;
// a multipart upload interrupted and resumed; checksums verified on `get`.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { VerbContext } from "../../client/context.ts";
import { datasetPutVerb } from "../../client/verbs/dataset/put.ts";
import { GridtuneError } from "../../protocol/errors.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { setLimits } from "../../steering/security/adminLimits.ts";
import { keys, Storage } from "../../steering/shell/storage.ts";
import { runPhpo } from "../harness/fakeSteering.ts";
import { FIXTURES, plainUserEnv, startTestStack, type ApiClient, type TestStack } from "../harness/stack.ts";

const PROBE = join(FIXTURES, "payloads", "probe.py");
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const MiB = 1024 * 1024;

/** Asserts that `p` is refused with `code` and a message matching `re`. */
async function refused(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(e instanceof GridtuneError, `expected a refusal, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
}

describe("phpo dataset: user training data through presigned URLs", { timeout: 300_000 }, () => {
  let stack: TestStack;
  /** Steering's keys, for the test's own checks and an admin's upload only; phpo never has them. */
  let storage: Storage;
  let demo: ApiClient;
  let alice: ApiClient;
  let work: string;
  const env: Record<string, Record<string, string>> = {};

  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 2 });
    storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
    work = await mkdtemp(join(tmpdir(), "gt-dataset-"));
    demo = await stack.connect("demo");
    alice = await stack.connect("alice");
    await stack.connect("bob");
    // a plain user's environment: a connection profile, no S3 endpoint and no S3 keys
    for (const user of ["demo", "alice", "bob"]) env[user] = await plainUserEnv(stack, work, user);
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  const phpo = (user: string, args: string[]) => runPhpo(args, env[user]);

  it("put, ls, show, then a segmented task on the dataset runs to the end (no S3 keys anywhere)", async () => {
    for (const e of Object.values(env)) assert.ok(!Object.keys(e).some((k) => /AWS|S3/.test(k)));
    const dir = join(work, "segdata");
    await mkdir(join(dir, "B"), { recursive: true });
    const files: Record<string, string> = { "a1.txt": "1", "a2.txt": "22", "B/b1.txt": "333" };
    for (const [f, body] of Object.entries(files)) await writeFile(join(dir, f), body);

    const put = await phpo("demo", ["dataset", "put", dir, "--name", "user.demo.segdata", "--json"]);
    assert.equal(put.code, 0, put.stderr);
    const putOut = JSON.parse(put.stdout) as { files: Array<{ path: string; sha256: string; how: string }> };
    assert.deepEqual(
      putOut.files.map((f) => [f.path, f.sha256, f.how]),
      Object.entries(files)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([f, body]) => [f, sha(body), "single"]),
    );
    // a re-run sends nothing again
    const again = await phpo("demo", ["dataset", "put", dir, "--name", "user.demo.segdata", "--json"]);
    assert.deepEqual(
      (JSON.parse(again.stdout) as { files: Array<{ how: string }> }).files.map((f) => f.how),
      ["skipped", "skipped", "skipped"],
    );

    const ls = await phpo("demo", ["dataset", "ls", "--json"]);
    const listed = JSON.parse(ls.stdout) as {
      datasets: Array<{ name: string; files: number; bytes: number }>;
    };
    assert.deepEqual(listed.datasets, [{ name: "user.demo.segdata", files: 3, bytes: 6, published: false }]);
    const show = await phpo("demo", ["dataset", "show", "user.demo.segdata"]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`B/b1.txt +3 +${sha("333")}`));

    const segments = [
      { name: "A", files: ["a1.txt", "a2.txt"] },
      { name: "B", datasets: ["B"], files: [] },
    ];
    const taskId = await demo.submit({
      outDS: "user.demo.dsprobe/",
      evaluationContainer: "gridtune/python:1",
      evaluationExec: `/usr/bin/python3 ${PROBE}`,
      searchSpace: {
        x: { method: "categorical", dimension: { categories: [0, 1] } },
        mode: { method: "categorical", dimension: { categories: ["data"] } },
      } as never,
      trainingDS: "user.demo.segdata",
      segments,
      maxPoints: 2,
      nParallelEvaluation: 2,
      nPointsPerIteration: 2,
    });
    const d = await demo.waitFinished(taskId, 120_000);
    assert.equal(d.state, "finished");
    assert.equal(d.counts.done, 4, JSON.stringify(d.counts));
    // the probe's loss is the number of training files the job found in its working directory
    assert.deepEqual(
      d.segments.map((s) => [s.name, s.points, s.best]),
      [
        ["A", 2, 2],
        ["B", 2, 1],
      ],
    );
  });

  it("steering refuses writes into another user's scope (put, commit, rm), past phpo's own check", async () => {
    const body = "alice writes into demo's dataset";
    // straight to steering, past phpo's own check: steering enforces the scope
    await refused(
      alice.call("datasetPut", {
        name: "user.demo.segdata",
        path: "x.txt",
        size: body.length,
        sha256: sha(body),
      }),
      "FORBIDDEN",
      /--name user\.demo\.segdata: you may write only datasets of your own scope, user\.alice\./,
    );
    await refused(
      alice.call("datasetCommit", { name: "user.demo.segdata", path: "a1.txt", size: 1, sha256: sha("1") }),
      "FORBIDDEN",
      /user\.alice\./,
    );
    await refused(alice.call("datasetRemove", { name: "user.demo.segdata" }), "FORBIDDEN", /own scope/);
    assert.equal((await demo.call("datasetShow", { name: "user.demo.segdata", from: 0 })).files.length, 3);
  });

  it("another user's private dataset cannot be read: show and get", async () => {
    await refused(
      alice.call("datasetShow", { name: "user.demo.segdata", from: 0 }),
      "FORBIDDEN",
      /private dataset of user demo/,
    );
    await refused(
      alice.call("datasetGet", { name: "user.demo.segdata", from: 0 }),
      "FORBIDDEN",
      /private dataset of user demo/,
    );
  });

  it("--trainingDS of another user's private dataset, or of one that does not exist, is refused", async () => {
    await refused(
      alice.submit({
        outDS: "user.alice.steal/",
        evaluationContainer: "gridtune/python:1",
        evaluationExec: `/usr/bin/python3 ${PROBE}`,
        searchSpace: { x: { method: "categorical", dimension: { categories: [0] } } } as never,
        trainingDS: "user.demo.segdata",
      }),
      "FORBIDDEN",
      /--trainingDS user\.demo\.segdata is a private dataset of user demo/,
    );
    // a dataset that does not exist is refused too
    await refused(
      alice.submit({
        outDS: "user.alice.none/",
        evaluationContainer: "gridtune/python:1",
        evaluationExec: `/usr/bin/python3 ${PROBE}`,
        searchSpace: { x: { method: "categorical", dimension: { categories: [0] } } } as never,
        trainingDS: "user.alice.never_put",
      }),
      "INVALID_CONFIG",
      /has no files/,
    );
  });

  it("phpo names the scope rule before sending anything; a path out of the dataset is refused", async () => {
    const put = await phpo("alice", ["dataset", "put", join(work, "segdata"), "--name", "user.demo.mine"]);
    assert.equal(put.code, 2, put.stderr);
    assert.match(put.stderr, /--name user\.demo\.mine: your datasets are named user\.alice\.<name>/);
    // a path out of the dataset is refused by the schema
    await refused(
      demo.call("datasetPut", {
        name: "user.demo.segdata",
        path: "../user.alice.x/f",
        size: 1,
        sha256: sha("1"),
      }),
      "INVALID_ARGUMENT",
      /path/,
    );
  });

  it("an admin's dataset (outside the user scope) is readable by every user", async () => {
    await storage.put(keys.dataset("public.mnist") + "train.txt", "digits");
    const show = await phpo("alice", ["dataset", "show", "public.mnist", "--json"]);
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual((JSON.parse(show.stdout) as { files: unknown[] }).files, [
      { path: "train.txt", size: 6, sha256: null },
    ]);
    const put = await phpo("alice", ["dataset", "put", join(work, "segdata"), "--name", "public.mnist"]);
    assert.equal(put.code, 2);
    assert.match(put.stderr, /--name public\.mnist/);
  });

  it("show and get come a page at a time: a dataset too large for one NATS message is listed and fetched in full", async () => {
    // an admin's dataset of 900 files with 667-character names (in folders: the embedded S3
    // server stores keys as files, 255 bytes a name): about 0.65 MB of listing, 1.5 MB of URLs
    const names = Array.from(
      { length: 900 },
      (_, i) => `${String(i).padStart(4, "0")}/${"d".repeat(230)}/${"e".repeat(230)}/${"f".repeat(200)}`,
    );
    for (let i = 0; i < names.length; i += 25)
      await Promise.all(
        names.slice(i, i + 25).map((n) => storage.put(keys.dataset("public.many") + n, n.slice(0, 4))),
      );
    const first = await alice.call("datasetShow", { name: "public.many", from: 0 });
    assert.ok(first.next !== null && first.next < 900, `one page is not all of it (next ${first.next})`);
    const show = await phpo("alice", ["dataset", "show", "public.many", "--json"]);
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual(
      (JSON.parse(show.stdout) as { files: Array<{ path: string }> }).files.map((f) => f.path),
      names,
    );
    const dest = join(work, "many");
    const got = await phpo("alice", ["dataset", "get", "public.many", "--dest", dest, "--json"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal((JSON.parse(got.stdout) as { files: unknown[] }).files.length, 900);
    assert.equal(await readFile(join(dest, names[899]!), "utf8"), "0899");
  });

  it("steering records only what S3 holds: bytes that do not match the declared sha256 are removed", async () => {
    const declared = "the file as the user hashed it";
    const sent = "other bytes, same length as it";
    assert.equal(sent.length, declared.length);
    const base = { name: "user.demo.lies", path: "f.txt", size: declared.length, sha256: sha(declared) };
    const r = await demo.call("datasetPut", base);
    assert.equal(r.type, "single");
    if (r.type !== "single") return;
    const res = await fetch(r.url, {
      method: "PUT",
      body: sent,
      headers: { "content-length": String(sent.length) },
    });
    assert.equal(res.status, 200);
    await assert.rejects(
      demo.call("datasetCommit", base),
      /sha256: f\.txt arrived as 30 bytes with sha256 [0-9a-f]{64}, not/,
    );
    assert.equal(await storage.head(keys.dataset("user.demo.lies") + "f.txt"), null, "removed");
    await assert.rejects(demo.call("datasetShow", { name: "user.demo.lies", from: 0 }), /does not exist/);
  });

  it("a part URL takes exactly its part's length: more bytes are refused by S3, and no part beyond the file's", async () => {
    const size = 6 * MiB;
    const base = { name: "user.demo.parts", path: "p.bin", size, sha256: sha("unused") };
    const r = await demo.call("datasetPut", { ...base, partSize: 5 * MiB });
    assert.equal(r.type, "multipart");
    if (r.type !== "multipart") return;
    const ask = { name: base.name, path: base.path, uploadId: r.uploadId, size, partSize: 5 * MiB };
    const { urls } = await demo.call("datasetParts", { ...ask, partNumbers: [1, 2] });
    const put = (url: string, n: number) =>
      fetch(url, { method: "PUT", body: randomBytes(n), headers: { "content-length": String(n) } });
    const over = await put(urls[1]!.url, MiB + 1);
    await over.body?.cancel();
    assert.equal(over.status, 403, "the last part is 1 MiB: one byte more is refused");
    const exact = await put(urls[1]!.url, MiB);
    await exact.body?.cancel();
    assert.equal(exact.status, 200);
    await refused(
      demo.call("datasetParts", { ...ask, partNumbers: [3] }),
      "INVALID_ARGUMENT",
      /make 2 parts, not 3/,
    );
  });

  it("quota: a put over the user's dataset_files or dataset_bytes is refused, naming the limit", async () => {
    await setLimits(stack.dir, "bob", { datasetFiles: 2, datasetBytes: 100 });
    const dir = join(work, "bobdata");
    await mkdir(dir, { recursive: true });
    for (const f of ["1.txt", "2.txt", "3.txt"]) await writeFile(join(dir, f), f);
    const put = await phpo("bob", ["dataset", "put", dir, "--name", "user.bob.three"]);
    assert.equal(put.code, 1, put.stderr);
    assert.match(put.stderr, /the limit dataset_files is 2: .*set-limits bob --dataset-files 4/);
    await writeFile(join(work, "big.bin"), randomBytes(101));
    const big = await phpo("bob", ["dataset", "put", join(work, "big.bin"), "--name", "user.bob.big"]);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /the limit dataset_bytes is 100/);
    const ls = await phpo("bob", ["dataset", "ls", "--json"]);
    const usage = (JSON.parse(ls.stdout) as { usage: { files: number; maxFiles: number } }).usage;
    assert.deepEqual(
      [usage.files, usage.maxFiles],
      [2, 2],
      "the first two files went in; the third was refused",
    );
  });

  it("a multipart upload interrupted after one part resumes with the other parts; get verifies checksums", async () => {
    const file = join(work, "big", "train.bin");
    await mkdir(join(work, "big"), { recursive: true });
    const data = randomBytes(11 * MiB + 123);
    await writeFile(file, data);
    const flags = {
      name: "user.demo.big",
      multipartThreshold: "6",
      partSize: "5",
    };
    const usage = async () =>
      (
        JSON.parse((await phpo("demo", ["dataset", "ls", "--mine", "--json"])).stdout) as {
          usage: { bytes: number; uploads: number; uploadBytes: number };
        }
      ).usage;
    const before = await usage();
    // the first run stops (as a killed phpo would) once S3 has accepted part 1 of 3
    const ctx = new VerbContext(
      { stdout: { write: () => true }, stderr: { write: () => true } },
      { config: env.demo!.GRIDTUNE_CONFIG },
      { HOME: join(work, "nohome"), ...env.demo },
    );
    try {
      await assert.rejects(
        datasetPutVerb(ctx, [file], flags, {
          onPart: (n) => {
            if (n === 1) throw new Error("interrupted");
          },
        }),
        /interrupted/,
      );
    } finally {
      await ctx.close();
    }
    // the interrupted upload's part (5 MiB) counts in demo's quota until it is resumed (or swept)
    const held = await usage();
    assert.deepEqual(
      [held.uploads - before.uploads, held.uploadBytes - before.uploadBytes, held.bytes - before.bytes],
      [1, 5 * MiB, 5 * MiB],
    );
    const ls = await phpo("demo", ["dataset", "ls", "--mine"]);
    assert.match(ls.stdout, /of which \d+ unfinished uploads hold \d+ bytes: run the same put again/);
    const run = await phpo("demo", [
      "dataset",
      "put",
      file,
      "--name",
      "user.demo.big",
      "--multipart-threshold",
      "6",
      "--part-size",
      "5",
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const [r] = (JSON.parse(run.stdout) as { files: Array<Record<string, unknown>> }).files;
    assert.deepEqual(
      { how: r?.how, sent: r?.partsSent, resumed: r?.partsResumed, sha256: r?.sha256, size: r?.size },
      { how: "multipart", sent: 2, resumed: 1, sha256: sha(data), size: data.length },
    );
    assert.match(run.stderr, /resuming, 1\/3 parts already sent/);
    assert.match(run.stderr, /part 3\/3 \(100%\)/);
    const done = await usage();
    assert.deepEqual(
      [done.uploads - before.uploads, done.bytes - before.bytes],
      [0, data.length],
      "the upload became the file: its parts are no longer counted apart",
    );

    const dest = join(work, "got");
    const got = await phpo("demo", ["dataset", "get", "user.demo.big", "--dest", dest, "--json"]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok((await readFile(join(dest, "train.bin"))).equals(data));

    // S3's copy changed behind steering's back: get refuses it and writes nothing
    const key = keys.dataset("user.demo.big") + "train.bin";
    const tampered = Buffer.from(data);
    tampered[5] = tampered[5]! ^ 0xff;
    await storage.put(key, tampered);
    const dest2 = join(work, "got2");
    const bad = await phpo("demo", ["dataset", "get", "user.demo.big", "--dest", dest2]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, new RegExp(`train\\.bin: received .* but the dataset records ${sha(data)}`));
    assert.ok(!existsSync(join(dest2, "train.bin")) && !existsSync(join(dest2, "train.bin.part")));
    const body = await storage.s3.send(new GetObjectCommand({ Bucket: storage.config.bucket, Key: key }));
    assert.equal((await body.Body!.transformToByteArray()).length, data.length);

    const rmd = await phpo("demo", ["dataset", "rm", "user.demo.big", "--json"]);
    assert.equal(rmd.code, 0, rmd.stderr);
    assert.equal(await storage.head(key), null);
  });
});
