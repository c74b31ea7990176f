import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { describeUrl, download, upload, type RetryPolicy } from "../../evaluator/transfer.ts";
import { rejectsCode } from "./fixtures/engineKit.ts";

const FAST: RetryPolicy = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20, requestTimeoutMs: 10_000 };
// What a presigned URL carries in its query: the signature must never show up in an error.
const QUERY = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDSECRET&X-Amz-Signature=deadbeefcafe";

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

let server: Server;
let base = "";
let handler: Handler = (_q, res) => res.end();
let seen: Seen[] = [];
let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gt-transfer-test-"));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
  handler = (_q, res) => res.end();
});

const url = (path: string) => `${base}/bucket/${path}?${QUERY}`;
/** Fails `failures` times with `status`, then answers with `ok`. */
function failThen(failures: number, status: number, ok: Handler, body = ""): void {
  let n = 0;
  handler = (req, res, b) => {
    if (n++ < failures) {
      res.statusCode = status;
      res.end(body);
    } else ok(req, res, b);
  };
}
const noSecret = (msg: string) => {
  assert.ok(
    !msg.includes("X-Amz-Signature") && !msg.includes("deadbeefcafe") && !msg.includes("AKIDSECRET"),
    `the query leaked: ${msg}`,
  );
};

void describe("describeUrl", () => {
  void it("keeps host and path, drops the query", () => {
    assert.equal(describeUrl(url("a/b.tgz")), `${base.slice(7)}/bucket/a/b.tgz`);
    assert.equal(describeUrl("not a url ?X-Amz-Signature=1"), "(invalid URL)");
  });
});

