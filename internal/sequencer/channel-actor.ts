// One channel's actor: its mailbox, its cached state, the messages it holds
// in memory behind a gap, and the KV writes that turn deliveries into
// committed state.
//
// Guarantees:
// - One batch at a time, in arrival order. While a write is in flight, new
//   deliveries wait in the mailbox; the next write takes all of them at once
//   (coalescing), so a busy channel costs one KV write per round trip, not
//   one per message.
// - A delivery is acked only after a committed write holds its effect:
//   applied, or parked. A parked message (ahead of a gap) is not copied into
//   KV: it stays in the events stream on the channel's subject, and the
//   committed state's `gap.fromSeq` is at or below its stream sequence, so it
//   can always be read back. The state stays the same small size however
//   long the gap, so parking a message costs a constant-size write, and
//   nothing a gap holds stays in the partition's ack window.
// - Nothing is acked on the strength of anything but a compare-and-set
//   write: there is no acknowledgement without a state write behind it
//   except a duplicate of committed state (a number at or below lastApplied
//   stays so in every later state; one held in memory was parked by a
//   committed write, whose fromSeq every later writer keeps covering, since
//   every writer re-reads from the stored fromSeq before moving it). So a
//   stale owner, a lagging replica or a clock that stood still can cost a
//   refused write, never a message (docs/decisions/every-ack-has-a-write.md).
// - A channel whose key was never written has nothing parked anywhere
//   (nothing of it was acked), so its first write needs no read of the
//   stream. A channel whose entry was given up has its messages in the
//   stream from what the entry's delete marker records: before its next
//   write the actor asks the stream whether it holds any there, and the
//   entry it writes locates them all.
// - Each number is applied with its first stored copy (the lowest stream
//   sequence): while memory may miss parked messages (`floorSeq` finite) the
//   actor applies nothing before re-reading from floorSeq, and a copy read
//   back replaces a later one held in memory.
// - In memory the actor keeps the parked messages it saw (bounded per
//   channel and, through the registry, in total). While it saw every one
//   since the gap opened (`floorSeq` is Infinity), a gap closes from memory;
//   otherwise it re-reads the channel's subject from the lowest stream
//   sequence it may be missing, keeping the lowest MAX_PENDING_PER_CHANNEL
//   numbers, and applies in order; it reads again while that makes progress,
//   a pass after one that applied its window whole reading only the stream
//   range the earlier pass mapped for it (WindowPlan).
// - Every write names the revision it was computed from. On a conflict the
//   actor reloads from the stream's leader and recomputes the same batch
//   against the fresh state, so nothing is applied twice whoever else wrote.
// - Anything else that fails (NATS unreachable, a re-read cut short) naks the
//   batch with a delay and forgets the cache.
// - A stored entry that does not decode is quarantined, never acted on nor
//   lost: it is replaced by compare-and-set with a record keeping its bytes
//   and locating every message acked since; the channel's messages are acked
//   against that record and wait in the stream for `npm run repair`, and the
//   partition goes on.
// - Gap reviews (the registry asks, `reviewGap`): a never-launched channel's
//   entry past the deadline, or past MAX_UNLAUNCHED_CHANNELS, is given up
//   (its messages stay in the stream, found again by the next entry's
//   creation); under GAP_POLICY=skip a launched rocket gives up the numbers
//   below the lowest one waiting anywhere (memory or stream) and goes on;
//   when retention removed part of what the gap located, the numbers below
//   the lowest one still held are given up at once, recorded with reason
//   `retention`.

import { Buffer } from "node:buffer";
import type { RocketMessage } from "../domain/message.js";
import { apply } from "../domain/rocket.js";
import { lowerBound } from "../domain/sequence-batch.js";
import { MAX_SKIPPED_RECORDED, SkipReason, emptyChannelState, type ChannelState, type ParkedGap } from "../domain/sequencing.js";
import { RevisionConflictError, StateDecodeError, type ChannelStates, type Quarantine } from "./channel-states.js";
import { encodeChannelStateFrom, originalOf } from "./state-encoding.js";
import type { Limiter } from "./limiter.js";
import type { WriteLinger } from "./write-linger.js";
import { DeliveryOutcome } from "./metrics.js";

/** A message handed to an actor; the actor settles it exactly once. */
export interface Delivery {
  readonly message: RocketMessage;
  /** The message's sequence in the events stream. */
  readonly seq: number;
  ack(): void;
  nak(delayMs?: number): void;
}

/** The channel's messages as the events stream holds them (StreamParkedMessages, decoded). */
export interface ParkedMessages {
  /**
   * Every valid message of the channel stored from stream sequence `fromSeq`
   * up to what the partition's consumer has delivered when the read starts,
   * or up to `throughSeq`, in stream order. Throws when it cannot read them all.
   */
  read(
    partition: number,
    channel: string,
    fromSeq: number,
    onMessage: (seq: number, message: RocketMessage) => void,
    throughSeq?: number,
  ): Promise<void>;
  /** Messages held on the channel's subject (any, valid or not), and the stream's first sequence. */
  census(partition: number, channel: string): Promise<{ count: number; firstSeq: number }>;
  /** The lowest stream sequence at or above `fromSeq` holding a message on the channel's subject (any); Infinity when none. */
  firstSeq(partition: number, channel: string, fromSeq: number): Promise<number>;
  /** The stream's first held sequence and how long it keeps messages (0: no limit). */
  held(): Promise<{ firstSeq: number; maxAgeMs: number }>;
}

export const GapPolicy = { Wait: "wait", Skip: "skip" } as const;
export type GapPolicy = (typeof GapPolicy)[keyof typeof GapPolicy];

