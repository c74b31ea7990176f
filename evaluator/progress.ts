// Parses one progress line (`{"epoch": 3, "loss": 0.41, …}`) into a resource level and numeric
// metrics. Lines that are not JSON objects, or carry no finite number, are ignored; past the
// protocol's limits (MAX_METRICS names of up to 128 characters) the extra names are dropped, with
// "loss" and the resource kept first.
import { ProgressLine } from "../protocol/files.ts";
import { MAX_METRICS } from "../protocol/messages.ts";

export function parseProgressLine(
  text: string,
  ordinal: number,
): { resource: number; metrics: Record<string, number> } | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const r = ProgressLine.safeParse(json);
  if (!r.success) return null;
  const metrics: Record<string, number> = {};
  const entries = Object.entries(r.data).sort(([a], [b]) => rank(a) - rank(b));
  for (const [k, v] of entries) {
    if (Object.keys(metrics).length >= MAX_METRICS) break;
    if (typeof v === "number" && Number.isFinite(v) && k.length <= 128) metrics[k] = v;
  }
  if (Object.keys(metrics).length === 0) return null;
  return { resource: r.data.resource ?? r.data.epoch ?? ordinal, metrics };
}

/** "loss", "resource" and "epoch" before any other name, so a cap never drops them. */
function rank(name: string): number {
  return name === "loss" ? 0 : name === "resource" || name === "epoch" ? 1 : 2;
}
