// The embedded S3-compatible server: @20minutes/s3rver 4.0 (a maintained fork of s3rver) in its own
// process, filesystem-backed under the stack's state directory. Unlike s3rver 3.x it recomputes
// SigV4 for Authorization headers and presigned query strings, so an edited or expired presigned
// URL is refused (403). Three things it does not do on its own are added by the boot script below:
//   - it serves unsigned (anonymous) requests: a guard in front of its routes refuses them, so the
//     bucket is neither readable nor writable without a signature;
//   - its only key pair is the well-known S3RVER/S3RVER: it is revoked and replaced by a random
//     pair kept in `credentials.json` beside the data directory (0600; the same pair after a
//     restart on the same directory);
//   - ListMultipartUploads, ListParts and AbortMultipartUpload (steering's quota and its sweep of
//     abandoned dataset uploads), behind the server's own SigV4 check.
// It runs with --openssl-legacy-provider because its listing continuation tokens use DES
// (paginated ListObjectsV2 fails with ERR_OSSL_EVP_UNSUPPORTED otherwise).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { z } from "zod";
import { GridtuneError, UnavailableError } from "../protocol/errors.ts";
import { writeFileAtomic } from "../steering/security/fsutil.ts";

export const S3Credentials = z.object({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/),
  secretAccessKey: z.string().min(32).max(128),
});
export type S3Credentials = z.infer<typeof S3Credentials>;

export interface S3ServerHandle {
  endpoint: string;
  port: number;
  pid: number;
  /** The server's only key pair: every request must be signed with it (SigV4 is verified). */
  credentials: S3Credentials;
  stop(): Promise<void>;
}

// The guard goes first in the Koa middleware chain: a request with no Authorization header and no
// presigned query (X-Amz-Algorithm for SigV4, Signature for SigV2) never reaches the routes. Each
// refusal is written to s3.log ("refused anonymous GET /path"; tests check gridtune causes none).
const BOOT = `
const S3rver = require(process.argv[1]);
const AWSAccount = require(require("path").join(require("path").dirname(process.argv[1]), "models", "account.js"));
const [dir, address, port, buckets] = process.argv.slice(2);
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
AWSAccount.DUMMY_ACCOUNT.createKeyPair(process.env.GT_S3_ACCESS_KEY_ID, process.env.GT_S3_SECRET_ACCESS_KEY);
const server = new S3rver({ directory: dir, address, port: Number(port), silent: true,
  allowMismatchedSignatures: false, vhostBuckets: false,
  configureBuckets: buckets.split(",").filter(Boolean).map((name) => ({ name, configs: [] })) });
server.middleware.unshift(async function refuseAnonymous(ctx, next) {
  const q = ctx.query;
  if (ctx.get("authorization") || "X-Amz-Algorithm" in q || "Signature" in q) return next();
  process.stderr.write("refused anonymous " + ctx.method + " " + ctx.path + "\\n");
  ctx.status = 403;
  ctx.type = "application/xml";
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\\n<Error><Code>AccessDenied</Code>' +
    "<Message>Anonymous requests are not allowed: sign the request or use a presigned URL</Message></Error>";
});
// ListMultipartUploads, ListParts and AbortMultipartUpload, which the server answers with
// NotImplemented or MethodNotAllowed: steering's sweep of abandoned dataset uploads and its quota
// need them. They read its own upload store (<dir>/<bucket>/._S3rver_uploads/<uploadId>/: the
// key, then one file per part and its md5) after its own SigV4 check; no paging (one reply).
const lib = require("path").dirname(process.argv[1]);
const authenticate = require(require("path").join(lib, "middleware", "authentication.js"))();
const S3Error = require(require("path").join(lib, "models", "error.js"));
const fsp = require("fs/promises");
const esc = (v) => String(v).replace(/[<>&"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const xml = (root, body) => '<?xml version="1.0" encoding="UTF-8"?>\\n<' + root +
  ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + body + "</" + root + ">";
const tag = (name, v) => "<" + name + ">" + esc(v) + "</" + name + ">";
async function uploadOf(bucket, key, uploadId) {
  const d = require("path").join(dir, bucket, "._S3rver_uploads", uploadId);
  const stored = /^[0-9a-f]{32}$/.test(uploadId) ? await fsp.readFile(d + "/key", "utf8").catch(() => null) : null;
  if (stored !== key) throw new S3Error("NoSuchUpload", "The specified upload does not exist.", { UploadId: uploadId });
  return d;
}
async function multipartExtras(ctx, next) {
  const m = /^\\/([^/]+)(?:\\/(.+))?$/.exec(ctx.path);
  const q = ctx.query;
  const op = !m ? null : ctx.method === "GET" && !m[2] && "uploads" in q ? "list"
    : ctx.method === "GET" && m[2] && "uploadId" in q && !("partNumber" in q) ? "parts"
    : ctx.method === "DELETE" && m[2] && "uploadId" in q ? "abort" : null;
  if (!op) return next();
  const bucket = decodeURIComponent(m[1]);
  const key = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  ctx.params = key === undefined ? { bucket } : { bucket, key };
  await authenticate(ctx, async () => {
    if (!ctx.state.account) throw new S3Error("AccessDenied", "Access Denied");
    if (!(await fsp.stat(require("path").join(dir, bucket)).catch(() => null)))
      throw new S3Error("NoSuchBucket", "The specified bucket does not exist", { BucketName: bucket });
    ctx.type = "application/xml";
    if (op === "list") {
      const root = require("path").join(dir, bucket, "._S3rver_uploads");
      const prefix = typeof q.prefix === "string" ? q.prefix : "";
      let body = tag("Bucket", bucket) + tag("Prefix", prefix) + tag("IsTruncated", "false");
      for (const id of (await fsp.readdir(root).catch(() => [])).sort()) {
        const k = await fsp.readFile(root + "/" + id + "/key", "utf8").catch(() => null);
        if (k === null || !k.startsWith(prefix)) continue;
        const st = await fsp.stat(root + "/" + id + "/key");
        body += "<Upload>" + tag("Key", k) + tag("UploadId", id) + tag("Initiated", st.mtime.toISOString()) +
          tag("StorageClass", "STANDARD") + "</Upload>";
      }
      ctx.body = xml("ListMultipartUploadsResult", body);
      return;
    }
    const d = await uploadOf(bucket, key, String(q.uploadId));
    if (op === "abort") {
      await fsp.rm(d, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    let body = tag("Bucket", bucket) + tag("Key", key) + tag("UploadId", q.uploadId) + tag("IsTruncated", "false");
    const parts = (await fsp.readdir(d)).filter((f) => /^[0-9]+$/.test(f)).map(Number).sort((a, b) => a - b);
    for (const n of parts) {
      const st = await fsp.stat(d + "/" + n);
      const md5 = await fsp.readFile(d + "/" + n + ".md5", "utf8").catch(() => "");
      body += "<Part>" + tag("PartNumber", n) + tag("LastModified", st.mtime.toISOString()) +
        tag("ETag", '"' + md5 + '"') + tag("Size", st.size) + "</Part>";
    }
    ctx.body = xml("ListPartsResult", body);
  });
}
server.middleware.splice(1, 0, multipartExtras);
server.run()
  .then((info) => process.stdout.write(JSON.stringify({ port: info.port }) + "\\n"))
  .catch((e) => { process.stderr.write(String(e && e.stack || e) + "\\n"); process.exit(1); });
process.on("SIGTERM", () => process.exit(0));
`;