/** Why the registry asks an actor to review its gap. */
export const ReviewReason = {
  /** The gap is older than GAP_DEADLINE_SECONDS. */
  Deadline: "deadline",
  /** Retention removed stream sequences the gap locates. */
  Retention: "retention",
  /** More never-launched entries than MAX_UNLAUNCHED_CHANNELS: the oldest are given up early. */
  Cap: "cap",
  /** The channel is quarantined: is it repaired yet? */
  Quarantine: "quarantine",
} as const;
export type ReviewReason = (typeof ReviewReason)[keyof typeof ReviewReason];

export interface ActorSettings {
  /** Most parked messages one channel keeps in memory, and the numbers one re-read keeps. */
  maxPending: number;
  /** Delay before a nak'ed message comes back (KV failure). */
  retryDelayMs: number;
  gapPolicy: GapPolicy;
  /** A gap open this long is reviewed by the gap policy. */
  gapDeadlineMs: number;
}

/** A channel's recorded gap, as the registry tracks it. */
export interface GapInfo {
  /** Wall-clock ms the gap was recorded. */
  since: number;
  fromSeq: number | null;
  launched: boolean;
  /** The entry is a quarantine record (waiting for a repair). */
  quarantined?: boolean;
}

/** What the actor reports; the registry turns it into metrics, gauges and logs. */
export interface ActorObserver {
  settled(outcome: DeliveryOutcome, count: number): void;
  kvWrite(seconds: number, committed: boolean): void;
  revisionConflict(): void;
  /** Messages and bytes this actor holds in memory behind gaps changed by these amounts. */
  bufferedChanged(messages: number, bytes: number): void;
  failed(channel: string, err: unknown, messages: number): void;
  /** The channel's stored entry did not decode and was replaced by a quarantine record. */
  quarantined(channel: string, err: StateDecodeError, messages: number): void;
  /** Messages read back from the stream to close a gap. */
  reread(messages: number): void;
  /** Numbers of a launched rocket were given up. */
  gapSkipped(channel: string, from: number, to: number, reason: SkipReason): void;
  /** A channel that never launched was given up (its state entry removed). */
  unlaunchedExpired(channel: string, reason: ReviewReason): void;
  /** The channel's committed entry records this gap, or none (undefined). */
  gap(channel: string, partition: number, gap: GapInfo | undefined): void;
}

/** Global bounds the registry keeps over every actor. */
export interface ActorBounds {
  /**
   * May one more parked message of `bytes` be kept in memory, on top of what
   * every actor holds and has reserved? A yes reserves it until `release`
   * (the actor's committed state then counts it); a no is counted.
   */
  mayBuffer(bytes: number): boolean;
  release(messages: number, bytes: number): void;
}

export interface ActorEnvironment {
  readonly store: ChannelStates;
  readonly parked: ParkedMessages;
  readonly limiter: Limiter;
  /** Bounds how many re-reads run at once (each holds up to maxPending messages). */
  readonly rereads: Limiter;
  /** Gathers idle actors' write starts into one moment (a linger of 0 starts each at once). */
  readonly linger: WriteLinger;
  readonly settings: ActorSettings;
  readonly observer: ActorObserver;
  readonly bounds: ActorBounds;
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for the times recorded in a state). */
  wallNow(): number;
}

/**
 * A message's JSON size, kept on the message (a hidden, non-enumerable
 * property) from when it arrived: what holding it counts against
 * MAX_BUFFERED_BYTES, known without encoding it again. Only the size: the
 * state stores a waiting message by its stream sequence, not its JSON.
 */
const JSON_SIZE = Symbol("jsonSize");
/** The JSON of a message stored inline (format 1 states only), encoded once. */
const JSON_BYTES = Symbol("jsonBytes");
type WithJson = RocketMessage & { [JSON_SIZE]?: number; [JSON_BYTES]?: Uint8Array };

/** Records that `message`'s JSON is `size` bytes: text of that length parses to exactly the message. */
export function keepJsonSize(message: RocketMessage, size: number): void {
  Object.defineProperty(message, JSON_SIZE, { value: size, enumerable: false });
}

/** The message's JSON, for a state that stores it inline. */
export function messageJson(message: RocketMessage): Uint8Array {
  const kept = (message as WithJson)[JSON_BYTES];
  if (kept !== undefined) return kept;
  const bytes = Buffer.from(JSON.stringify(message), "utf8");
  Object.defineProperty(message, JSON_BYTES, { value: bytes, enumerable: false });
  return bytes;
}

/** Bytes a message counts for when held (its JSON plus a separating comma, as an inline state would store it). */
export function encodedSize(message: RocketMessage): number {
  const size = (message as WithJson)[JSON_SIZE];
  return (size ?? messageJson(message).byteLength) + 1;
}

const encodeState = (state: ChannelState) => encodeChannelStateFrom(state, messageJson);

const iso = (ms: number) => new Date(ms).toISOString();

const number = (m: RocketMessage) => m.metadata.messageNumber;

/**
 * What the actor knows about its channel: the committed state, and in
 * `waiting` every message it holds behind the gap, sorted by number: the
 * stored inline ones (format 1, numbers in `inline`) and the parked ones it
 * keeps in memory (numbers in `seqOf`, with their stream sequences).
 * `floorSeq`: parked messages with a stream sequence at or above it may be
 * missing from memory (Infinity: none are). `unresolved`: loaded without an
 * entry, so any message of the channel the stream holds may be unaccounted
 * for; the stream is asked before the first write.
 */
