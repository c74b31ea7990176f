// Parses one progress line (`{"epoch": 3, "loss": 0.41, …}`) into a resource level and numeric
// metrics. Lines that are not JSON objects, or carry no finite number, are ignored.
import { ProgressLine } from "../protocol/files.ts";

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
  for (const [k, v] of Object.entries(r.data))
    if (typeof v === "number" && Number.isFinite(v)) metrics[k] = v;
  if (Object.keys(metrics).length === 0) return null;
  return { resource: r.data.resource ?? r.data.epoch ?? ordinal, metrics };
}
