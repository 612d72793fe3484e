// An in-memory events stream, for the channel actor's and the registry's unit
// tests: messages appended on their subjects, numbered by one stream
// sequence, and read back the way internal/nats/parked-messages.ts reads
// parked messages from JetStream (the ParkedSource port), so that the actor
// gets its ParkedMessages through the same decodedParked as in production.
// The contract test (internal/sequencer/parked-messages.contract.test.ts)
// holds both readers to the same outcomes.
//
// What it keeps: sequences start at 1 and grow by one per message; a read
// hands over every message held on the channel's subject from `fromSeq` up
// to the stream's end when the read started (or `throughSeq`), in stream
// order (invalid ones too: decoding, and skipping what the worker would
// terminate, is decodedParked's job); a census counts every message on the
// subject and gives the stream's first sequence; `firstSeq` finds the
// subject's first message at or after a sequence.
//
// What it does not model: retention and removals (nothing leaves the
// stream), the partition consumer's delivered bound (a read goes to the
// stream's end, as the real one does while the partition has no consumer),
// failures part-way through a read.
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
}

export class MemoryEventStream implements ParkedSource {
  private readonly events: StoredEvent[] = [];
  /** Reads started so far (each is a consumer created, on JetStream). */
  reads = 0;

  constructor(private readonly latencyMs = DEFAULT_LATENCY_MS) {}

  /** Stores `data` on `subject`; returns its stream sequence. */
  append(subject: string, data: Uint8Array | string): number {
    const seq = this.events.length + 1;
    this.events.push({ seq, subject, data: typeof data === "string" ? Buffer.from(data, "utf8") : Uint8Array.from(data) });
    return seq;
  }

  /** Stores the message as ingest publishes it (its JSON, on its channel's subject of `partition`). */
  publish(partition: number, message: RocketMessage): number {
    return this.append(eventSubject(partition, message.metadata.channel), JSON.stringify(message));
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
    const end = Math.min(this.events.length, throughSeq);
    await roundTrip(this.latencyMs);
    let read = 0;
    for (let i = Math.max(0, fromSeq - 1); i < end; i += 1) {
      const event = this.events[i]!;
      if (event.subject !== subject) continue;
      read += 1;
      onMessage(event);
    }
    return { read };
  }

  async firstSeq(partition: number, channel: string, fromSeq: number): Promise<number> {
    const subject = eventSubject(partition, channel);
    await roundTrip(this.latencyMs);
    for (let i = Math.max(0, fromSeq - 1); i < this.events.length; i += 1) if (this.events[i]!.subject === subject) return i + 1;
    return Number.POSITIVE_INFINITY;
  }

  async census(partition: number, channel: string): Promise<{ count: number; firstSeq: number }> {
    const subject = eventSubject(partition, channel);
    await roundTrip(this.latencyMs);
    let count = 0;
    for (const event of this.events) if (event.subject === subject) count += 1;
    return { count, firstSeq: this.events.length === 0 ? 0 : 1 };
  }

  /** The actor's port on this stream, decoded as in production. */
  parked(): ParkedMessages {
    return decodedParked(this);
  }
}