interface Known {
  readonly stored: ChannelState;
  readonly revision: number;
  readonly waiting: RocketMessage[];
  readonly inline: ReadonlySet<number>;
  readonly seqOf: ReadonlyMap<number, number>;
  readonly floorSeq: number;
  readonly unresolved: boolean;
  readonly bytes: number;
  /** Set when the entry is a quarantine record. */
  readonly quarantine?: Quarantine;
}

/** The next committed view, as a batch computes it. */
interface Draft {
  rocket: ChannelState["rocket"];
  lastApplied: number;
  waiting: RocketMessage[];
  inline: Set<number>;
  seqOf: Map<number, number>;
  floorSeq: number;
  unresolved: boolean;
  skipped: ChannelState["skipped"];
  /** Parked deliveries counted since the gap opened (upper bound). */
  parked: number;
  since: string | undefined;
  /** Numbers given up in this draft. */
  skippedNow: { from: number; to: number; reason: SkipReason } | undefined;
  /** Messages read back from the stream in this draft. */
  reread: number;
  /** This batch's reservation of the global buffered bounds. */
  reserved: { messages: number; bytes: number };
  /** Stream sequences of this channel's messages the draft accounts for: applied, duplicate or kept in memory. */
  seen: Set<number>;
  /** Parked messages dropped from memory so far (prune, keepWithinBounds): a re-read's window plan is void once one is. */
  forgotten: number;
}

/** Windows of maxPending numbers past a re-read's own that it maps for the passes after it. */
const PLANNED_WINDOWS = 64;

/**
 * Where a re-read found the numbers past its window: per following window
 * of maxPending numbers (up to PLANNED_WINDOWS), the lowest and highest
 * stream sequence holding one of them (undefined: none), and the lowest
 * sequence of any number past those. When a pass applied its window whole,
 * the next reads only the next window's range instead of everything from
 * floorSeq: a gap sent in descending order (each window's numbers stored
 * just before the previous window's) is read about once, not once per window.
 */
interface WindowPlan {
  /** The first number of windows[0]. */
  readonly firstNumber: number;
  readonly windows: ReadonlyArray<{ minSeq: number; maxSeq: number } | undefined>;
  readonly pastSeq: number;
  /** The draft's floorSeq and forgotten count the plan was made with: it holds only while they are unchanged. */
  readonly floorSeq: number;
  readonly forgotten: number;
}

/** The lowest sequence of any number past the plan's first window. */
function plannedBeyond(plan: WindowPlan): number {
  let beyond = plan.pastSeq;
  for (let i = 1; i < plan.windows.length; i += 1) beyond = Math.min(beyond, plan.windows[i]?.minSeq ?? Number.POSITIVE_INFINITY);
  return beyond;
}

const ActorStatus = { Open: "open", Draining: "draining", Closed: "closed" } as const;
type ActorStatus = (typeof ActorStatus)[keyof typeof ActorStatus];

export class ChannelActor {
  private mailbox: Delivery[] = [];
  private known: Known | undefined;
  private running = false;
  /** A run is waiting for the linger window to start. */
  private starting = false;
  private reviewDue: ReviewReason | undefined;
  private status: ActorStatus = ActorStatus.Open;
  private idleWaiters: Array<() => void> = [];
  /** The next load must come from the stream's leader (a write was refused, or the state was in doubt). */
  private loadLatest = false;
  lastActive: number;

  constructor(
    readonly channel: string,
    readonly partition: number,
    private readonly env: ActorEnvironment,
    /** The channel had a launched rocket when its last actor was evicted: its load goes ahead of never-launched channels' work. */
    private readonly launchedBefore = false,
  ) {
    this.lastActive = env.now();
  }

  /** The loaded state has a launched rocket. */
  get launched(): boolean {
    return this.known !== undefined && this.known.stored.rocket !== null;
  }

  get idle(): boolean {
    return !this.running && !this.starting && this.mailbox.length === 0 && this.reviewDue === undefined;
  }

  /** When the channel's current gap was recorded (wall-clock ms), or undefined when it has none or is not loaded. */
  get gapSince(): number | undefined {
    const since = this.known?.stored.gap?.since;
    return since === undefined ? undefined : Date.parse(since);
  }

  /** Messages and bytes held in memory behind the gap. */
  get buffered(): { messages: number; bytes: number } {
    return { messages: this.known?.seqOf.size ?? 0, bytes: this.known?.bytes ?? 0 };
  }

  deliver(delivery: Delivery): void {
    if (this.status === ActorStatus.Closed) {
      delivery.nak();
      return;
    }
    this.mailbox.push(delivery);
    if (this.running || this.starting) return;
    this.starting = true;
    this.env.linger.start(() => {
      this.starting = false;
      if (!this.running) void this.run();
    });
  }

  /** Asks the actor to review its gap for `reason` (the registry's sweep). */
  reviewGap(reason: ReviewReason): void {
    if (this.status !== ActorStatus.Open) return;
    this.reviewDue = reason;
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
    this.reviewDue = undefined;
    this.nakMailbox(0);
  }

