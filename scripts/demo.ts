// `npm run demo`: what gridtune is for, end to end on the embedded single-machine stack. Starts
// nats-server (TLS, nkey identities), the local S3 server, steering and one agent (Docker when a
// daemon answers, else the process runtime); previews and submits examples/asha.json (promotion
// ASHA: 27 trials, checkpoints, resource up to 27 epochs) with phpo, showing live progress; then
// `phpo show` (the rung tables and the compute saved against training every trial fully), the
// log of a promoted trial's second job resuming from its checkpoint, and `phpo download` of the
// metrics tarballs; stops everything.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../protocol/log.ts";
import { TaskDetail } from "../protocol/api.ts";
import { ROOT, startEmbeddedStack } from "../stack/embedded.ts";
import { dockerAnswers, LOCAL_IMAGES } from "../stack/images.ts";

const CONFIG = "examples/asha.json";

/** Runs phpo; its output goes to the terminal, or is returned with `capture`. */
function phpo(
  args: string[],
  env: Record<string, string>,
  capture = false,
): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "phpo"), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit",
    });
    let stdout = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout }));
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
  const started = Date.now();
  try {
    process.stdout.write(`NATS ${stack.nats.url} (TLS, nkeys)  S3 ${stack.s3.endpoint}  logs ${dir}/logs\n`);
    say(`phpo preview ${CONFIG}   (the scheduler's plan, before anything runs)`);
    const preview = await phpo(["preview", CONFIG], env);
    if (preview.code !== 0) return preview.code;

    say(`phpo --loadJson ${CONFIG} --wait`);
    const dump = join(scratch, "submit.json");
    const sub = await phpo(["--loadJson", CONFIG, "--dumpJson", dump, "--wait"], env);
    if (sub.code !== 0) return sub.code;
    const taskId = String(
      (JSON.parse(await readFile(dump, "utf8")) as { jediTaskID: string | number }).jediTaskID,
    );

    say(`phpo show ${taskId}   (paused trials stay at their rung; promoted ones resume from checkpoints)`);
    await phpo(["show", taskId], env);

    const json = await phpo(["--json", "show", taskId], env, true);
    const d = TaskDetail.parse(JSON.parse(json.stdout));
    const promoted = d.points
      .filter((p) => (p.jobs ?? 1) > 1)
      .sort((a, b) => (b.jobs ?? 1) - (a.jobs ?? 1) || a.pointId - b.pointId)[0];
    if (promoted) {
      say(
        `phpo logs ${taskId} ${promoted.pointId} --job 2   (a promotion: the second job resumes from the checkpoint)`,
      );
      await phpo(["logs", taskId, String(promoted.pointId), "--job", "2"], env);
    }

    const dest = join(dir, "downloads");
    say(`phpo download ${taskId} --metrics --dest ${dest}`);
    const dl = await phpo(["download", taskId, "--metrics", "--dest", dest], env);
    if (dl.code !== 0) return dl.code;
    const files = (await readdir(dest).catch(() => [] as string[])).filter((f) => f.endsWith(".tgz"));
    process.stdout.write(
      `${files.length} metrics tarballs in ${dest} (one per job; tar -tzf to list one)\n` +
        `demo task ran in ${Math.round((Date.now() - started) / 1000)} s\n`,
    );
    return 0;
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
