// The embedded S3-compatible server: s3rver 3.7 in its own process, filesystem-backed under the
// stack's state directory. It runs with --openssl-legacy-provider because its listing continuation
// tokens use DES (paginated ListObjectsV2 fails with ERR_OSSL_EVP_UNSUPPORTED otherwise).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { UnavailableError } from "../protocol/errors.ts";

export interface S3ServerHandle {
  endpoint: string;
  port: number;
  pid: number;
  /** s3rver accepts any well-formed signature with this key pair (it does not verify SigV4). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

const BOOT = `
const S3rver = require(process.argv[1]);
const [dir, address, port, buckets] = process.argv.slice(2);
new S3rver({ directory: dir, address, port: Number(port), silent: true, allowMismatchedSignatures: true,
  configureBuckets: buckets.split(",").filter(Boolean).map((name) => ({ name, configs: [] })) })
  .run()
  .then((info) => process.stdout.write(JSON.stringify({ port: info.port }) + "\\n"))
  .catch((e) => { process.stderr.write(String(e && e.stack || e) + "\\n"); process.exit(1); });
process.on("SIGTERM", () => process.exit(0));
`;

export async function startS3Server(opts: {
  dir: string;
  host?: string;
  port?: number;
  buckets?: string[];
  timeoutMs?: number;
}): Promise<S3ServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  await mkdir(opts.dir, { recursive: true });
  const entry = createRequire(import.meta.url).resolve("s3rver");
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
    { stdio: ["ignore", "pipe", "pipe"] },
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
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
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
