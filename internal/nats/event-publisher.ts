// Publishes validated rocket messages to the events stream, one JetStream
// publish per message, acknowledged only once the stream has stored it.
//
// Guarantees:
// - Every message goes to `topology.subjectFor(channel)` with
//   Nats-Msg-Id = `<channel>:<messageNumber>`, so a resend inside the
//   stream's duplicate window is stored once and reported as a duplicate.
// - A publish resolves only with the stream's ack; anything else rejects with
//   one of the error classes below, never with a NATS client type. A rejected
//   publish may still have been stored (the ack can be lost on the way back);
//   resending is safe because of the message id.
// - While the connection is not connected, publishes fail at once with
//   PublishUnavailableError instead of queueing in the client until the
//   timeout: a caller (an HTTP client) learns to come back later right away.

import { jetstream, JetStreamApiError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type NatsConnection,
} from "@nats-io/transport-node";
import type { RocketMessage } from "../domain/message.js";
import { messageId, STREAM_NAME, type Topology } from "./topology.js";

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

export interface MessagePublisher {
  publish(message: RocketMessage): Promise<PublishAck>;
}

/** A publisher that can also say whether it can publish right now. */
export interface StreamPublisher extends MessagePublisher {
  readonly connected: boolean;
  /** Resolves when the events stream answers; rejects with PublishUnavailableError or PublishFailedError. */
  checkStream(): Promise<void>;
}

export interface EventPublisherOptions {
  /** How long to wait for the stream's ack. */
  timeoutMs: number;
  /** Timeout of the stream reachability check. */
  checkTimeoutMs?: number;
}

/** Maps a NATS client failure to our own error classes. */
export function publishError(err: unknown): Error {
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

export class EventPublisher implements StreamPublisher {
  private readonly js: JetStreamClient;
  private isConnected: boolean;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly topology: Topology,
    private readonly options: EventPublisherOptions,
  ) {
    this.js = jetstream(nc, { timeout: options.timeoutMs });
    // Built from a connected connection (connect() resolves once connected).
    this.isConnected = !nc.isClosed();
    void this.trackStatus();
  }

  private async trackStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect") this.isConnected = false;
      else if (status.type === "reconnect") this.isConnected = true;
    }
    // The iterator ends when the connection closes for good.
    this.isConnected = false;
    this.closed = true;
  }

  /** True while the connection is up and not closing. */
  get connected(): boolean {
    return this.isConnected && !this.closed && !this.nc.isClosed() && !this.nc.isDraining();
  }

  async publish(message: RocketMessage): Promise<PublishAck> {
    if (!this.connected) throw new PublishUnavailableError("not connected to NATS");
    const { channel, messageNumber } = message.metadata;
    try {
      const ack = await this.js.publish(this.topology.subjectFor(channel), JSON.stringify(message), {
        msgID: messageId(channel, messageNumber),
        timeout: this.options.timeoutMs,
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw publishError(err);
    }
  }

  async checkStream(): Promise<void> {
    if (!this.connected) throw new PublishUnavailableError("not connected to NATS");
    const timeout = this.options.checkTimeoutMs ?? this.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.jsm.streams.info(STREAM_NAME),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError()), timeout);
        }),
      ]);
    } catch (err) {
      throw publishError(err);
    } finally {
      clearTimeout(timer);
    }
  }
}
