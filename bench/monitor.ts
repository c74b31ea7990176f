// Monitor page benchmark: a task of 10,000 trials × 20 reports, generated in memory and served by
// the monitor's own server code (startMonitor with the in-memory backend instead of NATS: creating
// a real task of that size takes hours here), opened in headless Chromium. Measures the first
// render of the task page (navigation start → the page drawn: summary, every learning curve, the
// ladder, the points table, the sites) and the page's JavaScript, gzipped as the server sends it.
//   node --import tsx bench/monitor.ts [--trials N] [--reports N] [--runs N]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { loadAssets, scriptBytesGzipped } from "../client/monitor/assets.ts";
import { startMonitor } from "../client/monitor/server.ts";
import { generatedTask, MemoryBackend } from "../test/harness/monitorData.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../test/harness/browser.ts";
import { arg } from "./args.ts";

interface Timings {
  bytes: number;
  fetch: number;
  server: Record<string, number>;
  draw: Record<string, number>;
}

interface PageEntry {
  name: string;
  duration: number;
  encodedBodySize: number;
  serverTiming?: { name: string; duration: number }[];
}

/** In the page (the project's TypeScript has no DOM types): the task fetch's size and times. */
function pageTimings(): Timings {
  const g = globalThis as unknown as {
    performance: { getEntriesByType(t: string): PageEntry[] };
    GTM: { timings: Record<string, number> };
  };
  const r = g.performance.getEntriesByType("resource").find((e) => e.name.includes("/api/tasks/1"));
  const server = Object.fromEntries((r?.serverTiming ?? []).map((s) => [s.name, Math.round(s.duration)]));
  return {
    bytes: r?.encodedBodySize ?? 0,
    fetch: Math.round(r?.duration ?? NaN),
    server,
    draw: g.GTM.timings,
  };
}

function firstRender(): number {
  const g = globalThis as unknown as {
    performance: { getEntriesByName(n: string): { startTime: number }[] };
  };
  return g.performance.getEntriesByName("gt-first-render")[0]?.startTime ?? NaN;
}

export async function benchMonitor(): Promise<void> {
  const trials = arg("trials", 10_000);
  const reports = arg("reports", 20);
  const runs = arg("runs", 3);
  const task = generatedTask({ trials, reports });
  const backend = new MemoryBackend("demo", new Map([["1", task]]));
  const server = await startMonitor({ backend });
  const profile = await mkdtemp(join(tmpdir(), "gridtune-bench-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  });
  try {
    const gz = scriptBytesGzipped(await loadAssets());
    process.stdout.write(`monitor page JavaScript: ${(gz / 1024).toFixed(1)} KB gzipped\n`);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    for (let i = 0; i < runs; i++) {
      await page.goto("about:blank");
      await page.goto(`${server.url}#/task/1`);
      await page.waitForSelector("body[data-rendered=task]", { timeout: 60_000 });
      const ms = await page.evaluate(firstRender);
      const t = await page.evaluate(pageTimings);
      const d = t.draw;
      process.stdout.write(
        `task page of ${trials} trials × ${reports} reports: first render ${ms.toFixed(0)} ms (run ${i + 1}): ` +
          `task JSON ${(t.bytes / 1e6).toFixed(1)} MB fetched in ${t.fetch} ms (server: ladder ${t.server.ladder} ms, page JSON ${t.server.page} ms); ` +
          `drawn in ${Math.round((d.dom ?? 0) + (d.curves ?? 0) + (d.rest ?? 0))} ms (curves ${Math.round(d.curves ?? 0)} ms)\n`,
      );
    }
    if (errors.length > 0) throw new Error(`the page threw: ${errors.join("; ")}`);
  } finally {
    await browser.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchMonitor();
