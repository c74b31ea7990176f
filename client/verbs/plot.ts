// phpo plot TASK --out FILE.svg
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ValidationError } from "../../protocol/errors.ts";
import type { VerbContext } from "../context.ts";
import { printJson } from "../io.ts";
import { renderPlotSvg } from "../plot.ts";
import { fetchDetail, parseTaskArg } from "./common.ts";

export async function plotVerb(ctx: VerbContext, task: string, out: string): Promise<number> {
  if (!out.toLowerCase().endsWith(".svg")) {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--out ${out}: phpo plot writes SVG; give a file name ending in .svg (PNG: convert it, e.g. rsvg-convert)`,
    );
  }
  const taskId = parseTaskArg(task);
  const d = await fetchDetail(ctx, taskId);
  const path = resolve(out);
  writeFileSync(path, renderPlotSvg(`task ${taskId} (${d.outDS}): ${d.state}`, d.points, d.spec.resourceKey));
  if (ctx.json) printJson(ctx.io, { taskId, file: path });
  else ctx.io.stdout.write(`wrote ${path}\n`);
  return 0;
}
