// The narrow ports steering's shell holds on its servers: what it really calls, so a test gives a
// small stand-in instead of casting a library client. nats.js's JetStreamClient satisfies them.

/** Options of a JetStream publish steering sends: always a msgID (a retry is stored once). */
export interface PublishOptions {
  readonly msgID: string;
  readonly timeout: number;
  /** The stream's last sequence this publish must follow (the event log's fence). */
  readonly expect?: { readonly lastSequence: number };
}

/** The server's acknowledgement: the stored sequence, and whether the msgID was a duplicate. */
export interface PublishAck {
  readonly seq: number;
  readonly duplicate: boolean;
}

/** Publishes to a JetStream stream: the event log's appends (GTLOG), the jobs (JOBS). */
export interface StreamPublisher {
  publish(subject: string, data: string, options: PublishOptions): Promise<PublishAck>;
}
