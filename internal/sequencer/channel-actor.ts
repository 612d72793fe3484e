// One channel's actor: its mailbox, its cached state, the messages it holds
// in memory behind a gap, and the KV writes that turn deliveries into
// committed state.
//
// Guarantees:
// - One batch at a time, in arrival order. While a write is in flight, new
//   deliveries wait in the mailbox; the next write takes all of them at once
//   (coalescing), so a busy channel costs one KV write per round trip, not
//   one per message.
// - A delivery is acked only after the KV write that holds its effect
//   committed: applied, or parked. A parked message (ahead of a gap) is not
//   copied into KV: it stays in the events stream on the channel's subject,
//   and the committed state's `gap.fromSeq` is at or below its stream
//   sequence, so it can always be read back. The state stays the same small
//   size however long the gap, so parking a message costs a constant-size
//   write, and nothing a gap holds stays in the partition's ack window.
// - A duplicate of committed state is acked without a write: once a number
//   is at or below lastApplied it stays so in every later state, and a
//   number held in memory was parked by a committed write (its first copy
//   stays locatable whoever writes next, since every writer re-reads from
//   the stored fromSeq before moving it).
// - In memory the actor keeps the parked messages it saw (bounded per
//   channel and, through the registry, in total). While it saw every one
//   since the gap opened (`floorSeq` is Infinity), a gap closes from memory;
//   otherwise (loaded after a restart or a takeover, or a message it could
//   not keep) it re-reads the channel's subject from the lowest stream
//   sequence it may be missing, keeping the lowest MAX_PENDING_PER_CHANNEL
//   numbers, and applies in order; it reads again while that makes progress,
//   a pass after one that applied its window whole reading only the stream
//   range the earlier pass mapped for it (WindowPlan).
// - A channel loaded without a stored state may still have messages parked
//   in the stream only (past MAX_UNLAUNCHED_CHANNELS, or left there when its
//   entry was given up); StreamOnlyParks says from which stream sequence
//   (the stream's start, unless nothing was delivered before this instance
//   took the partition), and its launch re-reads from there.
// - Nothing is acked without a committed write behind it (a message parked
//   in the stream only, an unlaunched entry given up) unless the partition's
//   lease is surely still ours (`leaseFresh`); otherwise the batch is nak'ed
//   for whoever owns the partition now. A compare-and-set fences a stale
//   owner's writes; this fences what it would do without one.
// - Every write names the revision it was computed from. On a conflict the
//   actor reloads and recomputes the same batch against the fresh state, so
//   nothing is applied twice whoever else wrote (a stale owner, a second
//   instance during a rebalance).
// - Anything else that fails (NATS unreachable, a re-read cut short,
//   unreadable state) naks the batch with a delay and forgets the cache.
// - A stored state that fails validation (StateDecodeError) is never acted
//   on, nor overwritten: its messages are nak'ed with a delay and it is
//   reported apart from outages (unreadableState).
// - A gap older than the deadline is reviewed when the registry asks
//   (reviewGap): under GAP_POLICY=skip a launched rocket gives up the missing
//   numbers (recorded in `skipped`) and goes on; a channel that never
//   launched loses its state entry under either policy (its messages stay in
//   the stream and a later launch still finds them).

import { Buffer } from "node:buffer";
import type { RocketMessage } from "../domain/message.js";
import { sequenceBatch } from "../domain/sequence-batch.js";
import { skipGap } from "../domain/gap-skip.js";
import { emptyChannelState, SequenceOutcome, type ChannelState, type ParkedGap } from "../domain/sequencing.js";
import { RevisionConflictError, StateDecodeError, type ChannelStates } from "./channel-states.js";
import { encodeChannelStateFrom } from "./state-encoding.js";
import type { Limiter } from "./limiter.js";
import type { WriteLinger } from "./write-linger.js";
import type { StreamOnlyParks } from "./stream-only-parks.js";
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
   * up to the stream's end when the read starts, or up to `throughSeq` (one
   * the partition's consumer delivered already), in stream order. Throws
   * when it cannot read them all.
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
}

export const GapPolicy = { Wait: "wait", Skip: "skip" } as const;
export type GapPolicy = (typeof GapPolicy)[keyof typeof GapPolicy];

