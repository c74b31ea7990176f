// `npm run demo`: the quickstart task end to end on the embedded single-machine stack. Starts
// nats-server (TLS, nkey identities), the local S3 server, steering and one agent (Docker when a
// daemon answers, else the process runtime); submits examples/quickstart.json with phpo, showing
// live progress; then `phpo show` and `phpo download`; stops everything.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../protocol/log.ts";
import { ROOT, startEmbeddedStack } from "../stack/embedded.ts";
import { dockerAnswers, LOCAL_IMAGES } from "../stack/images.ts";

function phpo(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "phpo"), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: "inherit",
    });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  const dir = process.env.GRIDTUNE_DEMO_DIR ?? join(homedir(), ".local", "state", "gridtune", "demo");
  await rm(dir, { recursive: true, force: true });
  const runtime = (await dockerAnswers()) ? "docker" : "process";
  const say = (s: string) => process.stdout.write(`\n== ${s}\n`);
  say(`starting the embedded stack (${runtime} runtime) in ${dir}`);
  const stack = await startEmbeddedStack({
    dir,
    agents: 1,
    slotsPerAgent: 4,
    runtime,
    allowedImages: runtime === "docker" ? LOCAL_IMAGES : undefined,
    logger: createLogger("demo", { level: "warn" }),
  });
  const env = { GRIDTUNE_HOME: dir };
  const scratch = await mkdtemp(join(tmpdir(), "gridtune-demo-"));
  try {
    process.stdout.write(`NATS ${stack.nats.url} (TLS, nkeys)  S3 ${stack.s3.endpoint}  logs ${dir}/logs\n`);
    say("phpo --loadJson examples/quickstart.json --wait");
    const dump = join(scratch, "submit.json");
    const rc = await phpo(["--loadJson", "examples/quickstart.json", "--dumpJson", dump, "--wait"], env);
    if (rc !== 0) return rc;
    const taskId = String(
      (JSON.parse(await readFile(dump, "utf8")) as { jediTaskID: string | number }).jediTaskID,
    );
    say(`phpo show ${taskId}`);
    await phpo(["show", taskId], env);
    const dest = join(dir, "downloads");
    say(`phpo download ${taskId} --metrics --logs --dest ${dest}`);
    return await phpo(["download", taskId, "--metrics", "--logs", "--dest", dest], env);
  } finally {
    say("stopping the stack");
    await stack.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