  /** Drops the cached state (and its share of the buffered gauges). */
  dispose(): void {
    this.setKnown(undefined);
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
    while ((this.mailbox.length > 0 || this.reviewDue !== undefined) && this.status !== ActorStatus.Closed) {
      const batch = this.mailbox;
      this.mailbox = [];
      const review = this.reviewDue;
      this.reviewDue = undefined;
      try {
        await this.process(batch, review);
      } catch (err) {
        this.setKnown(undefined);
        this.loadLatest = true;
        this.env.observer.failed(this.channel, err, batch.length);
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

  private async process(batch: Delivery[], review: ReviewReason | undefined): Promise<void> {
    // What this batch reserved of the global buffered bounds, handed back once its outcome is known.
    const reserved = { messages: 0, bytes: 0 };
    try {
      await this.processReserving(batch, review, reserved);
    } finally {
      this.env.bounds.release(reserved.messages, reserved.bytes);
    }
  }

  private async processReserving(batch: Delivery[], review: ReviewReason | undefined, reserved: { messages: number; bytes: number }): Promise<void> {
    for (;;) {
      const base = this.known ?? (await this.load(batch));
      if (base === undefined) return;
      if (base.quarantine !== undefined) {
        if (await this.parkQuarantined(base, batch)) return;
        continue;
      }
      if (review !== undefined && base.revision !== 0 && base.stored.rocket === null && base.stored.gap !== undefined) {
        // Never launched: given up at its deadline or past the cap (its messages stay in the stream).
        if (review === ReviewReason.Cap || (review === ReviewReason.Deadline && this.isOverdue(base.stored))) {
          await this.removeUnlaunched(base, review);
          if (batch.length === 0) return;
          continue;
        }
      }
      this.env.bounds.release(reserved.messages, reserved.bytes);
      reserved.messages = 0;
      reserved.bytes = 0;
      const { draft, outcomes, contiguous } = this.plan(base, batch, reserved);
      if (draft.unresolved) await this.resolve(draft);
      await this.catchUp(draft, contiguous);
      if (review !== undefined) await this.review(base, draft, review);
      for (let i = 0; i < batch.length; i += 1) {
        if (outcomes[i] === DeliveryOutcome.Buffered && number(batch[i]!.message) <= draft.lastApplied) outcomes[i] = DeliveryOutcome.Applied;
      }
      if (!this.needsWrite(base, draft, outcomes)) {
        this.commitKnown(base, draft, base.revision);
        // A review that changed nothing still tells the registry what the entry records (it may have been tracked from an old scan).
        if (review !== undefined) this.reportGap(base.stored);
        this.settle(batch, outcomes);
        return;
      }
      const state = this.stateOf(draft, base);
      let revision: number;
      try {
        revision = await this.save(state, base.revision);
      } catch (err) {
        if (!(err instanceof RevisionConflictError) || this.status === ActorStatus.Closed) throw err;
        // Someone else wrote: recompute this batch against what they wrote, read from the leader.
        this.env.observer.revisionConflict();
        this.setKnown(undefined);
        this.loadLatest = true;
        continue;
      }
      this.commitKnown(base, draft, revision, state);
      if (draft.reread > 0) this.env.observer.reread(draft.reread);
      if (draft.skippedNow) this.env.observer.gapSkipped(this.channel, draft.skippedNow.from, draft.skippedNow.to, draft.skippedNow.reason);
      this.settle(batch, outcomes);
      return;
    }
  }

  private isOverdue(state: ChannelState): boolean {
    const since = state.gap?.since;
    return since !== undefined && this.env.wallNow() - Date.parse(since) >= this.env.settings.gapDeadlineMs;
  }

  /** Removes a never-launched channel's entry; a conflict means someone wrote meanwhile (the caller reloads). */
  private async removeUnlaunched(base: Known, reason: ReviewReason): Promise<void> {
    // Its marker says where its messages start (inline ones, an older format, at unknown sequences: anywhere).
    const parkedFrom = base.stored.pending.length > 0 ? 1 : (base.stored.gap?.fromSeq ?? undefined);
    try {
      await this.env.limiter.run(() => this.env.store.remove(this.channel, base.revision, parkedFrom ?? 1));
    } catch (err) {
      if (!(err instanceof RevisionConflictError)) throw err;
      this.env.observer.revisionConflict();
      this.setKnown(undefined);
      this.loadLatest = true;
      return;
    }
    this.env.observer.unlaunchedExpired(this.channel, reason);
    this.env.observer.gap(this.channel, this.partition, undefined);
    this.setKnown(undefined);
  }

  /**
   * The channel is quarantined: its messages are acked once a write of the
   * quarantine record (at the revision read from the leader) locates them:
   * a write per batch, so a repair that read the record earlier is refused
   * and reads again. True when settled; false to reload.
   */
  private async parkQuarantined(base: Known, batch: Delivery[]): Promise<boolean> {
    const q = base.quarantine!;
    const report = (fromSeq: number) => this.env.observer.gap(this.channel, this.partition, { since: Date.parse(q.since), fromSeq, launched: false, quarantined: true });
    if (batch.length === 0) {
      this.setKnown(undefined);
      this.loadLatest = true;
      report(q.fromSeq);
      return true;
    }
    let lowest = q.fromSeq;
    for (const d of batch) lowest = Math.min(lowest, d.seq);
    try {
      await this.env.limiter.run(() => this.env.store.quarantine(this.channel, { ...q, fromSeq: lowest }, base.revision));
    } catch (err) {
      if (!(err instanceof RevisionConflictError)) throw err;
      this.setKnown(undefined);
      this.loadLatest = true;
      return false;
    }
    // Not cached: every batch of a quarantined channel checks the leader's entry (a repair may have replaced it).
    this.setKnown(undefined);
    this.loadLatest = true;
    report(lowest);
    this.settle(
      batch,
      batch.map(() => DeliveryOutcome.Buffered),
    );
    return true;
  }

  /**
   * Quarantines an entry that does not decode: replaces it, by compare-and-set
   * at the revision it was read at, with a record that keeps its bytes and
   * locates this batch's messages. Returns the quarantine as loaded.
   */
  private async quarantine(err: StateDecodeError, batch: Delivery[]): Promise<Known | undefined> {
    if (err.revision === undefined) throw err;
    let lowest = Number.POSITIVE_INFINITY;
    for (const d of batch) lowest = Math.min(lowest, d.seq);
    if (!Number.isFinite(lowest)) return undefined;
    const record: Quarantine = { fromSeq: lowest, since: iso(this.env.wallNow()), problems: [...err.problems], original: originalOf(err.raw) };
    const revision = await this.env.limiter.run(() => this.env.store.quarantine(this.channel, record, err.revision!));
    this.env.observer.quarantined(this.channel, err, batch.length);
    this.env.observer.gap(this.channel, this.partition, { since: Date.parse(record.since), fromSeq: record.fromSeq, launched: false, quarantined: true });
    return { ...this.emptyKnown(revision), quarantine: record };
  }

  private emptyKnown(revision: number): Known {
    return { stored: emptyChannelState(), revision, waiting: [], inline: new Set(), seqOf: new Map(), floorSeq: Number.POSITIVE_INFINITY, unresolved: false, bytes: 0 };
  }

  /**
   * Sequences the batch against what is known. A message ahead of the gap is
   * kept in memory while this channel and the registry have room (buffered
   * either way: it is parked by the write that follows). While memory is
   * complete (floorSeq Infinity) what becomes contiguous is applied here;
   * otherwise `contiguous` says the stream must be read first, since a
   * parked copy with a lower sequence may hold a number's first content.
   */
  private plan(base: Known, batch: Delivery[], reserved: { messages: number; bytes: number }): { draft: Draft; outcomes: DeliveryOutcome[]; contiguous: boolean } {
    const { maxPending } = this.env.settings;
    const draft: Draft = {
      rocket: base.stored.rocket,
      lastApplied: base.stored.lastApplied,
      waiting: base.waiting.slice(),
      inline: new Set(base.inline),
      seqOf: new Map(base.seqOf),
      floorSeq: base.floorSeq,
      unresolved: base.unresolved,
      skipped: base.stored.skipped,
      parked: base.stored.gap?.parked ?? 0,
      since: base.stored.gap?.since,
      skippedNow: undefined,
      reread: 0,
      reserved,
      seen: new Set(base.seqOf.values()),
      forgotten: 0,
    };
    const outcomes: DeliveryOutcome[] = [];
    // While memory holds every parked message, what becomes contiguous is applied at once.
    const complete = draft.floorSeq === Number.POSITIVE_INFINITY && !draft.unresolved;
    let contiguous = false;
    for (const d of batch) {
      const n = number(d.message);
      if (n <= draft.lastApplied || draft.inline.has(n)) {
        outcomes.push(DeliveryOutcome.Duplicate);
        continue;
      }
      const keptSeq = draft.seqOf.get(n);
      if (keptSeq !== undefined) {
        if (d.seq < keptSeq) {
          // A lower sequence holds the first copy: it replaces the one held.
          draft.seqOf.set(n, d.seq);
          draft.waiting[lowerBound(draft.waiting, n)] = d.message;
          draft.seen.add(d.seq);
          outcomes.push(DeliveryOutcome.Buffered);
        } else {
          outcomes.push(DeliveryOutcome.Duplicate);
        }
        continue;
      }
      draft.seen.add(d.seq);
      if (n === draft.lastApplied + 1) {
        contiguous = true;
        if (complete) {
          draft.rocket = apply(draft.rocket, d.message);
          draft.lastApplied = n;
          applyReady(draft);
          outcomes.push(DeliveryOutcome.Applied);
          continue;
        }
        // Next in line, applied by this batch once the stream was read (or replaced by a lower copy): held without a reservation.
        draft.seqOf.set(n, d.seq);
        draft.waiting.splice(lowerBound(draft.waiting, n), 0, d.message);
        outcomes.push(DeliveryOutcome.Buffered);
        continue;
      }
      draft.parked += 1;
      const size = encodedSize(d.message);
      if (draft.seqOf.size < maxPending && this.env.bounds.mayBuffer(size)) {
        reserved.messages += 1;
        reserved.bytes += size;
        draft.seqOf.set(n, d.seq);
        draft.waiting.splice(lowerBound(draft.waiting, n), 0, d.message);
      } else {
        draft.seen.delete(d.seq);
        draft.floorSeq = Math.min(draft.floorSeq, d.seq);
      }
      outcomes.push(DeliveryOutcome.Buffered);
    }
    prune(draft, maxPending);
    return { draft, outcomes, contiguous };
  }

  /**
   * A channel whose entry was removed (given up): the stream holds its
   * messages from the marker's record on, located by no entry now. One census
   * tells whether the draft accounts for all of the channel's messages;
   * otherwise they are read back from the first one at or after the record.
   */
  private async resolve(draft: Draft): Promise<void> {
    draft.unresolved = false;
    if (draft.seen.size > 0) {
      const { count, firstSeq } = await this.env.limiter.run(() => this.env.parked.census(this.partition, this.channel));
      let lowest = Number.POSITIVE_INFINITY;
      for (const seq of draft.seen) lowest = Math.min(lowest, seq);
      // Nothing of a channel without an entry is ever removed from the middle of the stream, so an equal count is the same messages.
      if (count <= draft.seen.size && lowest >= firstSeq) {
        applyReady(draft);
        prune(draft, this.env.settings.maxPending);
        return;
      }
    }
    // Where, at or after the removed entry's record, the channel's first message lies (Infinity: none there).
    const first = await this.env.limiter.run(() => this.env.parked.firstSeq(this.partition, this.channel, draft.floorSeq));
    draft.floorSeq = first;
    if (draft.floorSeq === Number.POSITIVE_INFINITY) applyReady(draft);
    // Some may lie anywhere: the gap stays recorded until a read has seen them.
    else draft.parked = Math.max(draft.parked, draft.seqOf.size + 1);
  }

  /**
   * When memory may miss parked messages and the batch could apply
   * something, re-reads them from the stream and applies what they make
   * contiguous, again while that makes progress.
   */
  private async catchUp(draft: Draft, contiguous: boolean): Promise<void> {
    if (draft.floorSeq === Number.POSITIVE_INFINITY || !contiguous) return;
    let plan: WindowPlan | undefined;
    while (draft.floorSeq !== Number.POSITIVE_INFINITY) {
      const before = draft.lastApplied;
      plan = await this.reread(draft, plan);
      if (draft.lastApplied === before) return;
    }
  }

  /**
   * Reads the parked messages from draft.floorSeq into the draft (the lowest
   * maxPending numbers past lastApplied, each as its lowest-sequence copy),
   * then applies. With a usable `plan` from the pass before, reads only the
   * stream range that plan found this window's numbers in. Returns the plan
   * for the next pass, if it can have one.
   */
  private async reread(draft: Draft, plan?: WindowPlan): Promise<WindowPlan | undefined> {
    const { maxPending } = this.env.settings;
    const windowStart = draft.lastApplied;
    const planned = plan !== undefined && plan.firstNumber === windowStart + 1 && plan.floorSeq === draft.floorSeq && plan.forgotten === draft.forgotten;
    const range = planned ? plan.windows[0] : { minSeq: draft.floorSeq, maxSeq: Number.POSITIVE_INFINITY };
    const found = new Map<number, { message: RocketMessage; seq: number }>();
    // Where the numbers past this window lie, for the passes after this one.
    const next: Array<{ minSeq: number; maxSeq: number } | undefined> = [];
    let pastSeq = Number.POSITIVE_INFINITY;
    let beyond = planned ? plannedBeyond(plan) : Number.POSITIVE_INFINITY;
    let count = 0;
    const onMessage = (seq: number, message: RocketMessage) => {
      count += 1;
      const n = number(message);
      if (n <= windowStart || draft.inline.has(n)) return;
      const had = found.get(n)?.seq ?? draft.seqOf.get(n);
      if (had !== undefined && had <= seq) return;
      if (n > windowStart + maxPending) {
        // A planned pass found these in the pass before: they are in its plan already.
        if (planned) return;
        beyond = Math.min(beyond, seq);
        const k = Math.floor((n - windowStart - 1) / maxPending) - 1;
        if (k >= PLANNED_WINDOWS) {
          pastSeq = Math.min(pastSeq, seq);
        } else {
          const w = next[k];
          next[k] = w === undefined ? { minSeq: seq, maxSeq: seq } : { minSeq: Math.min(w.minSeq, seq), maxSeq: Math.max(w.maxSeq, seq) };
        }
        return;
      }
      found.set(n, { message, seq });
    };
    if (range !== undefined) {
      await this.env.rereads.run(() => this.env.parked.read(this.partition, this.channel, range.minSeq, onMessage, range.maxSeq));
    }
    draft.reread += count;
    const forgotten = draft.forgotten;
    const merged = new Map<number, RocketMessage>();
    for (const m of draft.waiting) merged.set(number(m), m);
    const fresh: number[] = [];
    for (const [n, { message, seq }] of found) {
      if (!draft.seqOf.has(n)) fresh.push(n);
      // What the stream holds at a lower sequence is the first copy: it replaces the one in memory.
      merged.set(n, message);
      draft.seqOf.set(n, seq);
      draft.seen.add(seq);
    }
    draft.waiting = [...merged.values()].sort((a, b) => number(a) - number(b));
    draft.floorSeq = beyond;
    // Some wait past the window: the gap must stay recorded even if nothing was counted parked yet (a launch's first read).
    if (beyond !== Number.POSITIVE_INFINITY) draft.parked = Math.max(draft.parked, draft.seqOf.size + 1);
    // Only the window was compared with the stream: a number past it held in memory may have a lower copy there.
    applyReady(draft, beyond === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : windowStart + maxPending);
    prune(draft, this.env.settings.maxPending);
    this.keepWithinBounds(draft, fresh, merged);
    // A re-read knows exactly what waits within its window: the count is exact again unless some lie beyond it.
    if (draft.floorSeq === Number.POSITIVE_INFINITY) draft.parked = draft.seqOf.size;
    // The next window starts where this one ended only if this one was applied whole and nothing was forgotten meanwhile.
    if (draft.lastApplied !== windowStart + maxPending || draft.forgotten !== forgotten || draft.floorSeq !== beyond) return undefined;
    const windows = planned ? plan.windows.slice(1) : next;
    if (windows.length === 0) return undefined;
    return { firstNumber: draft.lastApplied + 1, windows, pastSeq: planned ? plan.pastSeq : pastSeq, floorSeq: draft.floorSeq, forgotten };
  }

  /**
   * What a re-read brought into memory and did not apply stays only as far
   * as the global buffered bounds allow (lowest numbers first); the rest is
   * forgotten again, floorSeq covering it. The read itself needed the
   * window to find the next number; keeping it is what the bounds limit.
   */
  private keepWithinBounds(draft: Draft, fresh: number[], messages: ReadonlyMap<number, RocketMessage>): void {
    let refused = false;
    for (const n of fresh.sort((a, b) => a - b)) {
      const seq = draft.seqOf.get(n);
      if (seq === undefined) continue;
      const size = encodedSize(messages.get(n)!);
      if (!refused && this.env.bounds.mayBuffer(size)) {
        draft.reserved.messages += 1;
        draft.reserved.bytes += size;
        continue;
      }
      refused = true;
      draft.floorSeq = Math.min(draft.floorSeq, seq);
      draft.seqOf.delete(n);
      draft.forgotten += 1;
    }
    if (refused) {
      prune(draft, this.env.settings.maxPending);
      draft.parked = Math.max(draft.parked, draft.seqOf.size + 1);
    }
  }

  /**
   * A launched rocket's gap under review. Retention having removed part of
   * what the gap locates gives up the numbers below the lowest one still
   * held (reason retention), whatever the policy: they cannot come back.
   * Under GAP_POLICY=skip past the deadline, the numbers below the lowest
   * one waiting anywhere are given up (reason deadline). Either way the
   * lowest waiting number is found in memory and in the stream, so no
   * message that arrived is given up, and it is applied with its first copy.
   */
  private async review(base: Known, draft: Draft, reason: ReviewReason): Promise<void> {
    const stored = base.stored.gap;
    if (stored === undefined) return;
    let skipReason: SkipReason | undefined;
    const { firstSeq } = await this.env.limiter.run(() => this.env.parked.held());
    if (stored.fromSeq !== null && firstSeq > stored.fromSeq) skipReason = SkipReason.Retention;
    else if (reason === ReviewReason.Deadline && this.env.settings.gapPolicy === GapPolicy.Skip && this.isOverdue(base.stored)) skipReason = SkipReason.Deadline;
    if (skipReason === undefined) return;
    if (draft.rocket === null) {
      // Nothing before a launch can be given up; what retention removed is simply no longer located.
      if (skipReason === SkipReason.Retention && draft.floorSeq !== Number.POSITIVE_INFINITY) draft.floorSeq = Math.max(draft.floorSeq, firstSeq);
      return;
    }
    // The lowest waiting number, as its lowest-sequence copy, from memory and from the stream.
    let lowest: { n: number; seq: number; message: RocketMessage } | undefined;
    const consider = (n: number, seq: number, message: RocketMessage) => {
      if (n <= draft.lastApplied) return;
      if (!lowest || n < lowest.n || (n === lowest.n && seq < lowest.seq)) lowest = { n, seq, message };
    };
    for (const m of draft.waiting) consider(number(m), draft.inline.has(number(m)) ? 0 : (draft.seqOf.get(number(m)) ?? 0), m);
    if (draft.floorSeq !== Number.POSITIVE_INFINITY) {
      let count = 0;
      await this.env.rereads.run(() =>
        this.env.parked.read(this.partition, this.channel, draft.floorSeq, (seq, message) => {
          count += 1;
          consider(number(message), seq, message);
        }),
      );
      draft.reread += count;
    }
    if (lowest === undefined) {
      // Nothing waits anywhere any more (retention removed it all): the gap locates nothing.
      draft.floorSeq = Number.POSITIVE_INFINITY;
      draft.parked = draft.seqOf.size;
      return;
    }
    if (lowest.n > draft.lastApplied + 1) {
      const range = { from: draft.lastApplied + 1, to: lowest.n - 1 };
      draft.skipped = [...(draft.skipped ?? []), { ...range, at: iso(this.env.wallNow()), reason: skipReason }].slice(-MAX_SKIPPED_RECORDED);
      draft.skippedNow = { ...range, reason: skipReason };
      draft.rocket = apply(draft.rocket, lowest.message);
      draft.lastApplied = lowest.n;
      // The gap that was given up is closed; a gap that remains is a new one.
      draft.since = undefined;
    }
    // What the stream no longer holds cannot be read back: the gap starts where the stream does now.
    if (draft.floorSeq !== Number.POSITIVE_INFINITY) draft.floorSeq = Math.max(draft.floorSeq, firstSeq);
    prune(draft, this.env.settings.maxPending);
    // From memory only when it holds every parked message; otherwise the re-read brings lower copies in first.
    if (draft.floorSeq === Number.POSITIVE_INFINITY) {
      applyReady(draft);
      prune(draft, this.env.settings.maxPending);
    }
    if (draft.floorSeq !== Number.POSITIVE_INFINITY) await this.catchUp(draft, true);
  }

  private stateOf(draft: Draft, base: Known): ChannelState {
    const state: ChannelState = {
      rocket: draft.rocket,
      lastApplied: draft.lastApplied,
      pending: draft.waiting.filter((m) => draft.inline.has(number(m))),
    };
    const gap = this.gapOf(draft, base);
    if (gap !== undefined) state.gap = gap;
    if (draft.skipped !== undefined && draft.skipped.length > 0) state.skipped = draft.skipped;
    return state;
  }

  private gapOf(draft: Draft, base: Known): ParkedGap | undefined {
    let fromSeq = draft.floorSeq;
    for (const seq of draft.seqOf.values()) fromSeq = Math.min(fromSeq, seq);
    const parkedInStream = fromSeq !== Number.POSITIVE_INFINITY && (draft.parked > 0 || draft.seqOf.size > 0);
    if (!parkedInStream && draft.waiting.length === 0) return undefined;
    const since = draft.since ?? (base.stored.gap === undefined || draft.skippedNow ? iso(this.env.wallNow()) : base.stored.gap.since);
    return { fromSeq: parkedInStream ? fromSeq : null, parked: Math.max(draft.parked, draft.seqOf.size), since };
  }

  /** A write is needed when the state changed, or a message was parked (its write is what makes the ack safe). */
  private needsWrite(base: Known, draft: Draft, outcomes: DeliveryOutcome[]): boolean {
    if (outcomes.some((o) => o === DeliveryOutcome.Applied || o === DeliveryOutcome.Buffered)) return true;
    if (draft.lastApplied !== base.stored.lastApplied || draft.skippedNow !== undefined) return true;
    const before = base.stored.gap;
    const after = this.gapOf(draft, base);
    return before?.fromSeq !== after?.fromSeq || (before === undefined) !== (after === undefined);
  }

  private settle(batch: Delivery[], outcomes: DeliveryOutcome[]): void {
    let applied = 0;
    let buffered = 0;
    let duplicate = 0;
    for (let i = 0; i < batch.length; i += 1) {
      const outcome = outcomes[i];
      batch[i]!.ack();
      if (outcome === DeliveryOutcome.Applied) applied += 1;
      else if (outcome === DeliveryOutcome.Buffered) buffered += 1;
      else duplicate += 1;
    }
    const { observer } = this.env;
    if (applied) observer.settled(DeliveryOutcome.Applied, applied);
    if (buffered) observer.settled(DeliveryOutcome.Buffered, buffered);
    if (duplicate) observer.settled(DeliveryOutcome.Duplicate, duplicate);
  }

  /** The channel's entry as known; undefined when the batch was settled while loading (a quarantine with nothing to park). */
  private async load(batch: Delivery[]): Promise<Known | undefined> {
    const latest = this.loadLatest;
    this.loadLatest = false;
    let stored;
    try {
      stored = await this.env.limiter.run(() => this.env.store.load(this.channel, { latest }), this.launchedBefore);
    } catch (err) {
      if (!(err instanceof StateDecodeError)) throw err;
      // Only an entry the leader holds is quarantined; a replica's may be one the leader already replaced.
      if (!latest) {
        this.loadLatest = true;
        return this.load(batch);
      }
      const known = await this.quarantine(err, batch);
      if (known === undefined) return undefined;
      return known;
    }
    if (stored?.quarantine !== undefined) {
      if (!latest) {
        this.loadLatest = true;
        return this.load(batch);
      }
      return { ...this.emptyKnown(stored.revision), quarantine: stored.quarantine };
    }
    const state = stored?.state ?? emptyChannelState();
    // Never written: nothing of the channel was ever acked (every ack has a write behind it), so nothing of it is
    // parked anywhere: what the stream holds of it is still on its way here. Removed: its messages lie from its marker's
    // record on (or anywhere, when it has none); the stream is asked before the first write.
    const removed = stored?.deleted === true;
    const known: Known = {
      stored: state,
      revision: stored?.revision ?? 0,
      waiting: state.pending,
      inline: new Set(state.pending.map((m) => number(m))),
      seqOf: new Map(),
      floorSeq: removed ? (stored?.parkedFrom ?? 1) : (state.gap?.fromSeq ?? Number.POSITIVE_INFINITY),
      unresolved: removed,
      bytes: 0,
    };
    this.setKnown(known);
    return known;
  }

  private commitKnown(base: Known, draft: Draft, revision: number, state?: ChannelState): void {
    const stored = state ?? base.stored;
    let bytes = 0;
    for (const m of draft.waiting) if (draft.seqOf.has(number(m))) bytes += encodedSize(m);
    this.setKnown({
      stored,
      revision,
      waiting: draft.waiting,
      inline: draft.inline,
      seqOf: draft.seqOf,
      floorSeq: draft.floorSeq,
      unresolved: draft.unresolved,
      bytes,
    });
    if (state !== undefined) this.reportGap(state);
  }

  private reportGap(state: ChannelState): void {
    const gap = state.gap;
    this.env.observer.gap(this.channel, this.partition, gap === undefined ? undefined : { since: Date.parse(gap.since), fromSeq: gap.fromSeq, launched: state.rocket !== null });
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
    }, state.rocket !== null);
  }

  private setKnown(next: Known | undefined): void {
    // A closed actor has left the registry: it must not count towards the buffered gauges again.
    if (this.status === ActorStatus.Closed) next = undefined;
    const before = this.buffered;
    this.known = next;
    const after = this.buffered;
    if (after.messages !== before.messages || after.bytes !== before.bytes) {
      this.env.observer.bufferedChanged(after.messages - before.messages, after.bytes - before.bytes);
    }
  }
}

/** Applies, from memory, every waiting message that is next in line (up to number `through`). */
function applyReady(draft: Draft, through = Number.POSITIVE_INFINITY): void {
  let i = 0;
  while (i < draft.waiting.length && number(draft.waiting[i]!) === draft.lastApplied + 1 && draft.lastApplied < through) {
    draft.rocket = apply(draft.rocket, draft.waiting[i]!);
    draft.lastApplied += 1;
    i += 1;
  }
  if (i > 0) draft.waiting = draft.waiting.slice(i);
}

/**
 * Keeps the draft's bookkeeping to what still waits: applied numbers leave
 * `inline` and `seqOf`. Past maxPending parked messages in memory, the
 * highest numbers are forgotten (floorSeq drops to cover them: they are
 * re-read when needed).
 */
function prune(draft: Draft, maxPending: number): void {
  for (const n of draft.inline) if (n <= draft.lastApplied) draft.inline.delete(n);
  for (const n of draft.seqOf.keys()) if (n <= draft.lastApplied) draft.seqOf.delete(n);
  if (draft.seqOf.size > maxPending) {
    const numbers = [...draft.seqOf.keys()].sort((a, b) => a - b);
    for (const n of numbers.slice(maxPending)) {
      draft.floorSeq = Math.min(draft.floorSeq, draft.seqOf.get(n)!);
      draft.seqOf.delete(n);
      draft.forgotten += 1;
    }
    // Forgotten, not gone: the gap stays recorded.
    draft.parked = Math.max(draft.parked, maxPending + 1);
  }
  // Messages whose number is in neither set are not kept: what waits in memory is what the state can locate.
  draft.waiting = draft.waiting.filter((m) => draft.inline.has(number(m)) || draft.seqOf.has(number(m)));
}
