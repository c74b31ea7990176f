// Secrets hygiene on a real stack (services as processes, as deployed): after a task has run end
// to end, with checkpoints, presigned uploads and downloads and a few refusals, no nkey seed, no
// S3 secret key and no presigned URL signature is in any log file, the steering event log
// (GTLOG), the API replies, the services' process arguments or the error messages; agents hold
// no S3 key at all; secret files are 0600 (docs/security.md).
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { userIdentity } from "../../protocol/identity.ts";
import { createLogger } from "../../protocol/log.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { STREAM_LOG } from "../../protocol/subjects.ts";
import type { ServiceProcess } from "../../stack/embedded.ts";
import { connectAsSteering, startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("secrets hygiene", { timeout: 180_000 }, () => {
  let stack: TestStack;
  /** Every secret of the stack, with a label for the failure message. */
  const secrets: Array<[string, string]> = [];
  const errors: string[] = [];

  /** Fails with the place and the kind of secret found in `text`. */
  const assertClean = (where: string, text: string) => {
    for (const [label, secret] of secrets) assert.ok(!text.includes(secret), `${where} contains ${label}`);
    assert.doesNotMatch(text, /X-Amz-Signature=/i, `${where} contains a presigned URL signature`);
    assert.doesNotMatch(text, /\bSU[A-Z2-7]{56}\b/, `${where} contains an nkey seed`);
  };

  before(async () => {
    stack = await startTestStack({ mode: "process", agents: 1, slotsPerAgent: 2 });
    const alice = await stack.connect("alice");
    const bob = await stack.connect("bob");
    for (const f of await readdir(stack.store.seedsDir)) {
      const seed = (await readFile(join(stack.store.seedsDir, f), "utf8")).trim();
      assert.match(seed, /^SU[A-Z2-7]{56}$/);
      secrets.push([`the seed of ${f}`, seed]);
    }
    assert.ok(secrets.length >= 4, "steering, agent, demo, alice, bob");
    secrets.push(["the S3 secret key", stack.s3.credentials.secretAccessKey]);

    // A task end to end: claims (presigned GETs), checkpoints and results (presigned PUTs).
    const taskId = await alice.submit(
      stepsTask(
        { maxPoints: 2, nParallelEvaluation: 2, checkPointToSave: ["checkpoint"], checkPointInterval: 0.005 },
        { steps: 8, delay: 0.1 },
      ),
    );
    const d = await alice.waitFinished(taskId, 90_000);
    assert.equal(d.counts.done, 2);
    const dl = await alice.call("download", { taskId, kinds: ["metrics", "log", "checkpoint"] });
    assert.ok(dl.items.length >= 2);
    for (const i of dl.items) assert.equal((await fetch(i.url)).status, 200);
    await alice.call("upload", { size: 10 });
    // Refusals, whose messages and log lines must carry no secret either.
    // One at a time: a request made before the previous one settled could reject unobserved.
    for (const refused of [
      () => bob.show(taskId),
      () => bob.call("download", { taskId, kinds: ["log"] }),
      () => alice.submit(stepsTask({ sandboxKey: "uploads/bob/x.tgz" })),
    ])
      errors.push(
        await refused().then(
          () => "not refused",
          (e: unknown) => String(e),
        ),
      );
    // A seed file holding a seed plus junk: the error names the file, never its content.
    const bad = join(stack.dir, "bad.nk");
    await writeFile(bad, `${secrets[0]![1]}x\n`, { mode: 0o600 });
    errors.push(
      await connectNats({
        servers: stack.nats.url,
        seedFile: bad,
        caFile: stack.nats.caFile,
        identity: userIdentity("alice"),
      }).then(
        () => "accepted",
        (e: unknown) => `${String(e)} ${(e as Error).stack ?? ""}`,
      ),
    );
    await new Promise((r) => setTimeout(r, 500)); // the last log lines reach the files
  });
  after(() => stack?.cleanup());

  it("no log file under the stack dir holds a secret", async () => {
    const logs = (await filesUnder(stack.dir)).filter((f) => f.endsWith(".log"));
    const names = logs.map((f) => f.slice(stack.dir.length + 1)).sort();
    for (const expected of ["logs/steering.log", "logs/agent-a1.log", "nats.log"])
      assert.ok(names.includes(expected), `${expected} missing: ${names.join(", ")}`);
    const steeringLog = await readFile(join(stack.dir, "logs", "steering.log"), "utf8");
    assert.match(steeringLog, /api request refused/, "the refusals are in the log being scanned");
    assert.match(steeringLog, /task submitted/);
    for (const f of logs) assertClean(f, await readFile(f, "utf8"));
  });

  it("the steering event log (GTLOG) and the show/list replies hold none", async () => {
    const nc = await connectAsSteering(stack);
    try {
      const jsm = await jetstreamManager(nc);
      const last = (await jsm.streams.info(STREAM_LOG)).state.last_seq;
      assert.ok(last > 10);
      let text = "";
      for (let seq = 1; seq <= last; seq++)
        text += (await jsm.streams.getMessage(STREAM_LOG, { seq }))?.string() ?? "";
      assert.match(text, /job-finished/);
      assertClean("GTLOG", text);
    } finally {
      await nc.close();
    }
    const alice = await stack.connect("alice");
    const list = await alice.call("list", {});
    assertClean("list reply", JSON.stringify(list));
    for (const t of list.tasks) assertClean(`show ${t.taskId}`, JSON.stringify(await alice.show(t.taskId)));
  });

  it("no process argument holds a secret; agents hold no S3 key at all", async () => {
    const procs: Array<[string, number]> = [
      ["steering", (stack.steering as ServiceProcess).child.pid!],
      ...stack.agents.map((a): [string, number] => [a.name, a.child.pid!]),
      ["nats-server", stack.nats.pid],
      ["s3 server", stack.s3.pid],
    ];
    for (const [name, pid] of procs) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");
      assert.ok(argv.length > 0, `${name} is running`);
      assertClean(`${name} arguments`, argv);
    }
    for (const a of stack.agents) {
      const env = await readFile(`/proc/${a.child.pid!}/environ`, "utf8");
      assert.ok(
        !env.includes(stack.s3.credentials.secretAccessKey),
        `${a.name} has the S3 key in its environment`,
      );
      assert.doesNotMatch(env, /AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID/);
    }
  });

  it("error messages hold none", () => {
    assert.equal(errors.length, 4);
    assert.match(errors[0]!, /NOT_FOUND|does not exist/);
    assert.match(errors[3]!, /does not hold an nkey user seed/);
    for (const [i, e] of errors.entries()) {
      assert.notEqual(e, "not refused");
      assertClean(`error ${i}`, e);
    }
  });

  it("secret files are 0600 (and their directories 0700)", async () => {
    const secretFiles = [
      ...(await readdir(stack.store.seedsDir)).map((f) => join(stack.store.seedsDir, f)),
      stack.store.file,
      stack.nats.configFile,
      stack.clientFile,
      join(stack.dir, "nats-settings.json"),
      ...(await filesUnder(join(stack.dir, "pki"))).filter((f) => f.endsWith("-key.pem")),
    ];
    assert.ok(secretFiles.some((f) => f.endsWith("ca-key.pem")));
    for (const f of secretFiles) assert.equal((await stat(f)).mode & 0o777, 0o600, `${f} mode`);
    for (const d of [stack.store.seedsDir, join(stack.dir, "pki")])
      assert.equal((await stat(d)).mode & 0o077, 0, `${d} is private`);
  });

  it("the logger redacts seeds, presigned URLs and secret-named fields, at any depth", () => {
    const lines: string[] = [];
    const log = createLogger("t", { sink: (l) => lines.push(l) });
    const seed = secrets[0]![1];
    const url = "http://s3/b/k?X-Amz-Credential=S3RVER%2F1&X-Amz-Signature=abc";
    log.warn(`could not use ${seed}`, {
      grant: { uploads: [{ kind: "log", href: url }], password: "hunter2" },
      error: new Error(`bad seed ${seed}`),
      note: `seed ${seed} here`,
    });
    const [line] = lines;
    assertClean("the log line", line!);
    assert.doesNotMatch(line!, /hunter2|abc/);
    assert.match(line!, /\[seed redacted\]/);
    assert.match(line!, /\[presigned URL redacted\]/);
  });
});
