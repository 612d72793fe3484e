// An in-memory events stream, for the channel actor's and the registry's unit
// tests and the simulator: messages appended on their subjects, numbered by
// one stream sequence, and read back the way internal/nats/parked-messages.ts
// reads parked messages from JetStream (the ParkedSource port), so that the
// actor gets its ParkedMessages through the same decodedParked as in
// production. The contract test
// (internal/sequencer/parked-messages.contract.test.ts) holds both readers to
// the same outcomes.
//
// What it keeps: sequences start at 1 and grow by one per message, and are
// never reused; a read hands over every message held on the channel's subject
// from `fromSeq` up to the stream's end when the read started, or up to what
// the partition's consumer has delivered when one is attached (`deliveredBy`),
// or up to `throughSeq`, in stream order (invalid ones too: decoding, and
// skipping what the worker would terminate, is decodedParked's job); a census
// counts every message held on the subject and gives the stream's first
// sequence; `firstSeq` finds the subject's first held message at or after a
// sequence. Retention (`trimBefore`, as `discard: old` does by age or bytes)
// removes the oldest messages: reads, censuses and the first sequence then
// see only what is left, as on JetStream.
//
// What it does not model: failures part-way through a read.
//
// Reads, censuses and firstSeq take a simulated round trip (round-trip.ts); appends
// are immediate (the tests publish before they deliver).

import type { RocketMessage } from "../domain/message.js";
import { eventSubject } from "../domain/partition.js";
import type { ParkedMessages } from "../sequencer/channel-actor.js";
import { decodedParked, type ParkedSource } from "../sequencer/partition-worker.js";
import { DEFAULT_LATENCY_MS, roundTrip } from "./round-trip.js";

export interface StoredEvent {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** When it was stored (Date.now()). */
  readonly at: number;
}

/** Told of every append and trim (a partition consumer serving its pulls). */
export type StreamListener = (change: { appended?: StoredEvent; trimmedBefore?: number }) => void;

export class MemoryEventStream implements ParkedSource {
  /** Held events; events[i] has sequence `first + i`. */
  private events: StoredEvent[] = [];
  private first = 1;
  private heldBytes = 0;
  private readonly listeners = new Set<StreamListener>();
  /** Per partition, what its consumer has delivered (reads stop there), when one is attached. */
  private readonly delivered = new Map<number, () => number>();
  /** Reads started so far (each is a consumer created, on JetStream). */
  reads = 0;

  constructor(private readonly latencyMs = DEFAULT_LATENCY_MS) {}

  /** Stores `data` on `subject`; returns its stream sequence. */
  append(subject: string, data: Uint8Array | string): number {
    const seq = this.first + this.events.length;
    const event: StoredEvent = { seq, subject, data: typeof data === "string" ? Buffer.from(data, "utf8") : Uint8Array.from(data), at: Date.now() };
    this.events.push(event);
    this.heldBytes += event.data.byteLength + subject.length;
    for (const listener of this.listeners) listener({ appended: event });
    return seq;
  }

  /** Stores the message as ingest publishes it (its JSON, on its channel's subject of `partition`). */
  publish(partition: number, message: RocketMessage): number {
    return this.append(eventSubject(partition, message.metadata.channel), JSON.stringify(message));
  }

  /** The sequence the next message gets. */
  get nextSeq(): number {
    return this.first + this.events.length;
  }

  /** The first sequence held (nextSeq when empty). */
  get firstHeld(): number {
    return this.first;
  }

  /** Messages held. */
  get size(): number {
    return this.events.length;
  }

  /** Bytes held (data and subjects). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** The event held at `seq`, if any. */
  get(seq: number): StoredEvent | undefined {
    return seq >= this.first ? this.events[seq - this.first] : undefined;
  }

  /** Held events from `fromSeq` on, in stream order. */
  *from(fromSeq: number): IterableIterator<StoredEvent> {
    for (let i = Math.max(0, fromSeq - this.first); i < this.events.length; i += 1) yield this.events[i]!;
  }

  /** Removes every message below `seq` (retention discarding the oldest). */
  trimBefore(seq: number): void {
    const n = Math.min(this.events.length, seq - this.first);
    if (n <= 0) return;
    for (let i = 0; i < n; i += 1) this.heldBytes -= this.events[i]!.data.byteLength + this.events[i]!.subject.length;
    this.events = this.events.slice(n);
    this.first += n;
    for (const listener of this.listeners) listener({ trimmedBefore: this.first });
  }

  listen(listener: StreamListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads of the partition's channels stop at what `deliveredThrough` says its consumer delivered, as on JetStream. */
  attachConsumer(partition: number, deliveredThrough: () => number): void {
    this.delivered.set(partition, deliveredThrough);
  }

  async read(
    partition: number,
    channel: string,
    fromSeq: number,
    onMessage: (m: StoredEvent) => void,
    throughSeq = Number.POSITIVE_INFINITY,
  ): Promise<{ read: number }> {
    this.reads += 1;
    const subject = eventSubject(partition, channel);
    const bound = this.delivered.get(partition);
    const end = Math.min(this.nextSeq - 1, throughSeq, bound === undefined ? Number.POSITIVE_INFINITY : bound());
    await roundTrip(this.latencyMs);
    let read = 0;
    for (const event of this.from(fromSeq)) {
      if (event.seq > end) break;
      if (event.subject !== subject) continue;
      read += 1;
      onMessage(event);
    }
    return { read };
  }

  async firstSeq(partition: number, channel: string, fromSeq: number): Promise<number> {
    const subject = eventSubject(partition, channel);
    await roundTrip(this.latencyMs);
    for (const event of this.from(fromSeq)) if (event.subject === subject) return event.seq;
    return Number.POSITIVE_INFINITY;
  }

  async census(partition: number, channel: string): Promise<{ count: number; firstSeq: number }> {
    const subject = eventSubject(partition, channel);
    await roundTrip(this.latencyMs);
    let count = 0;
    for (const event of this.events) if (event.subject === subject) count += 1;
    // As JetStream's first_seq: 0 before anything was stored; past the last one once retention removed everything.
    return { count, firstSeq: this.nextSeq === 1 ? 0 : this.first };
  }

  /** The first sequence held and how long messages are kept (`maxAgeMs`, as retention is set; 0: no limit). */
  async held(): Promise<{ firstSeq: number; maxAgeMs: number }> {
    await roundTrip(this.latencyMs);
    return { firstSeq: this.nextSeq === 1 ? 0 : this.first, maxAgeMs: this.maxAgeMs };
  }

  /** The retention the stream reports (what the simulator trims by, when by age). */
  maxAgeMs = 0;

  /** The actor's port on this stream, decoded as in production. */
  parked(): ParkedMessages {
    return decodedParked(this);
  }
}
