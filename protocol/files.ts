// The files exchanged with the evaluation container in its working directory (PanDA/iDDS
// formats), and the limits the agent enforces on them.
import { z } from "zod";

/** Longest `message` of an output.json kept; a longer one (a whole traceback) is cut, not refused. */
export const MAX_OUTPUT_MESSAGE_CHARS = 10_000;

/** `output.json`: `{"status": 0, "loss": 0.12, "message": "…"}`; status 0 = OK. */
export const EvaluationOutput = z.object({
  status: z.number().int(),
  loss: z.number().finite().nullable().optional(),
  // optional in PanDA, and Python payloads often write None for "no message"
  message: z
    .string()
    .nullable()
    .optional()
    .transform((m) =>
      m == null
        ? undefined
        : m.length > MAX_OUTPUT_MESSAGE_CHARS
          ? `${m.slice(0, MAX_OUTPUT_MESSAGE_CHARS)}…`
          : m,
    ),
});
export type EvaluationOutput = z.infer<typeof EvaluationOutput>;

/** A line of the progress file (or a `GRIDTUNE_PROGRESS {…}` stdout line): one intermediate report. */
export const ProgressLine = z
  .object({
    epoch: z.number().finite().optional(),
    resource: z.number().finite().optional(),
    loss: z.number().finite().optional(),
  })
  .catchall(z.unknown());
export type ProgressLine = z.infer<typeof ProgressLine>;

export const PROGRESS_FILE = "progress.jsonl";
export const PROGRESS_STDOUT_MARKER = "GRIDTUNE_PROGRESS ";
export const MAX_OUTPUT_BYTES = 64 * 1024;
/** An output.json up to this size travels inside the result report (and the log), not through S3. */
export const INLINE_OUTPUT_BYTES = 4 * 1024;
export const MAX_META_BYTES = 1024 * 1024; // PanDA: metadata file at most 1 MB
export const DEFAULT_CHECKPOINT_LIMIT_BYTES = 100 * 1024 * 1024; // PanDA: checkpoint < 100 MB

/** The loss registered for a point whose every attempt failed (PanDA: "a very large loss"). */
export const FAILED_POINT_LOSS = 1e30;
