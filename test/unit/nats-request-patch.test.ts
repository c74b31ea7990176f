// The nats.js request patch (steering/shell/natsRequestPatch.ts): an answered request no longer builds a
// RequestError for its settled promise; a request cancelled without an answer still rejects with
// the library's RequestError("cancelled"). The library's own errors module is reached by file
// path (its package exports do not list it) to count RequestError constructions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { RequestOne, type MuxSubscription, type Msg } from "@nats-io/nats-core/internal";
import { patchNatsRequests } from "../../steering/shell/natsRequestPatch.ts";

const require = createRequire(import.meta.url);
const errorsModule = require(join(dirname(require.resolve("@nats-io/nats-core")), "errors.js")) as {
  RequestError: new (message?: string) => Error;
};

function countRequestErrors(): { count: () => number; restore: () => void } {
  const Original = errorsModule.RequestError;
  let n = 0;
  errorsModule.RequestError = class extends Original {
    constructor(message?: string) {
      super(message);
      n++;
    }
  };
  return { count: () => n, restore: () => void (errorsModule.RequestError = Original) };
}

function request(): { r: RequestOne; cancelled: string[] } {
  const cancelled: string[] = [];
  const mux = { cancel: (req: RequestOne) => cancelled.push(req.token) } as unknown as MuxSubscription;
  return { r: new RequestOne(mux, "gt.test", { timeout: 5000 }, false), cancelled };
}

test("the patch applies to the pinned nats.js", () => {
  assert.equal(patchNatsRequests(), true);
  assert.equal(patchNatsRequests(), true, "idempotent");
});

test("an answered request resolves without building a RequestError and leaves the mux", async () => {
  patchNatsRequests();
  const spy = countRequestErrors();
  try {
    const { r, cancelled } = request();
    const msg = { subject: "reply", data: new Uint8Array() } as unknown as Msg;
    r.resolver(null, msg);
    assert.equal(await r.deferred, msg);
    assert.deepEqual(cancelled, [r.token], "the request is removed from the mux");
    assert.equal(spy.count(), 0);
  } finally {
    spy.restore();
  }
});

test("a request cancelled without an answer still rejects with the library's RequestError", async () => {
  patchNatsRequests();
  const spy = countRequestErrors();
  try {
    const { r, cancelled } = request();
    r.cancel();
    await assert.rejects(r.deferred, (e: Error) => e.name === "RequestError" && e.message === "cancelled");
    assert.deepEqual(cancelled, [r.token]);
    assert.equal(spy.count(), 1);
  } finally {
    spy.restore();
  }
});

test("an error answer still rejects the request with that error's message", async () => {
  patchNatsRequests();
  const { r } = request();
  r.resolver(new Error("no responders"), {} as Msg);
  await assert.rejects(r.deferred, /no responders/);
});
