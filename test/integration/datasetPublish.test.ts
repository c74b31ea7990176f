// `gridtune-steering admin dataset publish|unpublish|list` on the real stack (nats-server, the
// SigV4-checking S3 server, steering, a process agent): an admin publishes a user's dataset (S3
// server-side copy) and a local directory with recorded sha256; another user lists it, trains on
// it with --trainingDS and `get` verifies its checksums; a plain user has no way to publish.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Command } from "commander";
import { GridtuneError } from "../../protocol/errors.ts";
import { registerAdminCommands } from "../../steering/cli/adminCommands.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { keys, Storage } from "../../steering/shell/storage.ts";
import { runPhpo } from "../harness/fakeSteering.ts";
import {
  FIXTURES,
  plainUserEnv,
  startTestStack,
  type StackClient,
  type TestStack,
} from "../harness/stack.ts";

const PROBE = join(FIXTURES, "payloads", "probe.py");
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

describe(
  "admin dataset publish: datasets every user reads, with recorded checksums",
  { timeout: 300_000 },
  () => {
    let stack: TestStack;
    let storage: Storage;
    let alice: StackClient;
    let work: string;
    const env: Record<string, Record<string, string>> = {};

    /** `admin …` in-process; `s3Env` is all the environment it sees (no keys: the stack's file). */
    async function admin(args: string[], s3Env: NodeJS.ProcessEnv): Promise<string> {
      const program = new Command().exitOverride();
      let out = "";
      registerAdminCommands(program, { write: (text) => (out += text), env: s3Env });
      await program.parseAsync(["node", "gridtune-steering", "admin", "--dir", stack.dir, ...args]);
      return out;
    }
    const adminEnv = () => ({ S3_ENDPOINT: stack.steeringEnv.S3_ENDPOINT });

    before(async () => {
      stack = await startTestStack({ agents: 1, slotsPerAgent: 2 });
      storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
      work = await mkdtemp(join(tmpdir(), "gt-dspub-"));
      alice = await stack.connect("alice");
      await stack.connect("demo");
      for (const user of ["demo", "alice"]) env[user] = await plainUserEnv(stack, work, user);
    });
    after(async () => {
      storage?.close();
      await stack?.cleanup();
      await rm(work, { recursive: true, force: true });
    });
    const phpo = (user: string, args: string[]) => runPhpo(args, env[user]);

    it("publish from a user's dataset: another user lists it, trains on it, and get verifies it", async () => {
      const dir = join(work, "demodata");
      await mkdir(dir, { recursive: true });
      const files: Record<string, string> = { "a1.txt": "1", "a2.txt": "22" };
      for (const [f, body] of Object.entries(files)) await writeFile(join(dir, f), body);
      const put = await phpo("demo", ["dataset", "put", dir, "--name", "user.demo.digits"]);
      assert.equal(put.code, 0, put.stderr);

      // the keys come from <stack dir>/s3/credentials.json: the environment names only the endpoint
      const out = await admin(["dataset", "publish", "hep.digits", "--from", "user.demo.digits"], adminEnv());
      assert.match(out, /published hep\.digits: 2 files, 3 bytes, sha256 recorded/);

      const ls = await phpo("alice", ["dataset", "ls"]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /hep\.digits +published +2 +3/);
      assert.doesNotMatch(ls.stdout, /user\.demo/, "another user's private dataset is not listed");
      const mine = await phpo("alice", ["dataset", "ls", "--mine", "--json"]);
      assert.deepEqual((JSON.parse(mine.stdout) as { datasets: unknown[] }).datasets, []);
      const own = await phpo("demo", ["dataset", "ls", "--json"]);
      assert.deepEqual(
        (JSON.parse(own.stdout) as { datasets: Array<{ name: string; published: boolean }> }).datasets.map(
          (d) => [d.name, d.published],
        ),
        [
          ["user.demo.digits", false],
          ["hep.digits", true],
        ],
      );

      const show = await phpo("alice", ["dataset", "show", "hep.digits", "--json"]);
      assert.deepEqual((JSON.parse(show.stdout) as { files: unknown[] }).files, [
        { path: "a1.txt", size: 1, sha256: sha("1") },
        { path: "a2.txt", size: 2, sha256: sha("22") },
      ]);
      const dest = join(work, "got");
      const got = await phpo("alice", ["dataset", "get", "hep.digits", "--dest", dest, "--json"]);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(
        (JSON.parse(got.stdout) as { files: Array<{ verified: boolean }> }).files.map((f) => f.verified),
        [true, true],
      );
      assert.equal(await readFile(join(dest, "a2.txt"), "utf8"), "22");

      const taskId = await alice.submit({
        outDS: "user.alice.pubprobe/",
        evaluationContainer: "gridtune/python:1",
        evaluationExec: `/usr/bin/python3 ${PROBE}`,
        searchSpace: {
          x: { method: "categorical", dimension: { categories: [0, 1] } },
          mode: { method: "categorical", dimension: { categories: ["data"] } },
        } as never,
        trainingDS: "hep.digits",
        maxPoints: 2,
        nParallelEvaluation: 2,
        nPointsPerIteration: 2,
      });
      const d = await alice.waitFinished(taskId, 120_000);
      assert.equal(d.state, "finished");
      assert.equal(d.counts.done, 2, JSON.stringify(d.counts));
    });

    it("a published dataset is not overwritten without --replace; a directory is published too", async () => {
      const dir = join(work, "pubdir");
      await mkdir(join(dir, "sub"), { recursive: true });
      await writeFile(join(dir, "sub", "x.txt"), "xyz");
      // a link to a file outside the directory (the admin's own secrets) is not published
      await writeFile(join(work, "secret.txt"), "not for users");
      await symlink(join(work, "secret.txt"), join(dir, "sub", "link.txt"));
      await assert.rejects(
        admin(["dataset", "publish", "hep.digits", "--from", dir], adminEnv()),
        (e: unknown) =>
          e instanceof GridtuneError && e.code === "CONFLICT" && /pass --replace/.test(e.message),
      );
      assert.equal((await storage.list(keys.dataset("hep.digits"))).length, 2, "left as it was");
      const out = await admin(
        ["dataset", "publish", "hep.digits", "--from", dir, "--replace", "--json"],
        adminEnv(),
      );
      assert.deepEqual((JSON.parse(out) as { files: unknown[] }).files, [
        { path: "sub/x.txt", size: 3, sha256: sha("xyz") },
      ]);
      const show = await phpo("alice", ["dataset", "show", "hep.digits", "--json"]);
      assert.deepEqual((JSON.parse(show.stdout) as { files: unknown[] }).files, [
        { path: "sub/x.txt", size: 3, sha256: sha("xyz") },
      ]);
      assert.match(
        await admin(["dataset", "list"], adminEnv()),
        /hep\.digits +1 files 3 bytes, 1 with sha256/,
      );
    });

    it("publishing into a user's scope is refused: a user's dataset stays the user's", async () => {
      await assert.rejects(
        admin(["dataset", "publish", "user.alice.digits", "--from", "user.demo.digits"], adminEnv()),
        (e: unknown) =>
          e instanceof GridtuneError &&
          e.code === "INVALID_ARGUMENT" &&
          /user\.\* is the users' own scope/.test(e.message),
      );
      assert.deepEqual(await storage.list(keys.dataset("user.alice.digits")), []);
    });

    it("a plain user cannot publish: no API verb, no write outside user.<me>.*, no keys for the admin command", async () => {
      // steering has no publish verb: the request is refused by its schema
      await assert.rejects(
        (alice.call as (verb: string, p: unknown) => Promise<unknown>)("datasetPublish", {
          name: "hep.mine",
          from: "user.alice.x",
        }),
        (e: unknown) => e instanceof GridtuneError && e.code === "INVALID_ARGUMENT",
      );
      const put = await phpo("alice", ["dataset", "put", join(work, "demodata"), "--name", "hep.digits"]);
      assert.equal(put.code, 2, put.stderr);
      // the admin command needs steering's S3 keys: without them (no env, no stack directory) it stops
      const empty = await mkdtemp(join(tmpdir(), "gt-nokeys-"));
      const program = new Command().exitOverride();
      registerAdminCommands(program, { write: () => undefined, env: adminEnv() });
      await assert.rejects(
        program.parseAsync([
          "node",
          "g",
          "admin",
          "--dir",
          empty,
          "dataset",
          "publish",
          "hep.x",
          "--from",
          work,
        ]),
        /steering's S3 keys are needed: set AWS_ACCESS_KEY_ID/,
      );
      await rm(empty, { recursive: true, force: true });
      // and keys that are not steering's are refused by S3
      await assert.rejects(
        admin(["dataset", "list"], {
          ...adminEnv(),
          AWS_ACCESS_KEY_ID: "AKIAFAKEFAKEFAKE",
          AWS_SECRET_ACCESS_KEY: "x".repeat(40),
        }),
      );
    });

    it("unpublish removes the files and the manifest; users no longer see it", async () => {
      assert.match(
        await admin(["dataset", "unpublish", "hep.digits"], adminEnv()),
        /unpublished hep\.digits: 1 files/,
      );
      assert.deepEqual(await storage.list(keys.dataset("hep.digits")), []);
      assert.equal(await storage.head(keys.datasetManifest("hep.digits")), null);
      const ls = await phpo("alice", ["dataset", "ls", "--json"]);
      assert.deepEqual((JSON.parse(ls.stdout) as { datasets: unknown[] }).datasets, []);
      await assert.rejects(admin(["dataset", "unpublish", "hep.digits"], adminEnv()), /is not published/);
    });
  },
);
