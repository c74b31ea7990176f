// `gridtune-steering replay --config <scheduler.json>`: drives the scheduler core with JSON lines
// on stdin and answers one JSON line per input line. It is the conformance harness of the core:
// the same input gives the same output on every run. A bad line gets an {"error": …} answer and
// the replay goes on.
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { once } from "node:events";
import { z } from "zod";
import { describeZodError, toWireError, ValidationError } from "../../protocol/errors.ts";
import type { SchedulerConfig } from "../../protocol/scheduler.ts";
import { createScheduler, type Scheduler } from "../scheduler/index.ts";

const trialName = z.string().min(1);

export const ReplayLine = z.discriminatedUnion("op", [
  z
    .object({
      op: z.literal("report"),
      trial: trialName,
      resource: z.number().nonnegative(),
      metric: z.number().optional(),
      metrics: z.record(z.string(), z.number()).optional(),
    })
    .strict()
    .refine((l) => (l.metric === undefined) !== (l.metrics === undefined), {
      message: 'give exactly one of "metric" (a number) or "metrics" (an object of numbers)',
      path: ["metric"],
    }),
  z.object({ op: z.literal("schedule") }).strict(),
  z.object({ op: z.literal("fail"), trial: trialName }).strict(),
  z.object({ op: z.literal("complete"), trial: trialName }).strict(),
]);
export type ReplayLine = z.infer<typeof ReplayLine>;

const OPS = ["report", "schedule", "fail", "complete"];

/** Answers one input line (the text of it) against the scheduler. */
export function replayLine(scheduler: Scheduler, text: string): unknown {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return {
      error: {
        code: "INVALID_ARGUMENT",
        message: `line: not valid JSON (${e instanceof Error ? e.message : String(e)})`,
      },
    };
  }
  const op = (data as { op?: unknown } | null)?.op;
  if (typeof op !== "string" || !OPS.includes(op)) {
    return {
      error: {
        code: "INVALID_ARGUMENT",
        message: `op: must be one of ${OPS.join(", ")} (got ${JSON.stringify(op) ?? "nothing"})`,
      },
    };
  }
  const parsed = ReplayLine.safeParse(data);
  if (!parsed.success)
    return { error: { code: "INVALID_ARGUMENT", message: describeZodError(parsed.error) } };
  const line = parsed.data;
  try {
    switch (line.op) {
      case "schedule":
        return scheduler.suggest();
      case "report":
        return {
          decision: scheduler.report(line.trial, line.resource, line.metrics ?? (line.metric as number)),
        };
      case "fail":
        scheduler.fail(line.trial);
        return { ok: true };
      case "complete":
        scheduler.complete(line.trial);
        return { ok: true };
    }
  } catch (e) {
    if (e instanceof ValidationError) return { error: { code: e.code, message: e.message } };
    const wire = toWireError(e);
    return { error: { code: wire.code, message: wire.message } };
  }
}

/** Replays JSON lines from `input` against a fresh scheduler, writing one JSON answer per line. */
export async function runReplay(config: SchedulerConfig, input: Readable, output: Writable): Promise<void> {
  const scheduler = createScheduler(config);
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const text of lines) {
    if (text.trim() === "") continue;
    const answer = JSON.stringify(replayLine(scheduler, text)) + "\n";
    if (!output.write(answer)) await once(output, "drain");
  }
}
