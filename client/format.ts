// Plain-text tables and value formatting for humans (`--json` bypasses all of this).

export type Cell = string | number | boolean | null | undefined;

export interface TableOptions {
  /** Per column: "l" or "r"; default: numbers right, everything else left. */
  align?: readonly ("l" | "r")[];
  indent?: string;
}

/** Renders rows under a header with a dashed rule; columns padded to their widest cell. */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  opts: TableOptions = {},
): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? "").length)));
  const right = headers.map(
    (_, i) =>
      opts.align?.[i] === "r" ||
      (opts.align?.[i] === undefined &&
        rows.length > 0 &&
        rows.every((r) => typeof r[i] === "number" || r[i] == null)),
  );
  const line = (cells: readonly string[]) =>
    (opts.indent ?? "") +
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...text.map(line)].join("\n") + "\n";
}

export function cellText(c: Cell): string {
  if (c === null || c === undefined) return "-";
  if (typeof c === "number") return formatNumber(c);
  return String(c);
}

/** Six significant digits, without trailing zeros; integers as they are. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const s = x.toPrecision(6);
  return s.includes("e") ? s.replace(/\.?0+e/, "e") : s.replace(/\.?0+$/, "");
}

/** `lr=0.01 hidden=8` for a point's values. */
export function formatValues(values: Readonly<Record<string, unknown>>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatNumber(v) : JSON.stringify(v)}`)
    .join(" ");
}

export function formatTime(ms: number | null): string {
  if (ms === null) return "-";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A fixed-width bar `[#####.....]` for done/total. */
export function progressBar(done: number, total: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const n = Math.round(frac * width);
  return `[${"#".repeat(n)}${".".repeat(width - n)}]`;
}
