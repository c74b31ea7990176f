// phpo through a moment without steering (its request connection moving to another server of a
// cluster, or steering restarting): "no responders" is retried within GRIDTUNE_NATS_RETRY_MS, and
// past it the error names the bound. A real nats-server with a fake steering answering.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type FakeSteering, runPhpo, startFakeSteering } from "../harness/fakeSteering.ts";

describe("phpo rides through a moment without steering", () => {
  let fake: FakeSteering;
  before(async () => (fake = await startFakeSteering("alice")));
  after(() => fake?.stop());

  test("a request sent while nobody answers succeeds once steering is back", async () => {
    await fake.stopResponder();
    const before = fake.requests.length;
    const run = runPhpo([...fake.flags(), "list"], { GRIDTUNE_NATS_RETRY_MS: "60000" });
    // back well within the bound: the request was retried, not failed
    let started = false;
    const back = setTimeout(() => {
      started = true;
      fake.startResponder();
    }, 1000);
    try {
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(started, "answered before steering was back");
      assert.equal(fake.requests.length, before + 1, "answered once");
    } finally {
      clearTimeout(back);
      if (!started) fake.startResponder();
    }
  });

  test("past the bound: exit 3, naming steering's URL, the tries and the bound's setting", async () => {
    await fake.stopResponder();
    try {
      const r = await runPhpo([...fake.flags(), "list"], { GRIDTUNE_NATS_RETRY_MS: "300" });
      assert.equal(r.code, 3);
      assert.match(r.stderr, /steering is not running at/);
      assert.match(r.stderr, /\d+ tries within 300 ms, GRIDTUNE_NATS_RETRY_MS/);
    } finally {
      fake.startResponder();
    }
  });

  test("a bad bound is a usage error naming the variable", async () => {
    const r = await runPhpo([...fake.flags(), "list"], { GRIDTUNE_NATS_RETRY_MS: "soon" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /GRIDTUNE_NATS_RETRY_MS=soon: give milliseconds/);
  });
});
