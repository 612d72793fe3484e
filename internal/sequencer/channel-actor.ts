// One channel's actor: its mailbox, its cached state, and the KV writes that
// turn deliveries into committed state.
//
// Guarantees:
// - One batch at a time, in arrival order. While a write is in flight, new
//   deliveries wait in the mailbox; the next write takes all of them at once
//   (coalescing), so a busy channel costs one KV write per round trip, not
//   one per message.
// - A delivery is acked only after the KV write that holds its effect
//   committed (applied, or buffered in `pending`, which is part of the stored
//   state). A duplicate of committed state is acked without a write: once a
//   number is at or below lastApplied or in pending, it stays so in every
//   later state.
// - Every write names the revision it was computed from. On a conflict the
//   actor reloads and recomputes the same batch against the fresh state, so
//   nothing is applied twice whoever else wrote (a stale owner, a second
//   instance during a rebalance). Acks need no lease check for the same
//   reason: an ack only ever follows a committed write that holds the
//   message, which stays true whoever owns the partition by then.
// - Anything else that fails (NATS unreachable, unreadable state) naks the
//   batch with a delay and forgets the cache: the write may or may not have
//   landed, and the redelivered messages are judged against a fresh load.
// - A stored state that fails validation (StateDecodeError) is never acted
//   on, nor overwritten: its messages are nak'ed with a delay and it is
//   reported apart from outages (unreadableState), since no retry fixes it
//   and it needs an operator; the channel resumes once the entry is valid.
// - Overflow (count or encoded bytes over the limits) naks with a delay;
//   nothing is dropped.

import { Buffer } from "node:buffer";
import type { RocketMessage } from "../domain/message.js";
import { sequenceBatch } from "../domain/sequence-batch.js";
import { emptyChannelState, type ChannelState } from "../domain/sequencing.js";
import { encodeChannelStateFrom, RevisionConflictError, StateDecodeError, type StoredChannelState } from "../nats/channel-state-store.js";
import type { Limiter } from "./limiter.js";
import { MessageOutcome } from "./metrics.js";

/** A message handed to an actor; the actor settles it exactly once. */
export interface Delivery {
  readonly message: RocketMessage;
  ack(): void;
  nak(delayMs?: number): void;
}

/** Channel state in KV, written with an expected revision (ChannelStateStore). */
export interface ChannelStates {
  load(channel: string): Promise<StoredChannelState | null>;
  /** Throws RevisionConflictError when the entry is no longer at `revision` (0: must not exist). */
  save(channel: string, state: ChannelState, revision: number, encode: (state: ChannelState) => Uint8Array): Promise<number>;
}

export interface ActorSettings {
  /** Most messages one channel may hold behind a gap. */
  maxPending: number;
  /** Most encoded bytes those messages may take, so a state write stays under the server's max payload. */
  maxPendingBytes: number;
  /** Delay before a nak'ed message comes back (overflow, KV failure). */
  retryDelayMs: number;
}

/** What the actor reports; the registry turns it into metrics, gauges and logs. */
export interface ActorObserver {
  settled(outcome: MessageOutcome, count: number): void;
  kvWrite(seconds: number, committed: boolean): void;
  revisionConflict(): void;
  bufferedChanged(delta: number): void;
  failed(channel: string, err: unknown, messages: number): void;
  /** The channel's stored state is invalid: its messages wait (nak'ed) until an operator repairs it. */
  unreadableState(channel: string, err: StateDecodeError, messages: number): void;
}

export interface ActorEnvironment {
  readonly store: ChannelStates;
  readonly limiter: Limiter;
  readonly settings: ActorSettings;
  readonly observer: ActorObserver;
  /** Monotonic milliseconds. */
  now(): number;
}

interface Cached {
  state: ChannelState;
  revision: number;
  pendingBytes: number;
}

/**
 * Each message's JSON bytes, kept on the message (a hidden, non-enumerable
 * property) from when it arrived or was first encoded, and reused by every
 * state write while it stays pending: a write then costs a copy of the
 * buffered bytes, not a fresh JSON encoding of each message.
 */
const JSON_BYTES = Symbol("jsonBytes");
type WithJson = RocketMessage & { [JSON_BYTES]?: Uint8Array };

/** Records `bytes` as `message`'s JSON: they must parse to exactly the message. */
export function keepJson(message: RocketMessage, bytes: Uint8Array): void {
  Object.defineProperty(message, JSON_BYTES, { value: bytes, enumerable: false });
}

export function messageJson(message: RocketMessage): Uint8Array {
  const kept = (message as WithJson)[JSON_BYTES];
  if (kept !== undefined) return kept;
  const bytes = Buffer.from(JSON.stringify(message), "utf8");
  keepJson(message, bytes);
  return bytes;
}

/** Bytes a message adds to the encoded state (its JSON plus a separating comma). */
export function encodedSize(message: RocketMessage): number {
  return messageJson(message).byteLength + 1;
}

const encodeState = (state: ChannelState) => encodeChannelStateFrom(state, messageJson);

function pendingBytesOf(state: ChannelState): number {
  let bytes = 0;
  for (const m of state.pending) bytes += encodedSize(m);
  return bytes;
}

const ActorStatus = { Open: "open", Draining: "draining", Closed: "closed" } as const;
type ActorStatus = (typeof ActorStatus)[keyof typeof ActorStatus];

export class ChannelActor {
  private mailbox: Delivery[] = [];
  private cached: Cached | undefined;
  private running = false;
  private status: ActorStatus = ActorStatus.Open;
  private idleWaiters: Array<() => void> = [];
  /** When this channel's current gap was first seen open, or undefined when it has none. */
  gapSince: number | undefined;
  lastActive: number;