export interface ActorSettings {
  /** Most parked messages one channel keeps in memory, and the numbers one re-read keeps. */
  maxPending: number;
  /** Delay before a nak'ed message comes back (KV failure, unreadable state). */
  retryDelayMs: number;
  gapPolicy: GapPolicy;
  /** A gap open this long is reviewed by the gap policy. */
  gapDeadlineMs: number;
}

/** What the actor reports; the registry turns it into metrics, gauges and logs. */
export interface ActorObserver {
  settled(outcome: DeliveryOutcome, count: number): void;
  kvWrite(seconds: number, committed: boolean): void;
  revisionConflict(): void;
  /** Messages and bytes this actor holds in memory behind gaps changed by these amounts. */
  bufferedChanged(messages: number, bytes: number): void;
  failed(channel: string, err: unknown, messages: number): void;
  /** The channel's stored state is invalid: its messages wait (nak'ed) until an operator repairs it. */
  unreadableState(channel: string, err: StateDecodeError, messages: number): void;
  /** Messages read back from the stream to close a gap. */
  reread(messages: number): void;
  /** The gap policy gave up numbers of a launched rocket. */
  gapSkipped(channel: string, from: number, to: number): void;
  /** A channel that never launched was given up at the deadline (its state entry removed). */
  unlaunchedExpired(channel: string): void;
  /** The channel has a stored state without a launched rocket since `since` (wall-clock ms), or no longer (undefined). */
  unlaunched(channel: string, partition: number, since: number | undefined): void;
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
  /**
   * May this channel create a state entry for messages ahead of its launch?
   * A yes reserves its place (so concurrent channels cannot all pass); a no
   * is counted.
   */
  mayRecordUnlaunched(channel: string, partition: number): boolean;
}

export interface ActorEnvironment {
  readonly store: ChannelStates;
  readonly parked: ParkedMessages;
  readonly limiter: Limiter;
  /** Bounds how many re-reads run at once (each holds up to maxPending messages). */
  readonly rereads: Limiter;
  /** Gathers idle actors' write starts into one moment (a linger of 0 starts each at once). */
  readonly linger: WriteLinger;
  /** Where channels may have messages parked in the stream that no committed state locates. */
  readonly streamOnly: StreamOnlyParks;
  /**
   * True while this instance's lease on the partition cannot have moved to
   * another instance yet (renewed well within its TTL, by the local clock).
   */
  leaseFresh(partition: number): boolean;
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

/**
 * What became of a delivery, from what sequencing did with its message. One
 * not kept in memory (overflow) is parked in the stream by the write that
 * follows, like one kept: buffered either way.
 */
const DELIVERY_OUTCOME: Record<SequenceOutcome, DeliveryOutcome> = {
  [SequenceOutcome.Applied]: DeliveryOutcome.Applied,
  [SequenceOutcome.Buffered]: DeliveryOutcome.Buffered,
  [SequenceOutcome.Duplicate]: DeliveryOutcome.Duplicate,
  [SequenceOutcome.Overflow]: DeliveryOutcome.Buffered,
};

/**
 * What the actor knows about its channel: the committed state, and in
 * `waiting` every message it holds behind the gap, sorted by number: the
 * stored inline ones (format 1, numbers in `inline`) and the parked ones it
 * keeps in memory (numbers in `seqOf`, with their stream sequences).
 * `floorSeq`: parked messages with a stream sequence at or above it may be
 * missing from memory (Infinity: none are). `earlier`: a channel loaded
 * without an entry may also miss messages the partition's earlier owners
 * parked in the stream only, at sequences 1 to `earlier` (0: none).
 */
interface Known {
  readonly stored: ChannelState;
  readonly revision: number;
  readonly waiting: RocketMessage[];
  readonly inline: ReadonlySet<number>;
  readonly seqOf: ReadonlyMap<number, number>;
  readonly floorSeq: number;
  readonly earlier: number;
  readonly bytes: number;
  /**
   * Loaded with messages this instance parked in the stream only that the
   * stored state does not locate (a stale former owner wrote it after we
   * found none): they are read back at the next batch, not only once one applies.
   */
  readonly unlocated: boolean;
}

/** The next committed view, as a batch computes it. */
interface Draft {
  rocket: ChannelState["rocket"];
  lastApplied: number;
  waiting: RocketMessage[];
  inline: Set<number>;
  seqOf: Map<number, number>;
  floorSeq: number;
  /** As Known's: 1 to `earlier` still to be read back (0: done, or nothing there). */
  earlier: number;
  skipped: ChannelState["skipped"];
  /** Parked deliveries counted since the gap opened (upper bound). */
  parked: number;
  since: string | undefined;
  /** The gap policy gave up numbers in this draft. */
  skippedNow: { from: number; to: number } | undefined;
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

/**
 * The partition's lease may have moved: what the actor was about to settle
 * without a committed write (parking in the stream only) is handed back.
 */
export class LeaseNotFreshError extends Error {
  override name = "LeaseNotFreshError";
  constructor(readonly partition: number) {
    super(`partition ${partition}'s lease may have moved to another instance: messages nak'ed rather than acked without a state write`);
  }
}

const ActorStatus = { Open: "open", Draining: "draining", Closed: "closed" } as const;
type ActorStatus = (typeof ActorStatus)[keyof typeof ActorStatus];

export class ChannelActor {
  private mailbox: Delivery[] = [];
  private known: Known | undefined;
  private running = false;
  /** A run is waiting for the linger window to start. */
  private starting = false;
  private reviewDue = false;
  private status: ActorStatus = ActorStatus.Open;
  private idleWaiters: Array<() => void> = [];
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
    return !this.running && !this.starting && this.mailbox.length === 0 && !this.reviewDue;
  }

