// More steering processes for a test stack (docs/architecture.md, "Standby steering"): each runs
// `gridtune-steering serve` with the stack's environment and its own log file, and is ready once it
// either leads or stands by.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startService, type EmbeddedStack, type ServiceProcess } from "../../stack/embedded.ts";

export interface SteeringProcess extends ServiceProcess {
  logFile: string;
  /** Waits until the process's log matches `re` (polled; never a fixed sleep). */
  waitLog(re: RegExp, timeoutMs?: number): Promise<string>;
  log(): Promise<string>;
}

export function steeringProcessOf(p: ServiceProcess, logFile: string): SteeringProcess {
  const log = () => readFile(logFile, "utf8").catch(() => "");
  return Object.assign(p, {
    logFile,
    log,
    async waitLog(re: RegExp, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await log();
        const m = text.split("\n").find((l) => re.test(l));
        if (m) return m;
        if (Date.now() > deadline)
          throw new Error(`${logFile} did not show ${String(re)} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  });
}

export async function startSteeringProcess(stack: EmbeddedStack, name: string): Promise<SteeringProcess> {
  const logFile = join(stack.dir, "logs", `steering-${name}.log`);
  const p = await startService(
    `steering ${name}`,
    "gridtune-steering",
    ["serve"],
    stack.steeringEnv,
    logFile,
    /standing by|steering running/,
  );
  return steeringProcessOf(p, logFile);
}
