// SVG plots for `phpo plot`, written by hand (no dependency): learning curves (loss against the
// resource level, one line per point, from the points' reports) and the best loss so far against
// the number of evaluations (points in id order, i.e. the order they were generated).
import { FAILED_POINT_LOSS } from "../protocol/files.ts";
import type { PointView } from "../protocol/api.ts";
import { formatNumber } from "./format.ts";

const W = 480;
const H = 360;
const M = { left: 64, right: 16, top: 36, bottom: 48 };
const COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/**
 * A colour per series, none repeated: the palette while it lasts, else hues spread evenly around
 * the wheel (alternating two lightnesses so neighbours differ), one per series.
 */
export function colorOf(i: number, n: number): string {
  if (n <= COLORS.length) return COLORS[i] as string;
  const hue = Math.round((i * 360) / n);
  return `hsl(${hue},70%,${i % 2 === 0 ? 38 : 55}%)`;
}

export interface Series {
  label: string;
  points: [number, number][];
  step?: boolean;
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const usable = (loss: number | null): loss is number =>
  loss !== null && Number.isFinite(loss) && loss < FAILED_POINT_LOSS / 10;

/** About five round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** One chart panel as an SVG <g>, placed at x offset `ox`. */
export function panel(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  ox: number,
): string {
  const all = series.flatMap((s) => s.points);
  const out = [
    `<g transform="translate(${ox},0)">`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  if (all.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data yet</text></g>`);
    return out.join("\n");
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  for (const t of ticks(x0, x1)) {
    out.push(`<line x1="${sx(t)}" y1="${M.top + ph}" x2="${sx(t)}" y2="${M.top + ph + 4}" stroke="#333"/>`);
    out.push(
      `<text x="${sx(t)}" y="${M.top + ph + 16}" text-anchor="middle" font-size="10">${formatNumber(t)}</text>`,
    );
  }
  for (const t of ticks(y0, y1)) {
    out.push(`<line x1="${M.left - 4}" y1="${sy(t)}" x2="${M.left + pw}" y2="${sy(t)}" stroke="#ddd"/>`);
    out.push(
      `<text x="${M.left - 6}" y="${sy(t) + 3}" text-anchor="end" font-size="10">${formatNumber(t)}</text>`,
    );
  }
  out.push(
    `<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(14,${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = colorOf(i, series.length);
    const pts: string[] = [];
    s.points.forEach(([x, y], k) => {
      const prev = s.points[k - 1];
      if (s.step && prev) pts.push(`${sx(x)},${sy(prev[1])}`);
      pts.push(`${sx(x)},${sy(y)}`);
    });
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(" ")}"><title>${esc(s.label)}</title></polyline>`,
    );
    for (const [x, y] of s.points)
      out.push(
        `<circle cx="${sx(x)}" cy="${sy(y)}" r="2.5" fill="${color}"><title>${esc(`${s.label}: ${formatNumber(y)} at ${formatNumber(x)}`)}</title></circle>`,
      );
  });
  out.push("</g>");
  return out.join("\n");
}

export function learningCurves(points: readonly PointView[]): Series[] {
  return points
    .map((p) => {
      const reports = p.reports.filter((r) => usable(r.loss)).sort((a, b) => a.resource - b.resource);
      const pts: [number, number][] = reports.map((r) => [r.resource, r.loss]);
      if (pts.length === 0 && usable(p.loss) && p.resource !== null) pts.push([p.resource, p.loss]);
      return { label: `p${p.pointId}`, points: pts };
    })
    .filter((s) => s.points.length > 0);
}

export function bestSoFar(points: readonly PointView[]): Series {
  const pts: [number, number][] = [];
  let best = Infinity;
  let n = 0;
  for (const p of [...points].sort((a, b) => a.pointId - b.pointId)) {
    if (p.state !== "done" && p.state !== "failed") continue;
    n++;
    if (usable(p.loss) && p.loss < best) best = p.loss;
    if (Number.isFinite(best)) pts.push([n, best]);
  }
  return { label: "best loss so far", points: pts, step: true };
}

/** Legend entries listed at most (a 100k-point task would have a legend taller than the plot). */
export const LEGEND_MAX = 96;
const LEGEND_COLUMNS = 8;
const LEGEND_ROW = 16;

/** The learning curves' legend under the panels: a colour swatch and the point per series. */
export function legend(series: readonly Series[], y0: number): { svg: string; height: number } {
  if (series.length === 0) return { svg: "", height: 0 };
  const shown = series.slice(0, LEGEND_MAX);
  const colW = (2 * W) / LEGEND_COLUMNS;
  const out = [`<g font-size="11">`];
  shown.forEach((s, i) => {
    const x = 16 + (i % LEGEND_COLUMNS) * colW;
    const y = y0 + Math.floor(i / LEGEND_COLUMNS) * LEGEND_ROW;
    const color = colorOf(i, series.length);
    out.push(
      `<line x1="${x}" y1="${y - 4}" x2="${x + 18}" y2="${y - 4}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${x + 24}" y="${y}">${esc(s.label)}</text>`,
    );
  });
  let rows = Math.ceil(shown.length / LEGEND_COLUMNS);
  if (series.length > shown.length) {
    out.push(
      `<text x="16" y="${y0 + rows * LEGEND_ROW}" fill="#555">… and ${series.length - shown.length} more curves (hover a line to name its point)</text>`,
    );
    rows++;
  }
  out.push("</g>");
  return { svg: out.join("\n"), height: rows * LEGEND_ROW + 8 };
}

export function renderPlotSvg(title: string, points: readonly PointView[], resourceKey: string): string {
  const curves = learningCurves(points);
  const body = [
    panel(curves.length ? "learning curves" : "learning curves (no reports)", resourceKey, "loss", curves, 0),
    panel("best loss so far", "evaluations", "best loss", [bestSoFar(points)], W),
  ];
  const key = legend(curves, H + 40);
  const height = H + 24 + key.height;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${height}" viewBox="0 0 ${2 * W} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W}" y="${H + 18}" text-anchor="middle" font-size="12" fill="#555">${esc(title)}</text>`,
    ...body,
    ...(key.svg ? [key.svg] : []),
    "</svg>",
    "",
  ].join("\n");
}
