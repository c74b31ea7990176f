// A small structured logger shared by the services: one line per record on stderr,
// `time level component message key=value…`, or JSON lines with GRIDTUNE_LOG_FORMAT=json.
// Fields named like secrets, and presigned URLs, are redacted: they are bearer tokens.
export type LogLevel = "debug" | "info" | "warn" | "error";
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /seed|secret|password|token|url|credential/i;

/** An nkey seed (`SU…`, `SA…`, `SO…`): "S", the key type, then base32. */
const NKEY_SEED = /\bS[UANOCPX][A-Z2-7]{40,}\b/g;

/** Presigned URLs and nkey seeds in strings, and secret-named keys at any depth, are redacted. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    if (/X-Amz-Signature=/i.test(value)) return "[presigned URL redacted]";
    return value.replace(NKEY_SEED, "[seed redacted]");
  }
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (value instanceof Error) return redact(String(value), depth + 1);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}

export function createLogger(
  component: string,
  opts: { level?: LogLevel; sink?: (line: string) => void } = {},
): Logger {
  const min = ORDER[opts.level ?? (process.env.GRIDTUNE_LOG_LEVEL as LogLevel | undefined) ?? "info"] ?? 20;
  const json = process.env.GRIDTUNE_LOG_FORMAT === "json";
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {}))
      clean[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v);
    const text = redact(msg) as string;
    const time = new Date().toISOString();
    if (json) return sink(JSON.stringify({ time, level, component, msg: text, ...clean }));
    const kv = Object.entries(clean)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    sink(`${time} ${level.padEnd(5)} ${component} ${text}${kv ? " " + kv : ""}`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => createLogger(`${component}:${c}`, opts),
  };
}
