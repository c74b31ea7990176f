// phpo plot TASK --out FILE.svg
import { ValidationError } from "../../protocol/errors.ts";
import type { VerbContext } from "../context.ts";
import { printJson } from "../io.ts";
import { checkWritable, writeUserFile } from "../localFile.ts";
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
  // before the request: an unwritable --out is the user's to fix, not an unexpected error
  const path = checkWritable(out, "--out");
  const d = await fetchDetail(ctx, taskId);
  writeUserFile(
    path,
    renderPlotSvg(`task ${taskId} (${d.outDS}): ${d.state}`, d.points, d.spec.resourceKey),
    "--out",
  );
  if (ctx.json) printJson(ctx.io, { taskId, file: path });
  else ctx.io.stdout.write(`wrote ${path}\n`);
  return 0;
}
