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
//   Publishes awaiting their ack when the connection drops fail at once too:
//   an ack sent to a dropped connection never arrives.
// - Every publish settles within timeoutMs of the call (PublishTimeoutError).
//
// How: this is the JetStream "async publish" pattern. Each message is a
// plain NATS publish whose reply subject is a token under one inbox
// subscription, and acks are matched to publishes by token, with one sweep
// timer for all deadlines. It does what `jetstream().publish()` does on the
// wire, without that call's per-message request object, timer and error
// objects: measured here, half the client CPU per message (~20 us vs ~40 us),
// which is most of what ingest spends per message.
//
// At most maxInFlight publishes await their ack at once; the rest wait in
// arrival order. Thousands of outstanding publishes only add latency and
// memory (a few hundred already keep the stream busy), and objects that live
// that long survive the young-generation GC and cost far more to collect.

import { JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  createInbox,
  DrainingConnectionError,
  headers,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
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
  /** How long a publish may take in all, waiting for a slot included, before PublishTimeoutError. */
  timeoutMs: number;
  /** Timeout of the stream reachability check. */
  checkTimeoutMs?: number;
  /** Most publishes awaiting their ack at once; more wait their turn in order. Default 512. */
  maxInFlight?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 512;
const SWEEP_INTERVAL_MS = 50;
const MSG_ID_HEADER = "Nats-Msg-Id";

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

/** The stream's answer to a publish, as it is on the wire. */
interface WirePubAck {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

interface PendingAck {
  resolve(ack: PublishAck): void;
  reject(err: Error): void;
  deadline: number;
}

/** A FIFO of waiters that does not copy the array on every dequeue. */
class WaitQueue {
  private items: ((() => void) | undefined)[] = [];
  private head = 0;
  push(item: () => void): void {
    this.items.push(item);
  }
  shift(): (() => void) | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export class EventPublisher implements StreamPublisher {
  private readonly maxInFlight: number;
  private readonly waiting = new WaitQueue();
  private inFlight = 0;
  private readonly inbox: string;
  /**
   * Insertion order is deadline order, near enough for the sweep to stop at
   * the first live entry: every publish has the same timeout, and slots are
   * handed out in arrival order.
   */
  private readonly pending = new Map<string, PendingAck>();
  private nextToken = 0;
  private outbox: { token: string; message: RocketMessage }[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private isConnected: boolean;
  private closed = false;
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly topology: Topology,
    private readonly options: EventPublisherOptions,
  ) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.inbox = createInbox();
    nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onAck(err, msg) });
    // Built from a connected connection (connect() resolves once connected).
    this.isConnected = !nc.isClosed();
    void this.trackStatus();
  }

  private async trackStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect") {
        this.isConnected = false;
        this.failPending(() => new PublishUnavailableError("connection to NATS lost before the ack (the message may be stored)"));
      } else if (status.type === "reconnect") {
        this.isConnected = true;
      }
    }
    // The iterator ends when the connection closes for good.
    this.isConnected = false;
    this.closed = true;
    this.failPending(() => new PublishUnavailableError("connection to NATS closed before the ack (the message may be stored)"));
  }

  /** True while the connection is up and not closing. */
  get connected(): boolean {
    return this.isConnected && !this.closed && !this.nc.isClosed() && !this.nc.isDraining();
  }

  async publish(message: RocketMessage): Promise<PublishAck> {
    if (!this.connected) throw new PublishUnavailableError("not connected to NATS");
    const deadline = performance.now() + this.options.timeoutMs;
    if (this.inFlight < this.maxInFlight) this.inFlight++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      if (performance.now() >= deadline) throw new PublishTimeoutError("no publish slot free in time");
      if (!this.connected) throw new PublishUnavailableError("not connected to NATS");
      return await this.send(message, deadline);
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private send(message: RocketMessage, deadline: number): Promise<PublishAck> {
    const token = (this.nextToken++).toString(36);
    return new Promise<PublishAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline });
      this.outbox.push({ token, message });
      if (this.outbox.length === 1) setImmediate(this.flushOutbox);
      if (this.sweeper === undefined) {
        this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
        this.sweeper.unref();
      }
    });
  }

  /**
   * Publishes everything queued during this turn of the event loop. HTTP
   * requests arrive one socket callback at a time, and the NATS client
   * writes to its socket once per callback: sending them together makes it
   * one write (one system call) for all, instead of one per request.
   */
  private readonly flushOutbox = (): void => {
    const outbox = this.outbox;
    this.outbox = [];
    for (const { token, message } of outbox) {
      const waiter = this.pending.get(token);
      if (waiter === undefined) continue; // failed or timed out meanwhile
      const { channel, messageNumber } = message.metadata;
      const h = headers();
      h.set(MSG_ID_HEADER, messageId(channel, messageNumber));
      try {
        // Buffer.from takes small strings from a pooled slab: several times cheaper than the client's TextEncoder.
        const payload = Buffer.from(JSON.stringify(message));
        this.nc.publish(this.topology.subjectFor(channel), payload, { reply: `${this.inbox}.${token}`, headers: h });
      } catch (err) {
        this.pending.delete(token);
        waiter.reject(publishError(err));
      }
    }
  };

  private onAck(err: Error | null, msg: Msg): void {
    if (err) {
      // The inbox subscription itself failed (a permissions problem): nothing will be acked.
      this.failPending(() => publishError(err));
      return;
    }
    const token = msg.subject.slice(this.inbox.length + 1);
    const waiter = this.pending.get(token);
    if (waiter === undefined) return; // already timed out
    this.pending.delete(token);
    if (msg.data.length === 0) {
      // A status message: 503 means nothing stores this subject (no stream, or JetStream down).
      const code = msg.headers?.code ?? 0;
      waiter.reject(
        code === 503
          ? new PublishUnavailableError("stream unavailable: no responders for the subject")
          : new PublishFailedError(`unexpected status ${code} instead of an ack`),
      );
      return;
    }
    let ack: WirePubAck;
    try {
      ack = JSON.parse(this.decoder.decode(msg.data)) as WirePubAck;
    } catch (parseErr) {
      waiter.reject(new PublishFailedError("unreadable ack from the stream", undefined, { cause: parseErr }));
      return;
    }
    if (ack.error !== undefined) {
      waiter.reject(new PublishFailedError(`stream refused the message: ${ack.error.description ?? "unknown error"}`, ack.error.err_code));
    } else if (typeof ack.seq !== "number" || !ack.stream) {
      waiter.reject(new PublishFailedError("invalid ack from the stream"));
    } else {
      waiter.resolve({ seq: ack.seq, duplicate: ack.duplicate === true });
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const [token, waiter] of this.pending) {
      if (waiter.deadline > now) break;
      this.pending.delete(token);
      waiter.reject(new PublishTimeoutError("no ack from the stream in time"));
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private failPending(error: () => Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error());
    this.pending.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
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