/** The server's key pair: read from `file`, or made (random) and written there on first start. */
export async function serverCredentials(file: string): Promise<S3Credentials> {
  let text: string | null = null;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (text !== null) {
    const r = S3Credentials.safeParse(JSON.parse(text));
    if (!r.success)
      throw new GridtuneError(
        "INVALID_CONFIG",
        `${file}: ${r.error.issues[0]?.path.join(".") ?? ""} ${r.error.issues[0]?.message ?? ""}; ` +
          `delete the file to have a new key pair made`,
      );
    return r.data;
  }
  const made: S3Credentials = {
    accessKeyId: `GT${randomBytes(10).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString("base64url"),
  };
  await writeFileAtomic(file, JSON.stringify(made, null, 2) + "\n", 0o600);
  return made;
}

export async function startS3Server(opts: {
  dir: string;
  host?: string;
  port?: number;
  buckets?: string[];
  timeoutMs?: number;
}): Promise<S3ServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  await mkdir(opts.dir, { recursive: true });
  const credentials = await serverCredentials(join(dirname(opts.dir), "credentials.json"));
  const entry = createRequire(import.meta.url).resolve("@20minutes/s3rver");
  const log = createWriteStream(join(opts.dir, "..", "s3.log"), { flags: "a" });
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--openssl-legacy-provider",
      "-e",
      BOOT,
      entry,
      opts.dir,
      host,
      String(opts.port ?? 0),
      (opts.buckets ?? []).join(","),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // the key pair travels in the environment, which other users cannot read (argv they can)
      env: {
        ...process.env,
        GT_S3_ACCESS_KEY_ID: credentials.accessKeyId,
        GT_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
    },
  );
  child.stderr?.pipe(log);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new UnavailableError(`the S3 server did not start within ${opts.timeoutMs ?? 15000} ms`)),
      opts.timeoutMs ?? 15000,
    );
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch (e) {
        reject(new UnavailableError(`the S3 server printed an unexpected line: ${line}`, { cause: e }));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(
        new UnavailableError(`the S3 server exited with code ${code}; see ${join(opts.dir, "..", "s3.log")}`),
      );
    });
  });
  let stopped: Promise<void> | null = null;
  return {
    endpoint: `http://${host}:${port}`,
    port,
    pid: child.pid!,
    credentials,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 3000);
        child.once("exit", () => {
          clearTimeout(kill);
          log.end();
          resolve();
        });
        child.kill("SIGTERM");
      });
      return stopped;
    },
  };
}
