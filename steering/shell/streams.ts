// Creating steering's streams and KV buckets with the configured replica count, and reconciling
// one that exists with another count: on a cluster, streams made while it ran one server (R1)
// are scaled to R3 in place (nats-server moves the data to the new peers); where the server
// cannot do it (one server asked for R3), steering refuses to start with the fix, rather than
// running with less redundancy than it was told to have.
import type { JetStreamManager, StreamConfig, StreamInfo } from "@nats-io/jetstream";
import { ValidationError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/log.ts";
import { DEFAULT_ELECTION_RETRY, type ElectionRetry, withElectionRetry } from "../../protocol/natsRetry.ts";

export type StreamSpec = Partial<StreamConfig> & { name: string; num_replicas: number };

/** The stream JetStream keeps a KV bucket in. */
export const kvStream = (bucket: string) => `KV_${bucket}`;

/**
 * The replicas a stream really has. A server outside a cluster reports no `cluster` in stream
 * info, and nats-server 2.9 stores an update to num_replicas 3 there without complaint.
 */
export function replicasOf(info: StreamInfo): number {
  return info.cluster ? Math.max(1, info.config.num_replicas) : 1;
}

function notFound(err: unknown): boolean {
  return err instanceof Error && /stream not found/i.test(err.message);
}

/**
 * Makes sure the stream exists with `spec.num_replicas` replicas: creates it, or scales it when it
 * has another count. Start-up on a cluster still electing its meta leader is retried (`bound`).
 */
export async function ensureStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  logger?: Logger,
  bound: ElectionRetry = DEFAULT_ELECTION_RETRY,
): Promise<"created" | "kept" | "scaled"> {
  const info = await withElectionRetry(
    `reading stream ${spec.name}`,
    () =>
      jsm.streams.info(spec.name).catch((e: unknown) => {
        if (notFound(e)) return null;
        throw e;
      }),
    { bound },
  );
  if (!info) {
    try {
      const made = await withElectionRetry(`creating stream ${spec.name}`, () => jsm.streams.add(spec), {
        bound,
      });
      // nats-server 2.9 outside a cluster makes the stream with one replica and says nothing
      if (replicasOf(made) !== spec.num_replicas)
        throw new Error(`the server made it with ${replicasOf(made)} replica(s): it is not a cluster`);
    } catch (err) {
      if (spec.num_replicas > 1 && /replicas|cluster|peers/i.test(String(err)))
        throw new ValidationError(
          "INVALID_CONFIG",
          `stream ${spec.name} cannot be created with ${spec.num_replicas} replicas ` +
            `(--replicas / GRIDTUNE_NATS_REPLICAS): ${err instanceof Error ? err.message : String(err)}. ` +
            `Run steering against a cluster of at least ${spec.num_replicas} servers, or set GRIDTUNE_NATS_REPLICAS=1 on one server`,
          { cause: err },
        );
      throw err;
    }
    return "created";
  }
  return (await reconcileReplicas(jsm, spec.name, replicasOf(info), spec.num_replicas, logger, bound))
    ? "scaled"
    : "kept";
}

/** Scales an existing stream (or KV bucket's stream) to `wanted` replicas; false if it had them. */
export async function reconcileReplicas(
  jsm: JetStreamManager,
  name: string,
  has: number,
  wanted: number,
  logger?: Logger,
  bound: ElectionRetry = DEFAULT_ELECTION_RETRY,
): Promise<boolean> {
  if (has === wanted) return false;
  try {
    const after = await withElectionRetry(
      `scaling stream ${name} to ${wanted} replicas`,
      () => jsm.streams.update(name, { num_replicas: wanted }),
      { bound },
    );
    if (replicasOf(after) !== wanted) {
      // undo a count the server stored but cannot keep (one server), so the next start sees the truth
      await jsm.streams.update(name, { num_replicas: replicasOf(after) }).catch(() => undefined);
      throw new Error(`the server has ${replicasOf(after)} replica(s) of it: it is not a cluster`);
    }
  } catch (err) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `stream ${name} has ${has} replica(s) but steering is configured for ${wanted} ` +
        `(--replicas / GRIDTUNE_NATS_REPLICAS), and NATS refused to change it: ` +
        `${err instanceof Error ? err.message : String(err)}. Set GRIDTUNE_NATS_REPLICAS=${has} to ` +
        `keep it, or run steering against a cluster of at least ${wanted} servers (docs/architecture.md, "NATS cluster")`,
      { cause: err },
    );
  }
  logger?.info("stream scaled to the configured replica count", { stream: name, from: has, to: wanted });
  return true;
}

/** Scales a KV bucket that exists with another replica count (Kvm.create keeps it as it is). */
export async function reconcileBucket(
  jsm: JetStreamManager,
  bucket: string,
  wanted: number,
  logger?: Logger,
): Promise<void> {
  const info = await withElectionRetry(`reading KV bucket ${bucket}`, () =>
    jsm.streams.info(kvStream(bucket)).catch((e: unknown) => {
      if (notFound(e)) return null;
      throw e;
    }),
  );
  if (info) await reconcileReplicas(jsm, kvStream(bucket), replicasOf(info), wanted, logger);
}
