// The files the monitor page needs, read once at start: the page's own (client/monitor/page/) and
// uPlot's from node_modules. Nothing is fetched from anywhere else; each is served gzipped to a
// browser that takes it (the page's JavaScript budget is counted gzipped).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";

export interface Asset {
  type: string;
  body: Buffer;
  gzipped: Buffer;
}

export interface Assets {
  /** index.html, with __TOKEN__ where the token goes. */
  page: string;
  files: Map<string, Asset>;
}

const PAGE_DIR = new URL("./page", import.meta.url).pathname;

function uplotDir(): string {
  // uPlot has no "exports" map: its package.json resolves, and dist/ sits beside it
  return join(dirname(createRequire(import.meta.url).resolve("uplot/package.json")), "dist");
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** Served name → [file, content type]. */
function sources(): Record<string, [string, string]> {
  const u = uplotDir();
  return {
    "app.js": [join(PAGE_DIR, "app.js"), JS],
    "charts.js": [join(PAGE_DIR, "charts.js"), JS],
    "views.js": [join(PAGE_DIR, "views.js"), JS],
    "detail.js": [join(PAGE_DIR, "detail.js"), JS],
    "app.css": [join(PAGE_DIR, "app.css"), CSS],
    "uPlot.iife.min.js": [join(u, "uPlot.iife.min.js"), JS],
    "uPlot.min.css": [join(u, "uPlot.min.css"), CSS],
  };
}

export async function loadAssets(): Promise<Assets> {
  const files = new Map<string, Asset>();
  for (const [name, [path, type]] of Object.entries(sources())) {
    const body = await readFile(path);
    files.set(name, { type, body, gzipped: gzipSync(body, { level: 9 }) });
  }
  return { page: await readFile(join(PAGE_DIR, "index.html"), "utf8"), files };
}

/** The page's JavaScript, gzipped, in bytes (the benchmark's budget). */
export function scriptBytesGzipped(a: Assets): number {
  let n = 0;
  for (const f of a.files.values()) if (f.type === JS) n += f.gzipped.length;
  return n;
}
