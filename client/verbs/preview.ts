// phpo preview config.json: validates the config as submit would (no sandbox, no network) and
// prints the scheduler's plan; with --simulate, also its simulated cost on recorded curves (the
// simulator is an extension composed in by bin/phpo: see client/extensions.ts).
import { ValidationError } from "../../protocol/errors.ts";
import { specFromOptions } from "../compile.ts";
import type { PhpoExtension, SimulateFlags } from "../extensions.ts";
import type { VerbContext } from "../context.ts";
import { formatNumber, renderTable } from "../format.ts";
import { printJson } from "../io.ts";
import { loadJsonOptions, resolveOptions } from "../optionValues.ts";
import { type TaskPreview, previewTask } from "../plan.ts";

export function renderPlan(p: TaskPreview, resourceKey: string): string {
  const n = (x: number) => (p.exact ? String(x) : formatNumber(Math.round(x * 10) / 10));
  const out = [`scheduler ${p.scheduler}: ${p.note}`, ""];
  out.push(
    renderTable(
      ["bracket", "trials", `rungs (${resourceKey})`],
      p.brackets.map((b) => [b.bracket, n(b.trials), b.rungs.map(formatNumber).join(" ") || "full"]),
      { align: ["r", "r", "l"] },
    ),
  );
  out.push(
    renderTable(
      ["trials", "training length"],
      p.rows.map((r) => [
        n(r.trials),
        r.resource === null ? "train to completion" : `train to ${resourceKey} = ${formatNumber(r.resource)}`,
      ]),
      { align: ["r", "l"] },
    ),
  );
  const total =
    p.totalCompute === null ? "unknown (give the scheduler a max_t)" : `${n(p.totalCompute)} ${resourceKey}`;
  const full =
    p.fullCompute !== null && p.totalCompute !== null ? ` (${n(p.fullCompute)} without early stopping)` : "";
  out.push(`${n(p.trials)} trials; total compute ${total}${full}`);
  return out.join("\n") + "\n";
}

export async function previewVerb(
  ctx: VerbContext,
  config: string,
  flags: SimulateFlags & { simulate?: boolean } = {},
  extensions: readonly PhpoExtension[] = [],
): Promise<number> {
  const simulateFlags = ["curves", "fromTask", "workers", "seeds"] as const;
  const given = simulateFlags.filter((f) => flags[f] !== undefined);
  if (!flags.simulate && given.length > 0)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--${given[0]?.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} belongs to --simulate: add --simulate`,
    );
  const simulator = extensions.find((e) => e.previewSimulate !== undefined);
  if (flags.simulate && !simulator?.previewSimulate)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      "--simulate: this phpo was started without the simulator; run bin/phpo from a gridtune checkout or install",
    );
  const loaded = loadJsonOptions(config, (m) => ctx.warn(m));
  const spec = specFromOptions(resolveOptions({}, loaded.values), {
    cwd: process.cwd(),
    jsonDir: loaded.dir,
  });
  const plan = previewTask(spec);
  const sim =
    flags.simulate && simulator?.previewSimulate ? await simulator.previewSimulate(ctx, spec, flags) : null;
  if (ctx.json) printJson(ctx.io, sim ? { ...plan, simulation: sim.json } : plan);
  else ctx.io.stdout.write(renderPlan(plan, spec.resourceKey) + (sim ? `\n${sim.text}` : ""));
  return 0;
}