void describe("download", () => {
  void it("writes the body to the file and returns its size", async () => {
    handler = (_q, res) => res.end("hello world");
    const dest = join(dir, "d1");
    assert.equal(await download(url("d1"), dest, { maxBytes: 100, retry: FAST }), 11);
    assert.equal(await readFile(dest, "utf8"), "hello world");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.method, "GET");
    assert.equal(seen[0]?.url, `/bucket/d1?${QUERY}`, "the presigned query is sent as is");
  });

  void it("retries on 500 and then succeeds", async () => {
    failThen(2, 500, (_q, res) => res.end("payload"));
    const dest = join(dir, "d2");
    assert.equal(await download(url("d2"), dest, { maxBytes: 100, retry: FAST }), 7);
    assert.equal(await readFile(dest, "utf8"), "payload");
    assert.equal(seen.length, 3);
  });

  void it("retries on 503 and 429", async () => {
    let n = 0;
    handler = (_q, res) => {
      res.statusCode = [503, 429][n++] ?? 200;
      res.end("x");
    };
    assert.equal(await download(url("d3"), join(dir, "d3"), { maxBytes: 100, retry: FAST }), 1);
    assert.equal(seen.length, 3);
  });

  void it("gives up after N tries with STORAGE_FAILED naming the object, not the signature", async () => {
    handler = (_q, res) => {
      res.statusCode = 500;
      res.end("<Error><Code>InternalError</Code></Error>");
    };
    const e = await rejectsCode(
      download(url("obj.tgz"), join(dir, "d4"), { maxBytes: 100, retry: { ...FAST, attempts: 4 } }),
      "STORAGE_FAILED",
      "after 4 tries",
      "/bucket/obj.tgz",
      "HTTP 500 InternalError",
    );
    noSecret(e.message);
    assert.equal(seen.length, 4);
  });

  void it("403 'Request has expired' is not retried, says expired, and never shows the query", async () => {
    handler = (_q, res) => {
      res.statusCode = 403;
      res.end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
    };
    const e = await rejectsCode(
      download(url("exp.tgz"), join(dir, "d5"), { maxBytes: 100, retry: FAST }),
      "STORAGE_FAILED",
      "expired",
    );
    noSecret(e.message);
    assert.ok(e.message.includes("/bucket/exp.tgz"), e.message);
    assert.equal(e.retryable, false);
    assert.equal(seen.length, 1, "not retried");
  });

  void it("404 is not retried and names the S3 error code", async () => {
    handler = (_q, res) => {
      res.statusCode = 404;
      res.end("<Error><Code>NoSuchKey</Code></Error>");
    };
    const e = await rejectsCode(
      download(url("nokey"), join(dir, "d6"), { maxBytes: 100, retry: FAST }),
      "STORAGE_FAILED",
      "HTTP 404 NoSuchKey",
    );
    noSecret(e.message);
    assert.equal(seen.length, 1);
  });

  void it("refuses a declared content-length over maxBytes (TOO_LARGE, not retried)", async () => {
    handler = (_q, res) => res.end("x".repeat(500));
    const e = await rejectsCode(
      download(url("big"), join(dir, "d7"), { maxBytes: 100, retry: FAST }),
      "TOO_LARGE",
      "500 bytes exceeds the limit of 100",
    );
    noSecret(e.message);
    assert.equal(seen.length, 1);
  });

  void it("enforces maxBytes on a chunked body without content-length (TOO_LARGE, not retried)", async () => {
    handler = (_q, res) => {
      res.setHeader("transfer-encoding", "chunked");
      for (let i = 0; i < 10; i++) res.write("y".repeat(50));
      res.end();
    };
    const e = await rejectsCode(
      download(url("chunky"), join(dir, "d8"), { maxBytes: 120, retry: FAST }),
      "TOO_LARGE",
      "more than 120 bytes",
    );
    noSecret(e.message);
    assert.equal(seen.length, 1);
  });

  void it("a body exactly at maxBytes is accepted", async () => {
    handler = (_q, res) => res.end("z".repeat(100));
    assert.equal(await download(url("exact"), join(dir, "d9"), { maxBytes: 100, retry: FAST }), 100);
  });

  void it("a request that hangs times out, is retried, then fails with STORAGE_FAILED", async () => {
    handler = () => undefined; // never answers
    const e = await rejectsCode(
      download(url("hang"), join(dir, "d10"), {
        maxBytes: 100,
        retry: { ...FAST, attempts: 2, requestTimeoutMs: 150 },
      }),
      "STORAGE_FAILED",
      "after 2 tries",
    );
    noSecret(e.message);
    assert.equal(seen.length, 2);
  });

  void it("a refused connection fails with STORAGE_FAILED after the retries, without the query", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await rejectsCode(
      download(`http://127.0.0.1:${port}/b/k?${QUERY}`, join(dir, "d11"), { maxBytes: 100, retry: FAST }),
      "STORAGE_FAILED",
      "after 3 tries",
    );
    noSecret(e.message);
    noSecret(String((e.cause as Error | undefined)?.message ?? ""));
  });

  void it("an abort signal stops the retries", async () => {
    handler = (_q, res) => {
      res.statusCode = 500;
      res.end();
    };
    const ac = new AbortController();
    const p = download(url("abort"), join(dir, "d12"), {
      maxBytes: 100,
      signal: ac.signal,
      retry: { ...FAST, attempts: 50, baseDelayMs: 50, maxDelayMs: 50 },
    });
    setTimeout(() => ac.abort(new Error("job stopped")), 120);
    await assert.rejects(p, /job stopped/);
    assert.ok(seen.length < 10, `${seen.length} tries`);
  });
});

