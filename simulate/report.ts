// What `phpo simulate` prints: the per-method table, best-so-far against compute and wall time (medians over
// seeds), and the SVG plot of best-so-far with a band (min..max over seeds) per method.
import { formatNumber, renderTable } from "../client/format.ts";
import { ticks } from "../client/plot.ts";
import type { MethodSummary, SeedRun, Stat } from "../steering/sim/compare.ts";
import { stat } from "../steering/sim/compare.ts";

const fmt = (x: number) => formatNumber(Number(x.toPrecision(3)));
const ratio = (s: Stat | null) => (s ? `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]` : "-");

export function summaryTable(methods: readonly MethodSummary[]): string {
  const compare = methods.some((m) => m.reached !== null);
  const headers = [
    "method",
    ...(compare ? ["reached", "compute ratio", "wall ratio"] : []),
    "worker-hours",
    "wall hours",
    "utilisation",
    "best",
    "regret",
  ];
  const rows = methods.map((m) => [
    m.method,
    ...(compare ? [`${m.reached ?? "-"}/${m.seeds}`, ratio(m.computeRatio), ratio(m.wallRatio)] : []),
    fmt(m.computeHours.median),
    fmt(m.wallHours.median),
    `${(m.utilisation.median * 100).toFixed(1)} %`,
    Number.isFinite(m.best.median) ? fmt(m.best.median) : "-",
    m.regret ? fmt(m.regret.median) : "-",
  ]);
  return renderTable(headers, rows, { align: headers.map((_, i) => (i === 0 ? "l" : "r")) });
}

/** What best-so-far is plotted against: worker-hours (compute) or hours of simulated wall time. */
export type BestAxis = "compute" | "wall";

export interface BestCurve {
  method: string;
  /** Hours (worker-hours or wall hours) at which best-so-far is sampled. */
  x: number[];
  median: Array<number | null>;
  min: Array<number | null>;
  max: Array<number | null>;
}

/** Best-so-far of each method at `points` levels up to the largest run, over its seeds. */
export function bestCurves(runs: readonly SeedRun[], axis: BestAxis = "compute", points = 60): BestCurve[] {
  const top = Math.max(0, ...runs.map((r) => r.result[axis])) / 3600;
  const grid = Array.from({ length: points }, (_, i) => (top * (i + 1)) / points);
  const methods = [...new Set(runs.map((r) => r.method))];
  return methods.map((method) => {
    const mine = runs.filter((r) => r.method === method);
    const at = grid.map((x) =>
      mine.flatMap((r) => {
        let best: number | null = null;
        for (const t of r.result.trace) if (t[axis] / 3600 <= x) best = t.best;
        return best === null ? [] : [best];
      }),
    );
    // a value once half the seeds have one (a median of the others would flatter the method)
    const full = at.map((v) => (v.length > 0 && 2 * v.length >= mine.length ? stat(v) : null));
    return {
      method,
      x: grid,
      median: full.map((s) => s?.median ?? null),
      min: full.map((s) => s?.min ?? null),
      max: full.map((s) => s?.max ?? null),
    };
  });
}

export function bestTable(curves: readonly BestCurve[], axis: BestAxis, rows = 6): string {
  const n = curves[0]?.x.length ?? 0;
  const picks = Array.from({ length: rows }, (_, i) => Math.round(((i + 1) * n) / rows) - 1);
  return renderTable(
    [axis === "compute" ? "worker-hours" : "wall hours", ...curves.map((c) => c.method)],
    picks.map((i) => [
      fmt(curves[0]?.x[i] ?? 0),
      ...curves.map((c) => {
        const v = c.median[i];
        return v === null || v === undefined ? "-" : fmt(v);
      }),
    ]),
  );
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The smallest regret a log-scale plot shows (0 cannot be drawn on it). */
const FLOOR = 1e-3;

/**
 * Best-so-far (median line, min..max band over seeds) against worker-hours, one colour per method.
 * With `regretOf` (the best value of all curves), the y axis is the regret on a log scale, where
 * the differences late in a search stay visible next to the large early ones.
 */
export function bestSvg(
  title: string,
  curves: readonly BestCurve[],
  yLabel: string,
  regretOf?: number,
): string {
  const W = 640;
  const H = 400;
  const M = { left: 64, right: 150, top: 36, bottom: 48 };
  const log = regretOf !== undefined && Number.isFinite(regretOf);
  const ty = (v: number) => (log ? Math.log10(Math.max(FLOOR, v - (regretOf ?? 0))) : v);
  const ys = curves.flatMap((c) => [...c.min, ...c.max]).filter((v): v is number => v !== null);
  const xs = curves.flatMap((c) => c.x);
  const [x0, x1] = [0, Math.max(1e-9, ...xs)];
  let [y0, y1] = ys.length ? [Math.min(...ys.map(ty)), Math.max(...ys.map(ty))] : [0, 1];
  if (log) [y0, y1] = [Math.floor(y0), Math.ceil(y1)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => (M.left + ((x - x0) / (x1 - x0)) * pw).toFixed(1);
  const sy = (v: number) => (M.top + ph - ((ty(v) - y0) / (y1 - y0)) * ph).toFixed(1);
  // tick positions in data units (a log axis ticks at the powers of ten)
  const yTicks = log
    ? Array.from({ length: y1 - y0 + 1 }, (_, i) => 10 ** (y0 + i) + (regretOf ?? 0))
    : ticks(y0, y1);
  const yText = (t: number) => formatNumber(log ? Number((t - (regretOf ?? 0)).toPrecision(1)) : t);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${M.left + pw / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
  ];
  for (const t of ticks(x0, x1))
    out.push(
      `<text x="${sx(t)}" y="${M.top + ph + 16}" text-anchor="middle" font-size="10">${formatNumber(t)}</text>`,
    );
  for (const t of yTicks)
    out.push(
      `<line x1="${M.left}" y1="${sy(t)}" x2="${M.left + pw}" y2="${sy(t)}" stroke="#eee"/>`,
      `<text x="${M.left - 6}" y="${Number(sy(t)) + 3}" text-anchor="end" font-size="10">${yText(t)}</text>`,
    );
  out.push(
    `<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle" font-size="12">worker-hours</text>`,
    `<text transform="translate(14,${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`,
  );
  curves.forEach((c, k) => {
    const color = COLORS[k % COLORS.length] as string;
    const idx = c.x.map((_, i) => i).filter((i) => c.median[i] !== null);
    if (idx.length > 0) {
      const upper = idx.map((i) => `${sx(c.x[i] ?? 0)},${sy(c.max[i] ?? 0)}`);
      const lower = [...idx].reverse().map((i) => `${sx(c.x[i] ?? 0)},${sy(c.min[i] ?? 0)}`);
      out.push(
        `<polygon fill="${color}" fill-opacity="0.15" stroke="none" points="${[...upper, ...lower].join(" ")}"/>`,
      );
      const line = idx.map((i) => `${sx(c.x[i] ?? 0)},${sy(c.median[i] ?? 0)}`);
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${line.join(" ")}"/>`);
    }
    const ly = M.top + 14 + k * 18;
    out.push(
      `<line x1="${W - M.right + 10}" y1="${ly - 4}" x2="${W - M.right + 30}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${W - M.right + 36}" y="${ly}" font-size="11">${esc(c.method)}</text>`,
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}
