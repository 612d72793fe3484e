// The port ingest stores messages through: what its intake (cmd/ingest)
// needs from the events stream, and the failures it tells apart. The NATS
// adapter (internal/nats/event-publisher.ts) implements it; it lives here,
// not in cmd/ingest, because internal/ never imports cmd/.
//
// Guarantees every implementation keeps:
// - Failures are values, never rejections: every call resolves, with what
//   was stored or read, or with one of the error classes below (a bug may
//   still throw). The caller answers each one (503, retry later) and none is
//   exceptional for it: an outage of the stream is an expected outcome.
// - A message is reported stored only once the stream acked it. A failed
//   publish may still have been stored (the ack can be lost on the way back);
//   resending is safe because the stream deduplicates by message id.
// - No NATS client type appears here or in what an implementation returns.

import type { RocketMessage } from "../domain/message.js";

export interface PublishAck {
  /** The stream sequence the message is stored at (the original one for a duplicate). */
  seq: number;
  /** True when the stream already held a message with this id. */
  duplicate: boolean;
}

/** The message was not stored because NATS or the stream cannot be reached right now; retry later. */
export class PublishUnavailableError extends Error {
  override name = "PublishUnavailableError";
}

/** No ack arrived in time. The message may or may not be stored; a resend is deduplicated. */
export class PublishTimeoutError extends PublishUnavailableError {
  override name = "PublishTimeoutError";
}

/** The stream answered with an error (limits, permissions, ...), or something unexpected failed. */
export class PublishFailedError extends Error {
  override name = "PublishFailedError";
  constructor(
    message: string,
    /** The JetStream API error code when the stream answered with one. */
    readonly code?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Every failure a publisher reports: retry later (unavailable, timed out), or refused. */
export type PublishError = PublishUnavailableError | PublishFailedError;

/** What became of one published message, and how long it took from the call. */
export type PublishResult = { ok: true; ack: PublishAck; seconds: number } | { ok: false; error: PublishError; seconds: number };

/** The document stored at a stream sequence (undefined when the stream no longer holds it), or why it could not be read. */
export type StoredRead = { ok: true; document: unknown } | { ok: false; error: PublishError };

export interface MessagePublisher {
  /** Publishes one message; resolves once the stream acked it, or with why not. */
  publish(message: RocketMessage): Promise<PublishResult>;
  /** Publishes every message, pipelined; resolves with one result per message, in order. */
  publishMany(messages: readonly RocketMessage[]): Promise<PublishResult[]>;
  /**
   * The document stored at stream sequence `seq` (as parsed JSON, to be
   * validated by the caller). Read from the stream leader, which acked it,
   * never from a replica that may lag.
   */
  storedAt(seq: number): Promise<StoredRead>;
}

/** A publisher that can also say whether it can publish right now (readiness). */
export interface StreamPublisher extends MessagePublisher {
  readonly connected: boolean;
  /** Undefined when the events stream answers, else why it does not. */
  checkStream(): Promise<PublishError | undefined>;
}
