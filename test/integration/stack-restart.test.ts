// The embedded stack as `gridtune-stack` starts it: the URLs it prints say what they are (TLS),
// and a restart in the same state directory comes back on the same ports, so that the endpoints
// printed before (and a hand-configured agent or phpo) stay valid.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { startEmbeddedStack, type StackOptions } from "../../stack/embedded.ts";

describe("gridtune-stack restarts", { timeout: 120_000 }, () => {
  let dir: string;
  const opts = (): StackOptions => ({
    dir,
    agents: 0,
    runtime: "process",
    mode: "inline",
    stablePorts: true,
    logger: createLogger("test-stack", { level: "warn" }),
  });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gridtune-restart-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("prints a tls:// URL, and comes back on the same ports; a taken port is replaced", async () => {
    const first = await startEmbeddedStack(opts());
    const urls = { nats: first.nats.url, s3: first.s3.endpoint };
    await first.stop();
    assert.match(urls.nats, /^tls:\/\/127\.0\.0\.1:\d+$/, "the server requires TLS: the URL says so");
    const client = JSON.parse(await readFile(join(dir, "client.json"), "utf8")) as { natsUrl: string };
    assert.equal(client.natsUrl, urls.nats);

    const second = await startEmbeddedStack(opts());
    try {
      assert.equal(second.nats.url, urls.nats, "same NATS port after a restart");
      assert.equal(second.s3.endpoint, urls.s3, "same S3 port after a restart");
    } finally {
      await second.stop();
    }

    // someone else took the S3 port meanwhile: the stack starts anyway, on another one
    const s3Port = Number(new URL(urls.s3).port);
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(s3Port, "127.0.0.1", () => r()));
    try {
      const third = await startEmbeddedStack(opts());
      try {
        assert.equal(third.nats.url, urls.nats);
        assert.notEqual(third.s3.endpoint, urls.s3);
      } finally {
        await third.stop();
      }
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
