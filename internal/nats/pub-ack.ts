// The stream's answer to a publish, as it is on the wire, and what it means
// to the publisher: the stored sequence (and whether it was a duplicate), or
// one of the ingest port's publish errors. Nothing here throws: an answer we
// cannot read is a PublishFailedError like any other refusal.

import type { Msg } from "@nats-io/transport-node";
import { PublishFailedError, PublishUnavailableError, type PublishAck, type PublishError } from "../ingest/message-publisher.js";
import { JetStreamApiCode } from "./jetstream-codes.js";

/** The stream's answer to a publish, as it is on the wire. */
interface WirePubAck {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

const decoder = new TextDecoder();

/** What the reply `msg` to a publish says became of it. */
export function readPubAck(msg: Msg): PublishAck | PublishError {
  if (msg.data.length === 0) {
    // A status message: 503 means nothing stores this subject (no stream, or JetStream down).
    const code = msg.headers?.code ?? 0;
    return code === 503
      ? new PublishUnavailableError("stream unavailable: no responders for the subject")
      : new PublishFailedError(`unexpected status ${code} instead of an ack`);
  }
  let ack: WirePubAck;
  try {
    ack = JSON.parse(decoder.decode(msg.data)) as WirePubAck;
  } catch (parseErr) {
    return new PublishFailedError("unreadable ack from the stream", undefined, { cause: parseErr });
  }
  if (ack.error !== undefined) {
    // A resend racing its original on a replicated stream: stored or not is not known yet, so "try again", like an outage.
    if (ack.error.err_code === JetStreamApiCode.DuplicateInProcess) {
      return new PublishUnavailableError("the same message is being stored by an earlier request; retry");
    }
    return new PublishFailedError(`stream refused the message: ${ack.error.description ?? "unknown error"}`, ack.error.err_code);
  }
  if (typeof ack.seq !== "number" || !ack.stream) return new PublishFailedError("invalid ack from the stream");
  return { seq: ack.seq, duplicate: ack.duplicate === true };
}
