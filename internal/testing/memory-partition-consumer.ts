// An in-memory durable pull consumer of one partition of the events stream,
// faithful to what internal/nats/partition-consumer.ts configures on
// JetStream (explicit acks, unlimited redelivery, ack_wait, max_ack_pending,
// deliver all, filter `rockets.events.<p>.*`), for the simulator. The
// contract test (internal/sequencer/partition-consumer.contract.test.ts)
// holds the two to the same outcomes.
//
// What it keeps from JetStream:
// - New messages are delivered once each, in stream order; `delivered` is
//   the last stream sequence so delivered (delivered.stream_seq).
// - A delivered message stays pending until acked or terminated. It becomes
//   due again when its ack_wait passes (counted from its last delivery), or
//   when nak'ed (after the nak's delay, if any); due messages are delivered
//   before new ones, lowest sequence first.
// - While max_ack_pending messages are pending, no new message is delivered
//   (due ones still are).
// - A pull asks for up to `max` messages and ends when it has them or when
//   it expires, whichever comes first; pulls are served in the order they
//   arrived. A pull whose client is gone is still served until it expires:
//   what it takes comes back after ack_wait, as on JetStream.
// - Retention removing messages removes them here too: never delivered, and
//   pending ones are dropped.
// - num_pending: the filter's messages not yet delivered.
//
// Timers are the process's (the simulator's virtual ones, or real ones).

import { eventSubject } from "../domain/partition.js";
import type { ConsumerPosition } from "../sequencer/partition-worker.js";
import type { MemoryEventStream, StoredEvent } from "./memory-event-stream.js";

export interface ConsumerSettings {
  ackWaitMs: number;
  maxAckPending: number;
}

export interface ConsumedMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** The filter's messages not yet delivered, after this one (num_pending). */
  readonly pending: number;
  /** How many times it was delivered, this one included. */
  readonly deliveries: number;
}

interface Pull {
  remaining: number;
  deliver: (m: ConsumedMessage) => void;
  done: () => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Pending {
  deliveries: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class MemoryPartitionConsumer {
  private delivered = 0;
  /** The filter's messages not yet delivered, in stream order. */
  private undelivered: number[] = [];
  private readonly pending = new Map<number, Pending>();
  /** Pending messages due for redelivery, sorted. */
  private due: number[] = [];
  private pulls: Pull[] = [];
  private readonly prefix: string;
  private readonly unlisten: () => void;
  private serving = false;
  /** Acks, naks and terms received, for checks: [seq, what]. */
  readonly settled: Array<[number, "ack" | "nak" | "term"]> = [];

  constructor(
    private readonly stream: MemoryEventStream,
    readonly partition: number,
    private readonly settings: ConsumerSettings,
  ) {
    this.prefix = eventSubject(partition, "");
    for (const event of stream.from(stream.firstHeld)) if (this.matches(event)) this.undelivered.push(event.seq);
    this.unlisten = stream.listen((change) => {
      if (change.appended && this.matches(change.appended)) {
        this.undelivered.push(change.appended.seq);
        this.serve();
      }
      if (change.trimmedBefore !== undefined) this.trimmed(change.trimmedBefore);
    });
    stream.attachConsumer(partition, () => this.delivered);
  }

  /** Asks for up to `max` messages, each handed to `deliver`; `done` once it has them or `expiresMs` passed. */
  pull(max: number, expiresMs: number, deliver: (m: ConsumedMessage) => void, done: () => void): void {
    const pull: Pull = { remaining: max, deliver, done, timer: setTimeout(() => this.finish(pull), expiresMs) };
    this.pulls.push(pull);
    this.serve();
  }

  ack(seq: number): void {
    this.settled.push([seq, "ack"]);
    this.remove(seq);
  }

  term(seq: number): void {
    this.settled.push([seq, "term"]);
    this.remove(seq);
  }

  /** Hands the message back: due again at once, or after `delayMs`. */
  nak(seq: number, delayMs = 0): void {
    this.settled.push([seq, "nak"]);
    const p = this.pending.get(seq);
    if (!p) return;
    clearTimeout(p.timer);
    p.timer = undefined;
    if (delayMs > 0) p.timer = setTimeout(() => this.becomeDue(seq), delayMs);
    else this.becomeDue(seq);
  }

  position(): ConsumerPosition {
    return { pending: this.undelivered.length, ackPending: this.pending.size, deliveredThrough: this.delivered };
  }

  /** Delivered and not yet acknowledged. */
  isPending(seq: number): boolean {
    return this.pending.has(seq);
  }

  /** Pending (delivered, unacknowledged) sequences. */
  get pendingSeqs(): number[] {
    return [...this.pending.keys()].sort((a, b) => a - b);
  }

  dispose(): void {
    this.unlisten();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    for (const pull of this.pulls) clearTimeout(pull.timer);
    this.pulls = [];
  }

  private matches(event: StoredEvent): boolean {
    return event.subject.startsWith(this.prefix) && event.subject.indexOf(".", this.prefix.length) === -1;
  }

  private remove(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(seq);
    const i = this.due.indexOf(seq);
    if (i >= 0) this.due.splice(i, 1);
    this.serve();
  }

  private becomeDue(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    clearTimeout(p.timer);
    p.timer = undefined;
    if (!this.due.includes(seq)) {
      this.due.push(seq);
      this.due.sort((a, b) => a - b);
    }
    this.serve();
  }

  private trimmed(first: number): void {
    while (this.undelivered.length > 0 && this.undelivered[0]! < first) this.undelivered.shift();
    for (const seq of [...this.pending.keys()]) {
      if (seq >= first) continue;
      clearTimeout(this.pending.get(seq)!.timer);
      this.pending.delete(seq);
    }
    this.due = this.due.filter((seq) => seq >= first);
    this.serve();
  }

  private finish(pull: Pull): void {
    const i = this.pulls.indexOf(pull);
    if (i < 0) return;
    this.pulls.splice(i, 1);
    clearTimeout(pull.timer);
    pull.done();
  }

  private serve(): void {
    // Re-entrant calls (a deliver callback acking at once) are folded into the running pass.
    if (this.serving) return;
    this.serving = true;
    try {
      while (this.pulls.length > 0) {
        const pull = this.pulls[0]!;
        const seq = this.next();
        if (seq === undefined) break;
        const event = this.stream.get(seq)!;
        const p = this.pending.get(seq) ?? { deliveries: 0, timer: undefined };
        p.deliveries += 1;
        clearTimeout(p.timer);
        p.timer = setTimeout(() => this.becomeDue(seq), this.settings.ackWaitMs);
        this.pending.set(seq, p);
        pull.remaining -= 1;
        pull.deliver({ seq, subject: event.subject, data: event.data, pending: this.undelivered.length, deliveries: p.deliveries });
        if (pull.remaining <= 0) this.finish(pull);
      }
    } finally {
      this.serving = false;
    }
  }

  /** The next sequence to deliver: a due one first, else a new one while there is room. */
  private next(): number | undefined {
    while (this.due.length > 0) {
      const seq = this.due.shift()!;
      if (this.pending.has(seq) && this.stream.get(seq) !== undefined) return seq;
    }
    if (this.pending.size >= this.settings.maxAckPending) return undefined;
    while (this.undelivered.length > 0) {
      const seq = this.undelivered.shift()!;
      if (this.stream.get(seq) === undefined) continue;
      this.delivered = seq;
      return seq;
    }
    return undefined;
  }
}