  /** When the channel's current gap was recorded (wall-clock ms), or undefined when it has none or is not loaded. */
  get gapSince(): number | undefined {
    const since = this.known?.stored.gap?.since;
    return since === undefined ? undefined : Date.parse(since);
  }

  /** True when the channel has a stored state with a gap and no launched rocket. */
  get unlaunched(): boolean {
    return this.known !== undefined && this.known.revision !== 0 && this.known.stored.rocket === null && this.known.stored.gap !== undefined;
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

  /** Asks the actor to apply the gap policy to its gap (the registry's sweep calls it once the deadline passed). */
  reviewGap(): void {
    if (this.status !== ActorStatus.Open) return;
    this.reviewDue = true;
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
    this.reviewDue = false;
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
    while ((this.mailbox.length > 0 || this.reviewDue) && this.status !== ActorStatus.Closed) {
      const batch = this.mailbox;
      this.mailbox = [];
      const review = this.reviewDue;
      this.reviewDue = false;
      try {
        await this.process(batch, review);
      } catch (err) {
        this.setKnown(undefined);
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

  private async process(batch: Delivery[], review: boolean): Promise<void> {
    // What this batch reserved of the global buffered bounds, handed back once its outcome is known.
    const reserved = { messages: 0, bytes: 0 };
    try {
      await this.processReserving(batch, review, reserved);
    } finally {
      this.env.bounds.release(reserved.messages, reserved.bytes);
    }
  }

  private async processReserving(batch: Delivery[], review: boolean, reserved: { messages: number; bytes: number }): Promise<void> {
    for (;;) {
      const base = this.known ?? (await this.load());
      // A place taken for an entry that was never written, or is launched by now: free it.
      if (review && (base.revision === 0 || base.stored.rocket !== null)) this.env.observer.unlaunched(this.channel, this.partition, undefined);
      if (review && base.revision !== 0 && base.stored.rocket === null && this.isOverdue(base.stored)) {
        // Never launched within the deadline: give the entry up; its messages stay in the stream.
        if (await this.removeUnlaunched(base)) continue;
      }
      this.env.bounds.release(reserved.messages, reserved.bytes);
      reserved.messages = 0;
      reserved.bytes = 0;
      const { draft, outcomes } = this.plan(base, batch, reserved);
      await this.catchUp(base, draft, outcomes.includes(DeliveryOutcome.Applied));
      if (review && this.isOverdue(base.stored) && this.env.settings.gapPolicy === GapPolicy.Skip) await this.skip(base, draft);
      const state = this.stateOf(draft, base);
      if (!this.needsWrite(base, draft, outcomes)) {
        // An unlocated load was read back from its floor (catchUp) and nothing it found needs a write: all were applied already.
        if (base.unlocated) this.env.streamOnly.covered(this.partition, this.channel, base.floorSeq);
        this.commitKnown(base, draft, base.revision);
        this.settle(batch, outcomes);
        return;
      }
      if (base.revision === 0 && state.rocket === null && !this.env.bounds.mayRecordUnlaunched(this.channel, this.partition)) {
        this.parkInStreamOnly(base, batch, outcomes);
        return;
      }
      let revision: number;
      try {
        revision = await this.save(state, base.revision);
      } catch (err) {
        if (!(err instanceof RevisionConflictError) || this.status === ActorStatus.Closed) throw err;
        // Someone else wrote: recompute this batch against what they wrote.
        this.env.observer.revisionConflict();
        this.setKnown(undefined);
        continue;
      }
      this.commitKnown(base, draft, revision, state);
      this.env.streamOnly.covered(this.partition, this.channel, base.floorSeq);
      if (draft.reread > 0) this.env.observer.reread(draft.reread);
      if (draft.skippedNow) this.env.observer.gapSkipped(this.channel, draft.skippedNow.from, draft.skippedNow.to);
      this.settle(batch, outcomes);
      return;
    }
  }

  private isOverdue(state: ChannelState): boolean {
    const since = state.gap?.since;
    return since !== undefined && this.env.wallNow() - Date.parse(since) >= this.env.settings.gapDeadlineMs;
  }

  /**
   * Past MAX_UNLAUNCHED_CHANNELS: the batch is acked with no state entry,
   * its messages parked in the stream only. No write fences a stale owner
   * here, so only while the lease is surely ours (then the partition's next
   * owner counts them below its takenAt); recorded, so that this instance's
   * launch re-read finds them, and known to miss them from their sequence.
   */
  private parkInStreamOnly(base: Known, batch: Delivery[], outcomes: DeliveryOutcome[]): void {
    if (!this.env.leaseFresh(this.partition)) throw new LeaseNotFreshError(this.partition);
    let lowest = Number.POSITIVE_INFINITY;
    for (const d of batch) lowest = Math.min(lowest, d.seq);
    this.env.streamOnly.record(this.partition, this.channel, lowest);
    this.setKnown({ ...base, floorSeq: Math.min(base.floorSeq, lowest) });
    this.settle(batch, outcomes);
  }

  /**
   * True when removed, or when someone wrote meanwhile (the caller reloads);
   * false when the lease may have moved (the next sweep reviews it again).
   */
  private async removeUnlaunched(base: Known): Promise<boolean> {
    if (!this.env.leaseFresh(this.partition)) return false;
    try {
      await this.env.limiter.run(() => this.env.store.remove(this.channel, base.revision));
    } catch (err) {
      if (!(err instanceof RevisionConflictError)) throw err;
      this.env.observer.revisionConflict();
      this.setKnown(undefined);
      return true;
    }
    // Its parked messages stay in the stream, now located by no state (inline ones, an older format, at unknown sequences).
    const from = base.stored.pending.length > 0 ? 1 : (base.stored.gap?.fromSeq ?? 1);
    this.env.streamOnly.record(this.partition, this.channel, from);
    this.env.observer.unlaunchedExpired(this.channel);
    this.env.observer.unlaunched(this.channel, this.partition, undefined);
    this.setKnown(undefined);
    return true;
  }

  /**
   * Sequences the batch against what is known. A message ahead of the gap
   * is kept in memory while this channel and the registry have room
   * (outcome buffered either way: it is parked by the write that follows).
   */
  private plan(base: Known, batch: Delivery[], reserved: { messages: number; bytes: number }): { draft: Draft; outcomes: DeliveryOutcome[] } {
    const { maxPending } = this.env.settings;
    const seqOf = new Map(base.seqOf);
    let floorSeq = base.floorSeq;
    let parked = base.stored.gap?.parked ?? 0;
    const bySeq = new Map<RocketMessage, number>();
    for (const d of batch) bySeq.set(d.message, d.seq);
    let kept = seqOf.size;
    const admit = (message: RocketMessage) => {
      const seq = bySeq.get(message)!;
      parked += 1;
      const size = encodedSize(message);
      if (kept < maxPending && this.env.bounds.mayBuffer(size)) {
        kept += 1;
        reserved.messages += 1;
        reserved.bytes += size;
        return true;
      }
      floorSeq = Math.min(floorSeq, seq);
      return false;
    };
    const current: ChannelState = { rocket: base.stored.rocket, lastApplied: base.stored.lastApplied, pending: base.waiting };
    const result = sequenceBatch(current, batch.map((d) => d.message), { maxPending: Number.POSITIVE_INFINITY, admit });
    const outcomes = result.outcomes.map((o) => DELIVERY_OUTCOME[o]);
    const seen = new Set(seqOf.values());
    result.outcomes.forEach((o, i) => {
      if (o === SequenceOutcome.Buffered) seqOf.set(batch[i]!.message.metadata.messageNumber, batch[i]!.seq);
      if (o !== SequenceOutcome.Overflow) seen.add(batch[i]!.seq);
    });
    const draft: Draft = {
      rocket: result.state.rocket,
      lastApplied: result.state.lastApplied,
      waiting: result.state.pending,
      inline: new Set(base.inline),
      seqOf,
      floorSeq,
      earlier: base.earlier,
      skipped: base.stored.skipped,
      parked,
      since: base.stored.gap?.since,
      skippedNow: undefined,
      reread: 0,
      reserved,
      seen,
      forgotten: 0,
    };
    prune(draft, this.env.settings.maxPending);
    return { draft, outcomes };
  }

  /**
   * When memory may miss parked messages and the gap may have moved (the
   * batch applied something, or a launch with no stored state), re-reads
   * them from the stream and applies what they make contiguous, again while
   * that makes progress.
   */
  private async catchUp(base: Known, draft: Draft, applied: boolean): Promise<void> {
    if ((draft.floorSeq === Number.POSITIVE_INFINITY && draft.earlier === 0) || !(applied || base.unlocated)) return;
    // Only for a channel without an entry: nothing of it was applied, so no copy of it was removed from the stream (ingest removes resends of applied numbers only).
    if (base.revision === 0 && (await this.sawEverything(draft))) {
      draft.floorSeq = Number.POSITIVE_INFINITY;
      draft.earlier = 0;
      return;
    }
    await this.readEarlier(draft);
    let plan: WindowPlan | undefined;
    while (draft.floorSeq !== Number.POSITIVE_INFINITY) {
      const before = draft.lastApplied;
      plan = await this.reread(draft, plan);
      if (draft.lastApplied === before) return;
    }
  }

  /**
   * Reads back what earlier owners may have parked (1 to draft.earlier), on
   * top of what floorSeq covers. The channel's messages delivered since lie
   * after it and were this instance's to see, so the read stops there: for a
   * channel new since the takeover, the stream holds none of its messages in
   * that range, and the read finds none.
   */
  private async readEarlier(draft: Draft): Promise<void> {
    if (draft.earlier === 0) return;
    // One request tells whether the range holds any message of the channel; a read would create a consumer to find out.
    const first = await this.env.limiter.run(() => this.env.parked.firstSeq(this.partition, this.channel, 1));
    if (first <= draft.earlier) await this.reread(draft, undefined, { minSeq: first, maxSeq: draft.earlier });
    draft.earlier = 0;
  }

  /**
   * True when the stream holds no message of this channel that the draft
   * does not account for, so a re-read would find nothing new: the subject
   * holds at most as many messages as the draft has seen, and every one it
   * has seen is still held (none lies below the stream's first sequence, and
   * nothing of a channel without an entry is removed from the middle), so
   * they are the same messages. One request instead of a read: what a new
   * rocket's launch (no stored state, so "may have parked anywhere") costs.
   */
  private async sawEverything(draft: Draft): Promise<boolean> {
    if (draft.seen.size === 0) return false;
    const { count, firstSeq } = await this.env.limiter.run(() => this.env.parked.census(this.partition, this.channel));
    let lowest = Number.POSITIVE_INFINITY;
    for (const seq of draft.seen) lowest = Math.min(lowest, seq);
    return count <= draft.seen.size && lowest >= firstSeq;
  }

  /**
   * Reads the parked messages from draft.floorSeq into the draft (the lowest
   * maxPending numbers past lastApplied), then applies. With a usable `plan`
   * from the pass before, reads only the stream range that plan found this
   * window's numbers in. Returns the plan for the next pass, if it can have one.
   */
  private async reread(draft: Draft, plan?: WindowPlan, earlierRange?: { minSeq: number; maxSeq: number }): Promise<WindowPlan | undefined> {
    const { maxPending } = this.env.settings;
    const windowStart = draft.lastApplied;
    const planned = plan !== undefined && plan.firstNumber === windowStart + 1 && plan.floorSeq === draft.floorSeq && plan.forgotten === draft.forgotten;
    // Reading earlier owners' range covers only that range: what floorSeq covers stays to be read.
    const ownFloor = draft.floorSeq;
    const range = planned ? plan.windows[0] : (earlierRange ?? { minSeq: draft.floorSeq, maxSeq: Number.POSITIVE_INFINITY });
    const found = new Map<number, { message: RocketMessage; seq: number }>();
    // Where the numbers past this window lie, for the passes after this one.
    const next: Array<{ minSeq: number; maxSeq: number } | undefined> = [];
    let pastSeq = Number.POSITIVE_INFINITY;
    let beyond = planned ? plannedBeyond(plan) : Number.POSITIVE_INFINITY;
    let count = 0;
    const onMessage = (seq: number, message: RocketMessage) => {
      count += 1;
      const n = message.metadata.messageNumber;
      if (n <= windowStart || draft.inline.has(n)) return;
      const had = found.get(n) ?? (draft.seqOf.has(n) ? { seq: draft.seqOf.get(n)!, message } : undefined);
      if (had && had.seq <= seq) return;
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
    for (const m of draft.waiting) merged.set(m.metadata.messageNumber, m);
    const fresh: number[] = [];
    for (const [n, { message, seq }] of found) {
      if (!draft.seqOf.has(n)) fresh.push(n);
      if (!merged.has(n)) merged.set(n, message);
      const known = draft.seqOf.get(n);
      if (!draft.inline.has(n) && (known === undefined || seq < known)) draft.seqOf.set(n, seq);
    }
    const waiting = [...merged.values()].sort((a, b) => a.metadata.messageNumber - b.metadata.messageNumber);
    draft.floorSeq = earlierRange !== undefined ? Math.min(beyond, ownFloor) : beyond;
    // Some wait past the window: the gap must stay recorded even if nothing was counted parked yet (a launch's first read).
    if (beyond !== Number.POSITIVE_INFINITY) draft.parked = Math.max(draft.parked, draft.seqOf.size + 1);
    const first = waiting[0];
    if (first !== undefined && first.metadata.messageNumber === draft.lastApplied + 1) {
      const result = sequenceBatch({ rocket: draft.rocket, lastApplied: draft.lastApplied, pending: waiting.slice(1) }, [first], {
        maxPending: Number.POSITIVE_INFINITY,
      });
      draft.rocket = result.state.rocket;
      draft.lastApplied = result.state.lastApplied;
      draft.waiting = result.state.pending;
    } else {
      draft.waiting = waiting;
    }
    prune(draft, this.env.settings.maxPending);
    this.keepWithinBounds(draft, fresh, merged);
    // A re-read knows exactly what waits within its window: the count is exact again unless some lie beyond it.
    if (draft.floorSeq === Number.POSITIVE_INFINITY) draft.parked = draft.seqOf.size;
    // The next window starts where this one ended only if this one was applied whole and nothing was forgotten meanwhile.
    if (earlierRange !== undefined) return undefined;
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

  /** GAP_POLICY=skip past the deadline: gives up the missing numbers of a launched rocket and applies what follows. */
  private async skip(base: Known, draft: Draft): Promise<void> {
    if (draft.rocket === null) return;
    await this.readEarlier(draft);
    if (draft.floorSeq !== Number.POSITIVE_INFINITY) await this.reread(draft);
    // A re-read may have closed the gap (or the stream's retention emptied it): nothing to give up then.
    const state: ChannelState = { rocket: draft.rocket, lastApplied: draft.lastApplied, pending: draft.waiting };
    if (draft.skipped !== undefined) state.skipped = draft.skipped;
    const result = skipGap(state, iso(this.env.wallNow()));
    if (!result) return;
    draft.rocket = result.state.rocket;
    draft.lastApplied = result.state.lastApplied;
    draft.waiting = result.state.pending;
    draft.skipped = result.state.skipped;
    draft.skippedNow = { from: result.skipped.from, to: result.skipped.to };
    // The gap that was given up is closed; a gap that remains is a new one.
    draft.since = undefined;
    prune(draft, this.env.settings.maxPending);
    draft.parked = draft.seqOf.size;
    await this.catchUp(base, draft, true);
  }

  private stateOf(draft: Draft, base: Known): ChannelState {
    const state: ChannelState = {
      rocket: draft.rocket,
      lastApplied: draft.lastApplied,
      pending: draft.waiting.filter((m) => draft.inline.has(m.metadata.messageNumber)),
    };
    const gap = this.gapOf(draft, base);
    if (gap !== undefined) state.gap = gap;
    if (draft.skipped !== undefined && draft.skipped.length > 0) state.skipped = draft.skipped;
    return state;
  }

  private gapOf(draft: Draft, base: Known): ParkedGap | undefined {
    // Earlier owners' range not read back yet: the stored gap must send any later reader from the start.
    let fromSeq = draft.earlier > 0 ? 1 : draft.floorSeq;
    for (const seq of draft.seqOf.values()) fromSeq = Math.min(fromSeq, seq);
    // A channel with no entry may have messages parked in the stream only (floorSeq 1): a gap only once one is counted.
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

  private async load(): Promise<Known> {
    const stored = await this.env.limiter.run(() => this.env.store.load(this.channel), this.launchedBefore);
    const state = stored?.state ?? emptyChannelState();
    const inline = new Set(state.pending.map((m) => m.metadata.messageNumber));
    // Messages may be parked in the stream only: with no entry, by earlier owners up to what they delivered (unknown: anywhere) and
    // where we recorded; with one, ours it does not locate.
    const own = this.env.streamOnly.ownFrom(this.partition, this.channel, stored !== null);
    const earlier = stored === null ? this.env.streamOnly.earlierThrough(this.partition) : 0;
    const storedFloor = stored === null ? Number.POSITIVE_INFINITY : (state.gap?.fromSeq ?? Number.POSITIVE_INFINITY);
    const known: Known = {
      stored: state,
      revision: stored?.revision ?? 0,
      waiting: state.pending,
      inline,
      seqOf: new Map(),
      floorSeq: earlier === undefined ? 1 : Math.min(storedFloor, own),
      earlier: earlier ?? 0,
      bytes: 0,
      unlocated: stored !== null && own < storedFloor,
    };
    this.setKnown(known);
    if (stored !== null && state.rocket === null && state.gap !== undefined) this.env.observer.unlaunched(this.channel, this.partition, Date.parse(state.gap.since));
    return known;
  }

  private commitKnown(base: Known, draft: Draft, revision: number, state?: ChannelState): void {
    const stored = state ?? base.stored;
    let bytes = 0;
    for (const m of draft.waiting) if (draft.seqOf.has(m.metadata.messageNumber)) bytes += encodedSize(m);
    this.setKnown({
      stored,
      revision,
      waiting: draft.waiting,
      inline: draft.inline,
      seqOf: draft.seqOf,
      floorSeq: draft.floorSeq,
      earlier: draft.earlier,
      bytes,
      unlocated: false,
    });
    if (state !== undefined && base.stored.rocket === null) {
      const since = state.rocket === null && state.gap !== undefined ? Date.parse(state.gap.since) : undefined;
      this.env.observer.unlaunched(this.channel, this.partition, since);
    }
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
  draft.waiting = draft.waiting.filter((m) => draft.inline.has(m.metadata.messageNumber) || draft.seqOf.has(m.metadata.messageNumber));
}
