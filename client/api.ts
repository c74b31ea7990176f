// Typed requests to the steering service: `gt.api.<user>.<verb>`, core NATS request/reply. The reply
// is parsed at this boundary (ApiReply, then the verb's ApiReplies schema), so verbs only ever see
// valid data. Error replies become RemoteError; no responders or a timeout become UnavailableError.
import {
  type NatsConnection,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import type { z } from "zod";
import { describeZodError, GridtuneError, UnavailableError, ValidationError } from "../protocol/errors.ts";
import {
  DEFAULT_ELECTION_RETRY,
  ElectionRetryError,
  type ElectionRetry,
  withElectionRetry,
} from "../protocol/natsRetry.ts";
import { type ApiRequest, ApiReplies, ApiReply, type ApiVerb } from "../protocol/messages.ts";
import { subjects } from "../protocol/subjects.ts";
import { RemoteError } from "./errors.ts";

export type ApiPayload<V extends ApiVerb> = Omit<Extract<ApiRequest, { verb: V }>, "verb">;
export type ApiData<V extends ApiVerb> = z.infer<(typeof ApiReplies)[V]>;

export const DEFAULT_TIMEOUT_MS = 10_000;

export class ApiClient {
  constructor(
    private readonly nc: NatsConnection,
    readonly user: string,
    /** For messages: where NATS is. */
    readonly url: string,
    readonly timeoutMs = DEFAULT_TIMEOUT_MS,
    /**
     * How long "no responders" is retried: steering's request connection is moving to another
     * server of the cluster (or steering restarts). Only that failure is retried: a request that
     * reached steering and timed out may have been done (a submit), so it is never sent twice.
     */
    readonly retry: ElectionRetry = DEFAULT_ELECTION_RETRY,
  ) {}

  /** `timeoutMs`: a longer deadline for a request whose work grows with its data (datasetCommit). */
  async call<V extends ApiVerb>(
    verb: V,
    payload: ApiPayload<V>,
    timeoutMs = this.timeoutMs,
  ): Promise<ApiData<V>> {
    const subject = subjects.api(this.user, verb);
    let text: string;
    try {
      const msg = await withElectionRetry(
        `request ${verb}`,
        () => this.nc.request(subject, JSON.stringify({ verb, ...payload }), { timeout: timeoutMs }),
        { bound: this.retry, retryable: isNoResponders, boundSetting: "GRIDTUNE_NATS_RETRY_MS" },
      );
      text = msg.string();
    } catch (err) {
      throw this.describe(err, verb, timeoutMs);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new GridtuneError(
        "PROTOCOL_MISMATCH",
        `steering answered ${verb} with something that is not JSON`,
        { cause: err },
      );
    }
    const reply = ApiReply.safeParse(json);
    if (!reply.success) {
      throw new GridtuneError(
        "PROTOCOL_MISMATCH",
        `steering's reply to ${verb} is malformed:\n${describeZodError(reply.error)}`,
      );
    }
    if (!reply.data.ok)
      throw new RemoteError(reply.data.error.code, reply.data.error.message, {
        retryable: reply.data.error.retryable,
      });
    const schema: z.ZodType = ApiReplies[verb];
    const data = schema.safeParse(reply.data.data);
    if (!data.success) {
      // Different versions of phpo and steering: say so rather than failing later on a field.
      throw new GridtuneError(
        "PROTOCOL_MISMATCH",
        `steering's ${verb} reply does not match this phpo's protocol (update phpo or steering):\n${describeZodError(data.error, verb)}`,
      );
    }
    return data.data as ApiData<V>;
  }

  private describe(err: unknown, verb: string, timeoutMs: number): Error {
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      if (e instanceof PermissionViolationError) {
        return new ValidationError(
          "FORBIDDEN",
          `NATS refused ${e.operation} on ${e.subject} for user ${this.user}: --user (or GRIDTUNE_USER) must name the identity of the seed file`,
          { cause: err },
        );
      }
    }
    if (err instanceof ElectionRetryError && isNoResponders(err.cause)) {
      return new UnavailableError(
        `steering is not running at ${this.url} (no responders for ${verb}, ${err.attempts} tries within ` +
          `${err.totalMs} ms, GRIDTUNE_NATS_RETRY_MS): start it (gridtune-stack, or gridtune-steering) and try again`,
        { cause: err },
      );
    }
    if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) {
      return new UnavailableError(
        `steering at ${this.url} did not answer ${verb} within ${timeoutMs} ms: it is down or overloaded; try again or raise --timeout`,
        { cause: err },
      );
    }
    return new UnavailableError(
      `request ${verb} to steering at ${this.url} failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function isNoResponders(err: unknown): boolean {
  return (
    err instanceof NoRespondersError ||
    (err instanceof RequestError && (err.isNoResponders() || err.cause instanceof NoRespondersError))
  );
}
