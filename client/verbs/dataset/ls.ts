// phpo dataset ls: the user's datasets, the ones an admin published (readable by all), and the
// user's quota; --mine for the user's own only.
import type { VerbContext } from "../../context.ts";
import { renderTable } from "../../format.ts";
import { printJson } from "../../io.ts";

export async function datasetLsVerb(ctx: VerbContext, flags: { mine?: boolean } = {}): Promise<number> {
  const api = await ctx.api();
  const r = await api.call("datasetList", { mine: flags.mine === true });
  if (ctx.json) {
    printJson(ctx.io, r);
    return 0;
  }
  if (r.datasets.length === 0)
    ctx.io.stdout.write("no datasets yet: phpo dataset put DIR --name user.<you>.<name>\n");
  else
    ctx.io.stdout.write(
      renderTable(
        ["dataset", "whose", "files", "bytes"],
        r.datasets.map((d) => [d.name, d.published ? "published" : "mine", d.files, d.bytes]),
        { align: ["l", "l", "r", "r"] },
      ),
    );
  const u = r.usage;
  ctx.io.stdout.write(`quota: ${u.bytes}/${u.maxBytes} bytes, ${u.files}/${u.maxFiles} files (yours)\n`);
  if (u.uploads > 0)
    ctx.io.stdout.write(
      `of which ${u.uploads} unfinished uploads hold ${u.uploadBytes} bytes: run the same put again to ` +
        `resume them; steering aborts one idle for longer than its limit (default 24 h)\n`,
    );
  return 0;
}
