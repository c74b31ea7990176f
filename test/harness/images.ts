// The images the Docker tests use are built locally (no registry can be reached): this runs
// containers/build-images.sh once per machine when they are missing. The script is idempotent
// and takes a lock, so test files running in parallel build them only once.
import Docker from "dockerode";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export const BUSYBOX_IMAGE = "gridtune/busybox:1";
export const PYTHON_IMAGE = "gridtune/python:1";

const SCRIPT = fileURLToPath(new URL("../../containers/build-images.sh", import.meta.url));
const BUILD_DEADLINE_MS = 10 * 60_000;

function socketPath(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith("unix://") ? host.slice(7) : "/var/run/docker.sock";
}

export function testDocker(): Docker {
  return new Docker({ socketPath: socketPath() });
}

/** True when a Docker daemon answers a ping within 3 s. */
export async function dockerAvailable(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 3000)));
  try {
    return await Promise.race([
      testDocker()
        .ping()
        .then(() => true as const),
      deadline,
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** True if the Docker object behind inspect() exists, false if the daemon answers 404. */
export async function dockerObjectExists(inspect: () => Promise<unknown>): Promise<boolean> {
  try {
    await inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function imageExists(docker: Docker, ref: string): Promise<boolean> {
  return dockerObjectExists(() => docker.getImage(ref).inspect());
}

let ensured: Promise<void> | undefined;

/** Builds gridtune/busybox:1 and gridtune/python:1 when missing (needs root and a daemon). */
export function ensureTestImages(): Promise<void> {
  ensured ??= (async () => {
    const docker = testDocker();
    const present = await Promise.all([BUSYBOX_IMAGE, PYTHON_IMAGE].map((r) => imageExists(docker, r)));
    if (present.every(Boolean)) return;
    await new Promise<void>((resolve, reject) => {
      execFile(
        "bash",
        [SCRIPT],
        { timeout: BUILD_DEADLINE_MS, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err)
            reject(new Error(`containers/build-images.sh failed: ${err.message}\n${stdout}\n${stderr}`));
          else resolve();
        },
      );
    });
  })();
  ensured.catch(() => (ensured = undefined));
  return ensured;
}