  constructor(
    readonly channel: string,
    readonly partition: number,
    private readonly env: ActorEnvironment,
  ) {
    this.lastActive = env.now();
  }

  get idle(): boolean {
    return !this.running && this.mailbox.length === 0;
  }

  deliver(delivery: Delivery): void {
    if (this.status === ActorStatus.Closed) {
      delivery.nak();
      return;
    }
    this.mailbox.push(delivery);
    if (!this.running) void this.run();
  }

  /** Finishes what is in the mailbox, then resolves; the actor takes no further part. */
  drain(): Promise<void> {
    if (this.status === ActorStatus.Open) this.status = ActorStatus.Draining;
    return this.whenIdle();
  }

  /**
   * Stops at once: waiting deliveries are nak'ed for the partition's next
   * owner; a write already in flight completes (its CAS keeps it safe) but
   * is not retried.
   */
  close(): void {
    this.status = ActorStatus.Closed;
    this.nakMailbox(0);
  }

  /** Drops the cached state (and its share of the buffered gauge). */
  dispose(): void {
    this.setCache(undefined);
  }

  private whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private nakMailbox(delayMs: number): void {
    const waiting = this.mailbox;
    this.mailbox = [];
    for (const d of waiting) d.nak(delayMs);
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.mailbox.length > 0 && this.status !== ActorStatus.Closed) {
      const batch = this.mailbox;
      this.mailbox = [];
      try {
        await this.process(batch);
      } catch (err) {
        this.setCache(undefined);
        if (err instanceof StateDecodeError) this.env.observer.unreadableState(this.channel, err, batch.length);
        else this.env.observer.failed(this.channel, err, batch.length);
        for (const d of batch) d.nak(this.env.settings.retryDelayMs);
      }
    }
    if (this.status === ActorStatus.Closed) this.nakMailbox(0);
    this.running = false;
    this.lastActive = this.env.now();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async process(batch: Delivery[]): Promise<void> {
    for (;;) {
      const base = this.cached ?? (await this.load());
      const { state, outcomes, changed } = this.plan(base, batch);
      if (!changed) {
        this.settle(batch, outcomes);
        return;
      }
      let revision: number;
      try {
        revision = await this.save(state, base.revision);
      } catch (err) {
        if (!(err instanceof RevisionConflictError) || this.status === ActorStatus.Closed) throw err;
        // Someone else wrote: recompute this batch against what they wrote.
        this.env.observer.revisionConflict();
        this.setCache(undefined);
        continue;
      }
      this.setCache({ state, revision, pendingBytes: pendingBytesOf(state) });
      this.settle(batch, outcomes);
      return;
    }
  }

  /**
   * The state after `batch` and each delivery's outcome. The byte budget is
   * checked against the buffer as it was plus what this batch buffers (what
   * it releases is credited from the next batch on): never over the limit.
   */
  private plan(base: Cached, batch: Delivery[]) {
    const { maxPending, maxPendingBytes } = this.env.settings;
    let admitted = base.pendingBytes;
    const admit = (message: RocketMessage) => {
      const size = encodedSize(message);
      if (admitted + size > maxPendingBytes) return false;
      admitted += size;
      return true;
    };
    const messages = batch.map((d) => d.message);
    const { state, outcomes, changed } = sequenceBatch(base.state, messages, { maxPending, admit });
    return { state, outcomes: outcomes as MessageOutcome[], changed };
  }

  private settle(batch: Delivery[], outcomes: MessageOutcome[]): void {
    let applied = 0;
    let buffered = 0;
    let duplicate = 0;
    let overflow = 0;
    for (let i = 0; i < batch.length; i += 1) {
      const outcome = outcomes[i];
      if (outcome === MessageOutcome.Overflow) {
        batch[i]!.nak(this.env.settings.retryDelayMs);
        overflow += 1;
        continue;
      }
      batch[i]!.ack();
      if (outcome === MessageOutcome.Applied) applied += 1;
      else if (outcome === MessageOutcome.Buffered) buffered += 1;
      else duplicate += 1;
    }
    const { observer } = this.env;
    if (applied) observer.settled(MessageOutcome.Applied, applied);
    if (buffered) observer.settled(MessageOutcome.Buffered, buffered);
    if (duplicate) observer.settled(MessageOutcome.Duplicate, duplicate);
    if (overflow) observer.settled(MessageOutcome.Overflow, overflow);
  }

  private async load(): Promise<Cached> {
    const stored = await this.env.limiter.run(() => this.env.store.load(this.channel));
    const state = stored?.state ?? emptyChannelState();
    const cached = { state, revision: stored?.revision ?? 0, pendingBytes: pendingBytesOf(state) };
    this.setCache(cached);
    return cached;
  }

  private async save(state: ChannelState, revision: number): Promise<number> {
    const { limiter, store, observer } = this.env;
    return limiter.run(async () => {
      const started = this.env.now();
      let committed = false;
      try {
        const next = await store.save(this.channel, state, revision, encodeState);
        committed = true;
        return next;
      } finally {
        observer.kvWrite((this.env.now() - started) / 1000, committed);
      }
    });
  }

  private setCache(next: Cached | undefined): void {
    // A closed actor has left the registry: it must not count towards the buffered gauge again.
    if (this.status === ActorStatus.Closed) next = undefined;
    const before = this.cached?.state.pending.length ?? 0;
    const after = next?.state.pending.length ?? 0;
    this.cached = next;
    if (after !== before) this.env.observer.bufferedChanged(after - before);
    if (!next) return;
    if (after === 0) this.gapSince = undefined;
    else this.gapSince ??= this.env.now();
  }
}