void describe("upload", () => {
  void it("PUTs the file with content-length (not chunked) and returns the size and the unquoted ETag", async () => {
    const file = join(dir, "u1");
    await writeFile(file, "checkpoint bytes");
    handler = (_q, res) => {
      res.setHeader("etag", '"9a0364b9e99bb480dd25e1f0284c8555"');
      res.end();
    };
    const r = await upload(url("ckpt.tgz"), file, { retry: FAST, contentType: "application/gzip" });
    assert.deepEqual(r, { size: 16, etag: "9a0364b9e99bb480dd25e1f0284c8555" });
    // a late retry of the test before (its abort does not recall a request already sent) can
    // reach the server during this one on a loaded host: only this object's requests count
    const mine = seen.filter((x) => x.url.startsWith("/bucket/ckpt.tgz?"));
    assert.equal(
      mine.length,
      1,
      `requests: ${seen.map((x) => `${x.method} ${x.url.split("?")[0]}`).join(", ")}`,
    );
    const s = mine[0]!;
    assert.equal(s.method, "PUT");
    assert.equal(s.url, `/bucket/ckpt.tgz?${QUERY}`);
    assert.equal(s.headers["content-length"], "16");
    assert.equal(
      s.headers["transfer-encoding"],
      undefined,
      "S3 presigned PUTs need a content-length, not chunked encoding",
    );
    assert.equal(s.headers["content-type"], "application/gzip");
    assert.equal(s.body.toString(), "checkpoint bytes");
  });

  void it("defaults to application/octet-stream and an empty file uploads with content-length 0", async () => {
    const file = join(dir, "u2");
    await writeFile(file, "");
    handler = (_q, res) => {
      res.setHeader("etag", '"d41d8cd98f00b204e9800998ecf8427e"');
      res.end();
    };
    assert.deepEqual(await upload(url("empty"), file, { retry: FAST }), {
      size: 0,
      etag: "d41d8cd98f00b204e9800998ecf8427e",
    });
    assert.equal(seen[0]?.headers["content-length"], "0");
    assert.equal(seen[0]?.headers["content-type"], "application/octet-stream");
  });

  void it("retries on 500 and re-sends the whole body each time", async () => {
    const file = join(dir, "u3");
    await writeFile(file, "0123456789");
    failThen(2, 500, (_q, res) => {
      res.setHeader("etag", '"e"');
      res.end();
    });
    assert.deepEqual(await upload(url("retry"), file, { retry: FAST }), { size: 10, etag: "e" });
    assert.equal(seen.length, 3);
    for (const s of seen) assert.equal(s.body.toString(), "0123456789");
  });

  void it("gives up after N tries with STORAGE_FAILED", async () => {
    const file = join(dir, "u4");
    await writeFile(file, "x");
    handler = (_q, res) => {
      res.statusCode = 502;
      res.end();
    };
    const e = await rejectsCode(
      upload(url("fail"), file, { retry: FAST }),
      "STORAGE_FAILED",
      "upload to",
      "after 3 tries",
      "HTTP 502",
    );
    noSecret(e.message);
    assert.equal(seen.length, 3);
  });

  void it("403 expired: not retried, says expired, no query in the message", async () => {
    const file = join(dir, "u5");
    await writeFile(file, "x");
    handler = (_q, res) => {
      res.statusCode = 403;
      res.end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
    };
    const e = await rejectsCode(
      upload(url("exp"), file, { retry: FAST }),
      "STORAGE_FAILED",
      "the presigned URL has expired",
    );
    noSecret(e.message);
    assert.equal(seen.length, 1);
  });

  void it("an opened payload file: its bytes are sent through the descriptor (every retry), even after the path is replaced by a link to a host file", async () => {
    const file = join(dir, "u6");
    await writeFile(file, "payload output");
    const secret = join(dir, "u6-host-secret");
    await writeFile(secret, "HOST SECRET");
    const fd = openSync(file, "r");
    try {
      // the payload swaps its file for a link after the agent checked and opened it
      await rm(file);
      await symlink(secret, file);
      failThen(1, 500, (_q, res) => {
        res.setHeader("etag", '"f"');
        res.end();
      });
      assert.deepEqual(await upload(url("fd"), { fd, size: 14 }, { retry: FAST }), { size: 14, etag: "f" });
      assert.equal(seen.length, 2);
      for (const s of seen) {
        assert.equal(s.headers["content-length"], "14");
        assert.equal(s.body.toString(), "payload output");
      }
    } finally {
      closeSync(fd);
    }
  });

  void it("a missing file fails before any request", async () => {
    await assert.rejects(upload(url("nofile"), join(dir, "does-not-exist"), { retry: FAST }), /ENOENT/);
    assert.equal(seen.length, 0);
  });
});
