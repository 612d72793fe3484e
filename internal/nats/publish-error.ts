// Maps a NATS client failure to the ingest port's publish errors
// (internal/ingest/message-publisher.ts), so no NATS error class leaves the
// adapter. One place decides what is "retry later" (unavailable, timed out)
// and what is "refused" (the stream answered with an error, or anything we do
// not recognise); the original failure is always kept as the cause.

import { JetStreamApiError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { PublishFailedError, PublishTimeoutError, PublishUnavailableError, type PublishError } from "../ingest/message-publisher.js";

/** Maps a NATS client failure to our own error classes. */
export function publishError(err: unknown): PublishError {
  if (err instanceof PublishUnavailableError || err instanceof PublishFailedError) return err;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof TimeoutError) return new PublishTimeoutError("no ack from the stream in time", { cause: err });
    if (e instanceof JetStreamApiError) return new PublishFailedError(`stream refused the message: ${e.message}`, e.code, { cause: err });
    if (
      e instanceof NoRespondersError ||
      e instanceof ClosedConnectionError ||
      e instanceof DrainingConnectionError ||
      e instanceof ConnectionError ||
      // No responders surface as this (not exported) class: the stream is missing or JetStream is down.
      e.name === "JetStreamNotEnabled"
    ) {
      return new PublishUnavailableError(`stream unavailable: ${e.message}`, { cause: err });
    }
    if (e instanceof RequestError && e.cause === undefined) {
      // "connection closed" / "connection disconnected" while waiting for the ack.
      return new PublishUnavailableError(`stream unavailable: ${e.message}`, { cause: err });
    }
  }
  return new PublishFailedError(err instanceof Error ? err.message : String(err), undefined, { cause: err });
}
