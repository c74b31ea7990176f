// Steering's API on a real nats-server (max_payload 1 MiB): a task with 2,000 finished points,
// each with a metrics tarball and a log. Unpaged, `download --metrics --logs` would be a 2 MB
// reply that nats-core refuses to send, leaving phpo to time out saying steering is down; now it
// is a TOO_LARGE error at once, and phpo download follows the pages and fetches every file.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import * as tar from "tar";
import { ApiClient } from "../../client/api.ts";
import { RemoteError } from "../../client/errors.ts";
import { steeringIdentity, userIdentity } from "../../protocol/identity.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { subjects } from "../../protocol/subjects.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { startNatsServer, type NatsServerHandle } from "../../steering/security/natsServer.ts";
import { runPhpo } from "../harness/fakeSteering.ts";
import { apiKit, createTask, record, runTask } from "../unit/fixtures/apiKit.ts";

const POINTS = 2000;

describe("steering's API replies on a real nats-server", { timeout: 180_000 }, () => {
  let dir: string;
  let nats: NatsServerHandle;
  let steering: NatsConnection;
  let user: NatsConnection;
  let http: Server;
  let flags: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-api-paging-"));
    const store = new IdentityStore(join(dir, "identities"));
    const seedFile = (await store.ensure(userIdentity("alice"))).seedFile;
    nats = await startNatsServer({ dir: join(dir, "nats"), store });
    const connect = (identity: Parameters<typeof connectNats>[0]["identity"], seed: string) =>
      connectNats({
        servers: nats.url,
        seedFile: seed,
        caFile: nats.caFile,
        identity,
        logger: () => undefined,
      });
    steering = await connect(steeringIdentity(), store.seedFile(steeringIdentity()));
    user = await connect(userIdentity("alice"), seedFile);
    flags = ["--nats-url", nats.url, "--user", "alice", "--seed-file", seedFile, "--ca-file", nats.caFile];

    // S3 stand-in: every metrics key is the same small tarball, every log a line of text
    await writeFile(join(dir, "metrics.json"), '{"acc": 0.9}\n');
    const chunks: Buffer[] = [];
    for await (const c of tar.create({ gzip: true, cwd: dir, portable: true }, [
      "metrics.json",
    ]) as AsyncIterable<Buffer>)
      chunks.push(c);
    const tgz = Buffer.concat(chunks);
    http = createServer((req, res) => {
      const key = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice("/get/".length));
      const body = key.endsWith("metrics.tgz") ? tgz : Buffer.from(`log of ${key}\n`);
      res.writeHead(200, { "content-length": body.length }).end(body);
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    const addr = http.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;

    const maxPayload = steering.info?.max_payload;
    assert.equal(maxPayload, 1024 * 1024, "the server's default max_payload");
    const kit = apiKit({ maxPayload, urlBase: `http://127.0.0.1:${port}/get` });
    const e = createTask(kit, "1", "alice", {
      maxPoints: POINTS,
      nPointsPerIteration: POINTS,
      nParallelEvaluation: 1,
    });
    runTask(kit, e);
    record(kit, { type: "task-state", taskId: "1", at: 1e7, state: "finished" });
    steering.subscribe(subjects.apiAll, {
      callback: (err, m) => {
        if (!err) void kit.api.handle(m);
      },
    });
    await steering.flush();
  });

  after(async () => {
    await user?.close().catch(() => undefined);
    await steering?.close().catch(() => undefined);
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("an unpaged download of 2,000 points is a TOO_LARGE error at once, not a timeout", async () => {
    const client = new ApiClient(user, "alice", nats.url, 10_000);
    const started = Date.now();
    await assert.rejects(
      client.call("download", { taskId: "1", kinds: ["metrics", "log"] }),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError, String(e));
        assert.equal(e.code, "TOO_LARGE");
        assert.match(e.message, /over NATS's max_payload of 1048576 bytes; ask a page at a time/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000, "answered, not timed out");
  });

  it("phpo download --metrics --logs fetches all 4,000 files, page by page", async () => {
    const dest = join(dir, "dl");
    const r = await runPhpo([...flags, "--json", "download", "1", "--metrics", "--logs", "--dest", dest]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      files: Array<{ pointId: number; kind: string; entries: number | null }>;
      invalid: string[];
    };
    assert.deepEqual(out.invalid, []);
    assert.equal(out.files.length, 2 * POINTS);
    assert.equal(new Set(out.files.map((f) => f.pointId)).size, POINTS);
    assert.ok(out.files.filter((f) => f.kind === "metrics").every((f) => f.entries === 1));
    assert.equal((await readdir(dest)).length, 2 * POINTS);
    // and phpo logs finds the log of the last point, on the last page
    const log = await runPhpo([...flags, "logs", "1", String(POINTS - 1)]);
    assert.equal(log.code, 0, log.stderr);
    assert.match(
      log.stdout,
      new RegExp(`^log of tasks/1/points/${POINTS - 1}/t1-p${POINTS - 1}-j1/a1/log.txt`),
    );
  });
});
