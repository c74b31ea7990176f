// phpo dataset get NAME --dest DIR: downloads a dataset the user may read; every file's sha256 is
// checked against the one steering recorded before the file takes its name. A file already in
// DIR with the recorded sha256 is not fetched again.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { DatasetPath } from "../../../protocol/datasets.ts";
import { DirectoryError, makeDirs } from "../../../protocol/dirs.ts";
import { GridtuneError } from "../../../protocol/errors.ts";
import { pages } from "../../paging.ts";
import type { VerbContext } from "../../context.ts";
import { getFile, sha256File } from "../../datasetTransfer.ts";
import { renderTable } from "../../format.ts";
import { printJson } from "../../io.ts";
import { parseDatasetArg } from "./show.ts";

export async function datasetGetVerb(
  ctx: VerbContext,
  name: string,
  flags: { dest: string },
): Promise<number> {
  const dataset = parseDatasetArg(name);
  const dest = resolve(flags.dest);
  try {
    makeDirs(dest);
  } catch (e) {
    if (!(e instanceof DirectoryError)) throw e;
    throw new DirectoryError(`--dest ${flags.dest}: ${e.message}; choose a directory you can write`, {
      cause: e,
    });
  }
  const api = await ctx.api();
  const rows: Array<{ path: string; size: number; sha256: string; verified: boolean; skipped: boolean }> = [];
  for await (const page of pages((from) => api.call("datasetGet", { name: dataset, from })))
    for (const f of page.files) {
      // steering's reply is input too: a name that could leave --dest is refused
      if (!DatasetPath.safeParse(f.path).success)
        throw new GridtuneError(
          "PROTOCOL_MISMATCH",
          `steering named a file ${JSON.stringify(f.path)}: refused`,
        );
      const path = join(dest, f.path);
      if (f.sha256 !== null && existsSync(path) && (await sha256File(path)) === f.sha256) {
        rows.push({ path: f.path, size: f.size, sha256: f.sha256, verified: true, skipped: true });
        continue;
      }
      const got = await getFile(f.url, path, f, (line) => ctx.io.stderr.write(`${line}\n`));
      rows.push({ path: f.path, size: f.size, sha256: got.sha256, verified: got.verified, skipped: false });
    }
  if (ctx.json) {
    printJson(ctx.io, { name: dataset, dest, files: rows });
    return 0;
  }
  ctx.io.stdout.write(
    renderTable(
      ["file", "bytes", "sha256"],
      rows.map((x) => [x.path, x.size, x.verified ? `${x.sha256} ✓` : `${x.sha256} (not recorded)`]),
      { align: ["l", "r", "l"] },
    ),
  );
  ctx.io.stdout.write(`dataset ${dataset}: ${rows.length} files in ${dest}, checksums verified\n`);
  return 0;
}
