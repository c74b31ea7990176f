// What a verb gets: the output streams, the global flags, and a connection opened on first use
// (so `phpo submit --noSubmit` and `phpo preview` never touch the network).
import { ApiClient, DEFAULT_TIMEOUT_MS } from "./api.ts";
import { type Connection, type Env, openConnection } from "./connection.ts";
import { ValidationError } from "../protocol/errors.ts";
import { DEFAULT_ELECTION_RETRY, type ElectionRetry } from "../protocol/natsRetry.ts";
import type { GlobalOptions, Io } from "./io.ts";

export class VerbContext {
  private conn: Connection | undefined;
  private client: ApiClient | undefined;

  constructor(
    readonly io: Io,
    readonly opts: GlobalOptions,
    readonly env: Env = process.env,
  ) {}

  get json(): boolean {
    return this.opts.json === true;
  }

  warn(message: string): void {
    this.io.stderr.write(`phpo: warning: ${message}\n`);
  }

  /** `persistent`: reconnect to NATS for as long as it takes (a verb that keeps running). */
  async connection(o: { persistent?: boolean } = {}): Promise<Connection> {
    this.conn ??= await openConnection(this.opts, this.io, this.env, o);
    return this.conn;
  }

  async api(): Promise<ApiClient> {
    if (!this.client) {
      const timeoutMs = this.timeoutMs(); // a bad --timeout is a usage error, found before connecting
      const c = await this.connection();
      this.client = new ApiClient(c.nc, c.config.user, c.config.natsUrl, timeoutMs, this.retryBound());
    }
    return this.client;
  }

  /** GRIDTUNE_NATS_RETRY_MS: how long phpo retries while steering cannot be reached (an election). */
  private retryBound(): ElectionRetry {
    const raw = this.env.GRIDTUNE_NATS_RETRY_MS;
    if (raw === undefined) return DEFAULT_ELECTION_RETRY;
    const ms = Number(raw);
    if (!Number.isInteger(ms) || ms < 0 || ms > 600_000)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `GRIDTUNE_NATS_RETRY_MS=${raw}: give milliseconds from 0 to 600000 (how long phpo retries while steering cannot be reached), e.g. 15000`,
      );
    return { ...DEFAULT_ELECTION_RETRY, totalMs: ms };
  }

  private timeoutMs(): number {
    if (this.opts.timeout === undefined) return DEFAULT_TIMEOUT_MS;
    const s = Number(this.opts.timeout);
    // a Node.js timer past 2^31 − 1 ms fires at once: that deadline would time out every request
    if (!Number.isFinite(s) || s <= 0 || s * 1000 > 2 ** 31 - 1)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `--timeout ${this.opts.timeout}: give the request deadline in seconds, at most 2147483, e.g. --timeout 30`,
      );
    return s * 1000;
  }

  async close(): Promise<void> {
    await this.conn?.close();
    this.conn = undefined;
    this.client = undefined;
  }
}
