// The embedded S3 server checks signatures (issue 14, item 6), on the real stack: a presigned URL
// edited to another object, with another signature, used with another method, or signed with a
// wrong secret is refused, and so is an expired one; unsigned (anonymous) requests are refused; a
// multi-MB object round-trips byte-exact (sha256) through the agent's and phpo's transfer code; and
// gridtune itself never sends an unsigned request (the server logs each refusal, and a whole task
// with its downloads leaves none).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fetchToFile } from "../../client/fetchFile.ts";
import { uploadSandbox } from "../../client/sandbox.ts";
import { download, upload } from "../../evaluator/transfer.ts";
import { S3Credentials } from "../../stack/s3Server.ts";
import { Storage } from "../../steering/shell/storage.ts";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("S3 checks signatures and refuses anonymous requests", { timeout: 180_000 }, () => {
  let stack: TestStack;
  let storage: Storage;
  let tmp: string;
  const storageWith = (secretAccessKey: string) =>
    new Storage({
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      bucket: "gridtune",
      accessKeyId: stack.s3.credentials.accessKeyId,
      secretAccessKey,
      presignTtlSeconds: 300,
    });
  before(async () => {
    stack = await startTestStack({ agents: 1 });
    storage = storageWith(stack.s3.credentials.secretAccessKey);
    tmp = await mkdtemp(join(tmpdir(), "gridtune-s3sig-"));
    await storage.put("probe/a.txt", "object a");
    await storage.put("probe/b.txt", "object b");
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Status and S3 error code of a request. */
  async function attempt(url: string, init?: RequestInit): Promise<{ status: number; code: string }> {
    const res = await fetch(url, init);
    const body = await res.text();
    return { status: res.status, code: /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? "" };
  }

  it("the untouched presigned URL works (the baseline for the edits below)", async () => {
    const res = await fetch(await storage.presignGet("probe/a.txt"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "object a");
  });

  it("a presigned GET edited to another object key is refused", async () => {
    const url = await storage.presignGet("probe/a.txt");
    const r = await attempt(url.replace("/probe/a.txt?", "/probe/b.txt?"));
    assert.deepEqual(r, { status: 403, code: "SignatureDoesNotMatch" });
  });

  it("a presigned PUT edited to another object key is refused and the object is unchanged", async () => {
    const url = await storage.presignPut("probe/a.txt", 5);
    const r = await attempt(url.replace("/probe/a.txt?", "/probe/b.txt?"), { method: "PUT", body: "evil!" });
    assert.deepEqual(r, { status: 403, code: "SignatureDoesNotMatch" });
    assert.equal(await (await fetch(await storage.presignGet("probe/b.txt"))).text(), "object b");
  });

  it("a presigned URL with an edited signature is refused", async () => {
    const url = new URL(await storage.presignGet("probe/a.txt"));
    const sig = url.searchParams.get("X-Amz-Signature")!;
    url.searchParams.set("X-Amz-Signature", (sig[0] === "0" ? "1" : "0") + sig.slice(1));
    assert.deepEqual(await attempt(url.toString()), { status: 403, code: "SignatureDoesNotMatch" });
  });

  it("a URL signed with a wrong secret for the right access key id is refused", async () => {
    const forger = storageWith("not-the-secret-not-the-secret-00");
    try {
      const r = await attempt(await forger.presignPut("probe/a.txt", 5), { method: "PUT", body: "evil!" });
      assert.deepEqual(r, { status: 403, code: "SignatureDoesNotMatch" });
    } finally {
      forger.close();
    }
    assert.equal(await (await fetch(await storage.presignGet("probe/a.txt"))).text(), "object a");
  });

  it("a presigned GET used with another method (PUT, DELETE) is refused", async () => {
    const url = await storage.presignGet("probe/a.txt");
    assert.equal((await attempt(url, { method: "PUT", body: "evil!" })).status, 403);
    assert.equal((await attempt(url, { method: "DELETE" })).status, 403);
    assert.equal(await (await fetch(await storage.presignGet("probe/a.txt"))).text(), "object a");
  });

  it("a presigned PUT with a body of another size than the signed content-length is refused", async () => {
    const url = await storage.presignPut("probe/a.txt", 8);
    assert.equal((await attempt(url, { method: "PUT", body: "evil!" })).status, 403);
    assert.equal((await attempt(url, { method: "PUT", body: "evil!evil!evil!" })).status, 403);
    assert.equal(await (await fetch(await storage.presignGet("probe/a.txt"))).text(), "object a");
  });

  it("an expired presigned URL is refused", async () => {
    const url = await storage.presignGet("probe/a.txt", 1);
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(await attempt(url), { status: 403, code: "AccessDenied" });
  });

  it("unsigned requests are refused: the bucket can be neither read, listed nor written anonymously", async () => {
    const base = `${stack.s3.endpoint}/gridtune`;
    assert.equal((await attempt(`${base}/probe/a.txt`)).status, 403);
    assert.equal((await attempt(`${base}?list-type=2`)).status, 403);
    assert.equal((await attempt(`${base}/probe/a.txt`, { method: "PUT", body: "evil!" })).status, 403);
    assert.equal((await attempt(`${base}/probe/a.txt`, { method: "DELETE" })).status, 403);
    assert.equal((await attempt(`${stack.s3.endpoint}/`)).status, 403);
    assert.equal(await (await fetch(await storage.presignGet("probe/a.txt"))).text(), "object a");
    const log = await readFile(join(stack.dir, "s3", "s3.log"), "utf8");
    assert.match(log, /refused anonymous PUT \/gridtune\/probe\/a\.txt/);
  });

  it("a multi-MB object round-trips byte-exact through the agent's and phpo's transfer code", async () => {
    const data = randomBytes(6 * 1024 * 1024 + 123);
    const src = join(tmp, "big.bin");
    await writeFile(src, data);
    // the agent's path: presigned PUT with a signed content-length, presigned GET with a size cap
    const agentKey = "probe/agent-big.bin";
    const put = await upload(await storage.presignPut(agentKey, data.length), src);
    assert.equal(put.size, data.length);
    assert.deepEqual(await storage.head(agentKey), { size: data.length, etag: put.etag });
    const back = join(tmp, "agent-back.bin");
    await download(await storage.presignGet(agentKey), back, { maxBytes: data.length });
    assert.equal(sha256(await readFile(back)), sha256(data));
    // phpo's path: the `upload` verb's presigned PUT, then a presigned GET saved by fetchToFile
    const api = await stack.connect();
    const grant = await api.call("upload", { size: data.length });
    await uploadSandbox(grant.url, data);
    const saved = join(tmp, "phpo-back.bin");
    assert.equal(await fetchToFile(await storage.presignGet(grant.key), saved, "the object"), data.length);
    assert.equal(sha256(await readFile(saved)), sha256(data));
  });

  it("gridtune sends no unsigned request: a whole task and its downloads leave no refusal in the log", async () => {
    const logFile = join(stack.dir, "s3", "s3.log");
    const before = (await readFile(logFile, "utf8")).split("\n").length;
    const api = await stack.connect();
    const taskId = await api.submit(
      stepsTask(
        { maxPoints: 2, nParallelEvaluation: 2, checkPointToSave: ["checkpoint"], checkPointInterval: 0.01 },
        { steps: 3, delay: 0.05 },
      ),
    );
    const d = await api.waitFinished(taskId, 90_000);
    assert.equal(d.counts.done, 2);
    const items = (await api.call("download", { taskId, kinds: ["log", "checkpoint", "output"] })).items;
    assert.ok(items.length >= 2);
    for (const i of items) {
      const u = new URL(i.url);
      assert.equal(u.searchParams.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
      assert.match(u.searchParams.get("X-Amz-Signature") ?? "", /^[0-9a-f]{64}$/);
      assert.match(
        u.searchParams.get("X-Amz-Credential") ?? "",
        new RegExp(`^${stack.s3.credentials.accessKeyId}/`),
      );
      assert.equal((await fetch(i.url)).status, 200);
    }
    const lines = (await readFile(logFile, "utf8")).split("\n").slice(before - 1);
    assert.deepEqual(
      lines.filter((l) => l.includes("refused anonymous")),
      [],
      "every S3 request of steering, the agent and phpo was signed",
    );
  });

  it("the stack's key pair is its own, not s3rver's well-known S3RVER/S3RVER", async () => {
    assert.notEqual(stack.s3.credentials.accessKeyId, "S3RVER");
    const file = await readFile(join(stack.dir, "s3", "credentials.json"), "utf8");
    assert.deepEqual(S3Credentials.parse(JSON.parse(file)), stack.s3.credentials);
    const old = new Storage({
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      bucket: "gridtune",
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      presignTtlSeconds: 60,
    });
    try {
      assert.deepEqual(await attempt(await old.presignGet("probe/a.txt")), {
        status: 403,
        code: "InvalidAccessKeyId",
      });
    } finally {
      old.close();
    }
  });
});
