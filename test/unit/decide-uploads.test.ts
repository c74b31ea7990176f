// The sweep of abandoned dataset uploads as a pure decision (core/decide/uploads.ts) on literal
// times: an upload idle past maxAgeMs (no part since, nor the start) is aborted, a log line first;
// one still within it is kept; an upload outside datasets/ is not steering's. And the shell's
// timer (UploadSweep.start) on the FakeClock: a sweep every quarter of the age, no sleeping.
import { testWorld } from "./fixtures/agentKit.ts";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../steering/core/decider.ts";
import type { LiveUpload } from "../../steering/core/decide/uploads.ts";
import type { World } from "../../steering/core/world.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { UploadSweep, uploadSweepEveryMs } from "../../steering/shell/datasetUploads.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const world: World = testWorld();

const upload = (over: Partial<LiveUpload> = {}): LiveUpload => ({
  key: "datasets/user.alice.big/train.bin",
  uploadId: "u1",
  initiated: 1_000_000,
  lastPartAt: null,
  bytes: 0,
  ...over,
});

const sweep = (uploads: LiveUpload[], now: number, maxAgeMs = DAY) =>
  decide(world, { type: "upload-sweep", uploads, maxAgeMs }, now);

describe("the sweep of abandoned dataset uploads", () => {
  it("keeps an upload idle for maxAgeMs, aborts it one ms later (logged first, then aborted)", () => {
    const u = upload({ bytes: 5 });
    const kept = sweep([u], 1_000_000 + DAY);
    assert.deepEqual(kept.reply, { aborted: 0, kept: 1, freedBytes: 0 });
    assert.deepEqual(kept.effects, []);
    const gone = sweep([u], 1_000_000 + DAY + 1);
    assert.deepEqual(gone.reply, { aborted: 1, kept: 0, freedBytes: 5 });
    assert.deepEqual(gone.events, [], "nothing to log in the event log: S3 holds the uploads");
    assert.deepEqual(gone.effects, [
      {
        type: "log",
        level: "info",
        message: "abandoned dataset upload aborted",
        fields: { key: u.key, uploadId: "u1", idleMs: DAY + 1, bytes: 5 },
      },
      { type: "abort-upload", key: u.key, uploadId: "u1" },
    ]);
  });

  it("a part moves the upload's last sign of life: a slow upload that goes on is not abandoned", () => {
    const u = upload({ lastPartAt: 1_000_000 + 20 * HOUR, bytes: 10 });
    assert.equal(sweep([u], 1_000_000 + DAY + HOUR).reply.aborted, 0);
    assert.equal(sweep([u], 1_000_000 + 20 * HOUR + DAY + 1).reply.aborted, 1);
  });

  it("the age is the configured one", () => {
    const u = upload();
    assert.equal(sweep([u], 1_000_000 + HOUR + 1, HOUR).reply.aborted, 1);
    assert.equal(sweep([u], 1_000_000 + HOUR + 1, 2 * HOUR).reply.aborted, 0);
  });

  it("only uploads under datasets/ are steering's to abort; each of the others is judged alone", () => {
    const d = sweep(
      [
        upload({ key: "tasks/1/points/0/j/a1/checkpoint.tgz", uploadId: "x" }),
        upload({ uploadId: "old" }),
        upload({ uploadId: "young", initiated: 1_000_000 + DAY }),
      ],
      1_000_000 + DAY + 1,
    );
    assert.deepEqual(d.reply, { aborted: 1, kept: 1, freedBytes: 0 });
    assert.deepEqual(
      d.effects.filter((e) => e.type === "abort-upload"),
      [{ type: "abort-upload", key: "datasets/user.alice.big/train.bin", uploadId: "old" }],
    );
  });

  it("an upload S3 dates after `now` (clocks apart) is kept", () => {
    assert.equal(sweep([upload({ initiated: 5_000_000 })], 1_000_000).reply.kept, 1);
  });

  it("the sweep runs on the clock every quarter of the age, between a second and an hour", async () => {
    assert.equal(uploadSweepEveryMs(DAY), HOUR);
    assert.equal(uploadSweepEveryMs(2 * HOUR), HOUR / 2);
    assert.equal(uploadSweepEveryMs(1_000), 1_000);
    const clock = new FakeClock(0);
    const listings: number[] = [];
    const decided: number[] = [];
    const s = new UploadSweep({
      storage: {
        listMultipartUploads: () => {
          listings.push(clock.now());
          return Promise.resolve([{ key: "datasets/user.a.x/f", uploadId: "u", initiated: 0 }]);
        },
        listParts: () => Promise.resolve([]),
      },
      run: (d) => {
        const r = d();
        decided.push(r.effects.length);
        return Promise.resolve(r.reply);
      },
      world: () => world,
      effects: { run: () => Promise.resolve() },
      clock,
      maxAgeMs: 2 * HOUR,
      logger: { error: (m) => assert.fail(m) },
    });
    const cancel = s.start();
    assert.equal(clock.pending, 1);
    clock.advance(HOUR / 2 - 1);
    assert.deepEqual(listings, []);
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(listings, [HOUR / 2]);
    // the sweeps at 0.5 h .. 2 h keep the upload (idle up to 2 h); the one at 2.5 h aborts it
    for (let i = 0; i < 4; i++) {
      clock.advance(HOUR / 2);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(decided, [0, 0, 0, 0, 2]);
    cancel();
    assert.equal(clock.pending, 0);
  });

  it("the age is steering's setting: 24 h unless GRIDTUNE_DATASET_UPLOAD_MAX_AGE_MS says; under a minute is refused", () => {
    const env = {
      NATS_URL: "tls://127.0.0.1:4222",
      GRIDTUNE_SEED_FILE: "/s/seeds/steering.nk",
      GRIDTUNE_API_SEED_FILE: "/s/seeds/steering-api.nk",
      S3_ENDPOINT: "http://127.0.0.1:9000",
      AWS_ACCESS_KEY_ID: "k",
      AWS_SECRET_ACCESS_KEY: "s",
    };
    assert.equal(compileSteeringConfig({}, env).datasetUploadMaxAgeMs, DAY);
    assert.equal(
      compileSteeringConfig({}, { ...env, GRIDTUNE_DATASET_UPLOAD_MAX_AGE_MS: "7200000" })
        .datasetUploadMaxAgeMs,
      2 * HOUR,
    );
    assert.throws(
      () => compileSteeringConfig({}, { ...env, GRIDTUNE_DATASET_UPLOAD_MAX_AGE_MS: "1000" }),
      /datasetUploadMaxAgeMs/,
    );
  });
});
