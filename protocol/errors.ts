// Error codes and the small error classes shared by every part. On the wire, errors are data:
// {code, message, retryable}; in process they are GridtuneError subclasses with name, code, cause.
import { z } from "zod";

export const ErrorCode = z.enum([
  // user input
  "INVALID_CONFIG",
  "INVALID_SEARCH_SPACE",
  "INVALID_ARGUMENT",
  "INVALID_NAME",
  "NOT_FOUND",
  "CONFLICT",
  // a per-user limit (docs/steering.md): retryable only for the submission rate
  "LIMIT_EXCEEDED",
  // auth
  "FORBIDDEN",
  "UNAUTHENTICATED",
  // infrastructure
  "UNAVAILABLE",
  "TIMEOUT",
  "PROTOCOL_MISMATCH",
  "STALE_ATTEMPT",
  // evaluation
  "IMAGE_MISSING",
  "IMAGE_NOT_ALLOWED",
  "RUNTIME_UNAVAILABLE",
  "EVALUATION_FAILED",
  "OUTPUT_INVALID",
  "ARCHIVE_REJECTED",
  "TOO_LARGE",
  "STORAGE_FAILED",
  "INTERNAL",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Longer messages are cut (with "…"): an error must always fit in a message and the log. */
export const MAX_ERROR_MESSAGE = 8 * 1024;

export const WireError = z.object({
  code: ErrorCode,
  message: z
    .string()
    .transform((m) => (m.length > MAX_ERROR_MESSAGE ? `${m.slice(0, MAX_ERROR_MESSAGE)}…` : m)),
  retryable: z.boolean(),
});
export type WireError = z.infer<typeof WireError>;

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["UNAVAILABLE", "TIMEOUT", "STORAGE_FAILED"]);

export class GridtuneError extends Error {
  override name = "GridtuneError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? RETRYABLE.has(code);
  }
  toWire(): WireError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
  static fromWire(e: WireError): GridtuneError {
    return new GridtuneError(e.code, e.message, { retryable: e.retryable });
  }
}

/** Bad user input (config, option, file): exit code 2 in the CLIs, never a stack trace. */
export class ValidationError extends GridtuneError {
  override name = "ValidationError";
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { ...options, retryable: false });
  }
}

/** A server (NATS, S3, Docker) cannot be reached: exit code 3 in the CLIs. */
export class UnavailableError extends GridtuneError {
  override name = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("UNAVAILABLE", message, { ...options, retryable: true });
  }
}

/** Errors raised by the evaluation runtimes (Docker or process). */
export class RuntimeError extends GridtuneError {
  override name = "RuntimeError";
}

/** Any thrown value as wire data; unknown errors become INTERNAL with their message only. */
export function toWireError(err: unknown): WireError {
  if (err instanceof GridtuneError) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: "INTERNAL", message, retryable: false };
}

/** Formats a zod error as "field.path: message" lines, for messages that name the field. */
export function describeZodError(err: z.ZodError, prefix = ""): string {
  return err.issues
    .map((i) => {
      const path = i.path.map(String).join(".");
      const where = prefix && path ? `${prefix}.${path}` : prefix || path || "(root)";
      return `${where}: ${i.message}`;
    })
    .join("\n");
}

/**
 * The guard at the end of every `switch` over a union: a member added to the union and forgotten
 * in the switch makes `x` a value of that member, not `never`, and so a compile error here.
 */
export function unreachable(x: never, what = "value"): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`);
}
