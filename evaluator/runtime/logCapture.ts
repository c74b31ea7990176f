// Shared by the docker and process runtimes: the capped combined log file, the stdout line
// splitter (progress markers arrive as lines), and the small helpers for stopping a run.
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { StringDecoder } from "node:string_decoder";

/** Longest stdout line handed to onStdoutLine; longer ones are cut so a payload cannot exhaust memory. */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * The combined stdout/stderr log of one run. Keeps the first `maxBytes` bytes of output; after
 * that a single marker line is written and the rest is counted but dropped. Runtime notes
 * ("[gridtune] …" lines: timeouts, stops) are always written, so the reason for an outcome is in
 * the log even when the payload filled it. The file is created on the first byte: a quiet run
 * leaves no log file (and so nothing to upload).
 */
export class LogCapture {
  private out: WriteStream | null = null;
  private kept = 0;
  private dropped = 0;
  private written = 0;
  private closed: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    readonly file: string,
    readonly maxBytes: number,
  ) {}

  /** Payload output (either stream). */
  write(chunk: Buffer): void {
    if (this.closed) return;
    const room = this.maxBytes - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.kept += part.length;
    this.put(part);
    if (part.length < chunk.length) {
      this.dropped += chunk.length - part.length;
      this.put(
        Buffer.from(`\n[gridtune] log truncated: only the first ${this.maxBytes} bytes of output are kept\n`),
      );
    }
  }

  /** A line from the runtime itself, written even past the cap. */
  note(text: string): void {
    if (this.closed) return;
    this.put(Buffer.from(`[gridtune] ${text}\n`));
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  /** Bytes in the log file (output kept plus marker and note lines). */
  get bytes(): number {
    return this.written;
  }

  /** Flushes and closes the file; idempotent. Rejects only when the file could not be written. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.dropped > 0) this.put(Buffer.from(`[gridtune] ${this.dropped} bytes of output dropped\n`));
      const out = this.out;
      if (out) await new Promise<void>((resolve) => out.end(resolve));
      if (this.failure) throw this.failure;
    })();
    return this.closed;
  }

  private put(buf: Buffer): void {
    this.written += buf.length;
    this.stream().write(buf);
  }

  private stream(): WriteStream {
    if (this.out) return this.out;
    mkdirSync(dirname(this.file), { recursive: true });
    // Appending: the agent's own notes (a checkpoint left out or too large) are appended to the
    // same file from another descriptor while the run writes; "w" would write over them.
    const out = createWriteStream(this.file, { flags: "a", mode: 0o644 });
    // A full disk must not crash the agent: the run goes on, close() reports the error.
    out.on("error", (err) => {
      this.failure ??= err;
    });
    this.out = out;
    return out;
  }
}

/** Splits a byte stream into UTF-8 lines (without "\n" or a trailing "\r"). */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    let nl: number;
    while ((nl = this.pending.indexOf("\n")) >= 0) {
      this.emit(this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
    }
    // A payload that never writes a newline must not grow this buffer without bound.
    if (this.pending.length > MAX_LINE_CHARS) {
      this.emit(this.pending);
      this.pending = "";
    }
  }

  /** Delivers a last line that had no newline. */
  end(): void {
    this.pending += this.decoder.end();
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = "";
  }

  private emit(line: string): void {
    const text = (line.endsWith("\r") ? line.slice(0, -1) : line).slice(0, MAX_LINE_CHARS);
    // A throwing hook is the agent's bug, not the payload's: it must not end the run.
    try {
      this.onLine(text);
    } catch {
      /* ignored on purpose */
    }
  }
}

/** Why a run was ended early; the first cause wins. */
export type StopCause = "timeout" | "abort" | "oom" | "close";

export function describeStop(cause: StopCause, spec: { wallClockMs: number }): string {
  switch (cause) {
    case "timeout":
      return `wall-clock limit of ${spec.wallClockMs} ms reached: stopping (SIGTERM, then SIGKILL after the grace)`;
    case "abort":
      return "stop requested (steering said stop, or the agent is draining): stopping";
    case "oom":
      return "memory limit exceeded: killing";
    case "close":
      return "the runtime is closing: stopping";
  }
}
