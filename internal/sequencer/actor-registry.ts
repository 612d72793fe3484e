// The channel actors of the partitions this instance owns, created on first
// delivery and evicted when idle, so memory is bounded by the active
// channels, not by every channel ever seen; and the gaps of those partitions'
// channels, reviewed on time whether or not their actor is in memory.
//
// Guarantees:
// - At most one live actor per channel in this process, so one channel's
//   deliveries are handled one batch at a time, in arrival order.
// - Eviction only ever removes an idle actor (empty mailbox, no write in
//   flight); its state is in KV and is reloaded on the next delivery.
//   MAX_ACTORS is a soft cap: when every actor is busy the registry exceeds
//   it rather than block or drop.
// - Dropping a partition closes its actors at once (waiting deliveries are
//   nak'ed for the next owner); draining lets them finish first.
// - Global bounds, each counted when reached (limit_reached_total{limit}),
//   none losing an accepted message: parked messages held in memory over all
//   actors (MAX_BUFFERED_MESSAGES, MAX_BUFFERED_BYTES; past them a parked
//   message is kept in the stream only and re-read when its gap closes),
//   actors (MAX_ACTORS, soft as above), never-launched channels' entries
//   (MAX_UNLAUNCHED_CHANNELS; past it the oldest are given up early, their
//   messages left in the stream, where the channel's next entry finds them)
//   and gaps tracked (MAX_TRACKED_GAPS; past it a gap is reviewed only once
//   its channel is written again). The memory bounds are checked before each
//   batch is planned, so they may be passed by at most the batches being
//   planned at that moment.
// - The gaps of the owned partitions are known from every commit and, for
//   what other instances recorded, from a scan of the state bucket when
//   partitions are taken; only owned partitions' channels are tracked. Every
//   sweep reviews them: a never-launched channel past GAP_DEADLINE_SECONDS is
//   given up, a launched rocket under GAP_POLICY=skip skips its missing
//   numbers, and a gap whose parked messages retention removed records what
//   it lost, whether or not the channel's actor is in memory.

import { StateStoreFullError, type ChannelStates, type RecordedGap, type StateDecodeError } from "./channel-states.js";
import type { Logger } from "../observability/logger.js";
import {
  ChannelActor,
  GapPolicy,
  ReviewReason,
  type ActorBounds,
  type ActorEnvironment,
  type ActorObserver,
  type ActorSettings,
  type Delivery,
  type GapInfo,
  type ParkedMessages,
} from "./channel-actor.js";
import { Limiter } from "./limiter.js";
import { WriteLinger } from "./write-linger.js";
import { SequencerLimit, type DeliveryOutcome, type SequencerMetrics } from "./metrics.js";

export interface RegistrySettings extends ActorSettings {
  maxActors: number;
  actorIdleMs: number;
  /** Parked messages held in memory over every actor. */
  maxBufferedMessages: number;
  /** Their encoded bytes. */
  maxBufferedBytes: number;
  /** Never-launched channels' entries this instance keeps; past it the oldest are given up early. */
  maxUnlaunchedChannels: number;
  /** How long an idle actor's write may wait to leave with others' (WriteLinger); 0 or absent: at once. */
  writeLingerMs?: number;
  /** Gaps tracked over every owned partition; absent: MAX_TRACKED_GAPS. */
  maxTrackedGaps?: number;
}

/** Gaps tracked for review, ~150 bytes each. */
const MAX_TRACKED_GAPS = 200_000;

/** After a scan over MAX_ACTORS found nothing to evict, the next waits this long. */
const EVICTION_SCAN_INTERVAL_MS = 100;

/** Re-reads of parked messages at once; each holds up to maxPending messages, so this bounds their memory. */
export const REREAD_CONCURRENCY = 4;
/** Gaps reviewed per sweep at most, so a backlog costs a steady trickle of KV work. */
const REVIEWS_PER_SWEEP = 1000;

/** With no gap open, the stream's retention is read this often (for the gauge that alerts). */
const HELD_READ_INTERVAL_MS = 30_000;

/** Failures are logged at most this often (with a count), so an outage does not flood the log. */
const FAILURE_LOG_INTERVAL_MS = 5000;

interface TrackedGap extends GapInfo {
  partition: number;
}

export class ActorRegistry {
  private readonly actors = new Map<string, ChannelActor>();
  private lastFutileScan = Number.NEGATIVE_INFINITY;
  /** Channels whose launched rocket's actor was evicted, most recent last (at most maxActors). */
  private readonly evictedLaunched = new Map<string, true>();
  private readonly env: ActorEnvironment;
  private buffered = 0;
  private bufferedBytes = 0;
  /** Parked messages batches being planned have reserved and not yet committed. */
  private readonly reserved = { messages: 0, bytes: 0 };
  /** The owned partitions' channels with a recorded gap, oldest recorded first. */
  private readonly gaps = new Map<string, TrackedGap>();
  private unlaunchedCount = 0;
  private quarantinedCount = 0;
  /** Owned partitions, each with the number of times it was taken (a drain ends only the tenure it began in). */
  private readonly owned = new Map<number, number>();
  private tenures = 0;
  private lastLimitLog = new Map<SequencerLimit, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  private failuresSinceLog = 0;
  /** The stream's first held sequence and max age, as the last sweep read them. */
  private streamFirstSeq = 0;
  private streamMaxAgeMs = 0;
  private heldReadAt = Number.NEGATIVE_INFINITY;

  constructor(
    store: ChannelStates,
    private readonly parked: ParkedMessages,
    limiter: Limiter,
    private readonly settings: RegistrySettings,
    private readonly metrics: SequencerMetrics,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
    wallNow: () => number = () => Date.now(),
  ) {
    const observer: ActorObserver = {
      settled: (outcome: DeliveryOutcome, count: number) => metrics.settled(outcome, count),
      kvWrite: (seconds, committed) => metrics.kvWrite(seconds, committed),
      revisionConflict: () => metrics.revisionConflict(),
      bufferedChanged: (messages, bytes) => {
        this.buffered += messages;
        this.bufferedBytes += bytes;
      },
      reread: (messages) => metrics.reread(messages),
      gapSkipped: (channel, from, to, reason) => {
        metrics.gapSkipped(reason);
        this.log.warn({ channel, from, to, reason }, "numbers given up; the rocket records the skipped range and its reason");
      },
      unlaunchedExpired: (channel, reason) => {
        metrics.unlaunchedExpired();
        this.log.info(
          { channel, reason },
          reason === ReviewReason.Cap
            ? "never-launched channel given up early (MAX_UNLAUNCHED_CHANNELS); its messages stay in the stream for its launch"
            : "channel never launched within the gap deadline; its state entry was removed (its messages stay in the stream)",
        );
      },
      gap: (channel, partition, gap) => this.track(channel, partition, gap),
      failed: (channel, err, messages) => {
        // The bucket is full (STATE_MAX_BYTES): counted for its alert; the messages are nak'ed like any failed write.
        if (err instanceof StateStoreFullError) metrics.stateWriteRefused();
        this.logFailure(channel, err, messages);
      },
      quarantined: (channel, err, messages) => {
        metrics.quarantined();
        this.logQuarantine(channel, err, messages);
      },
    };
    const bounds: ActorBounds = {
      mayBuffer: (bytes) => {
        if (this.buffered + this.reserved.messages + 1 > settings.maxBufferedMessages) return this.limitReached(SequencerLimit.BufferedMessages);
        if (this.bufferedBytes + this.reserved.bytes + bytes > settings.maxBufferedBytes) return this.limitReached(SequencerLimit.BufferedBytes);
        this.reserved.messages += 1;
        this.reserved.bytes += bytes;
        return true;
      },
      release: (messages, bytes) => {
        this.reserved.messages -= messages;
        this.reserved.bytes -= bytes;
      },
    };
    this.env = {
      store,
      parked,
      limiter,
      rereads: new Limiter(REREAD_CONCURRENCY),
      linger: new WriteLinger(settings.writeLingerMs ?? 0),
      settings,
      observer,
      bounds,
      now,
      wallNow,
    };
  }

  /** Counts a reached bound, logs it at most once per FAILURE_LOG_INTERVAL_MS per bound, and refuses. */
  private limitReached(limit: SequencerLimit): false {
    this.metrics.limitReached(limit);
    const now = this.now();
    const last = this.lastLimitLog.get(limit) ?? Number.NEGATIVE_INFINITY;
    if (now - last >= FAILURE_LOG_INTERVAL_MS) {
      this.lastLimitLog.set(limit, now);
      this.log.warn({ limit }, "sequencer bound reached; nothing accepted is lost (docs/operations.md says what each bound does past it)");
    }
    return false;
  }

  /** How often the sweep runs: often enough to evict idle actors and to keep gap deadlines within a quarter of their length. */
  get sweepIntervalMs(): number {
    return Math.max(250, Math.min(this.settings.actorIdleMs / 2, this.settings.gapDeadlineMs / 4, 10_000));
  }

  /** Starts the sweep: evicting idle actors, reviewing gaps. */
  start(): void {
    this.sweeper = setInterval(() => void this.sweep(), this.sweepIntervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  deliver(partition: number, delivery: Delivery): void {
    this.actorFor(delivery.message.metadata.channel, partition).deliver(delivery);
  }

  private actorFor(channel: string, partition: number): ChannelActor {
    let actor = this.actors.get(channel);
    if (!actor) {
      if (this.actors.size >= this.settings.maxActors) {
        this.metrics.limitReached(SequencerLimit.Actors);
        // A scan that found nothing idle to evict (every actor busy: a flood of new channels waiting on KV) is
        // not repeated for an interval: scanning per delivery froze the process for seconds (16,000 scans of
        // 20,000 actors in the hostile suite's never-launched flood). The cap is soft only while nothing can be evicted.
        const now = this.now();
        if (now - this.lastFutileScan >= EVICTION_SCAN_INTERVAL_MS && this.evictOverCap() === 0) this.lastFutileScan = now;
      }
      actor = new ChannelActor(channel, partition, this.env, this.evictedLaunched.delete(channel));
      this.actors.set(channel, actor);
    }
    return actor;
  }

  /** This instance now owns the partition (called before its first delivery). */
  beginPartition(partition: number): void {
    this.owned.set(partition, ++this.tenures);
  }

  /** Closes the partition's actors at once (the partition was lost). */
  dropPartition(partition: number): void {
    this.owned.delete(partition);
    this.forgetGaps(partition);
    for (const [channel, actor] of this.actors) {
      if (actor.partition !== partition) continue;
      actor.close();
      actor.dispose();
      this.actors.delete(channel);
    }
  }

  /** Lets the partition's actors finish their mailboxes, then removes them (the partition is being released). */
  async drainPartition(partition: number): Promise<void> {
    const tenure = this.owned.get(partition);
    const draining = [...this.actors.values()].filter((a) => a.partition === partition);
    const drained = Promise.all(draining.map((a) => a.drain()));
    // A release should not wait out the linger window.
    this.env.linger.flush();
    await drained;
    for (const actor of draining) {
      actor.dispose();
      if (this.actors.get(actor.channel) === actor) this.actors.delete(actor.channel);
    }
    // Its gaps are its next owner's to review, unless the partition was taken here again meanwhile.
    if (this.owned.get(partition) === tenure) {
      this.owned.delete(partition);
      this.forgetGaps(partition);
    }
  }

  get size(): number {
    return this.actors.size;
  }

  /** Parked messages held in memory by the actors. */
  get bufferedMessages(): number {
    return this.buffered;
  }

  /** Their encoded bytes. */
  get bufferedBytesHeld(): number {
    return this.bufferedBytes;
  }

  /**
   * A gap found in the state bucket (a scan): tracked when its channel's
   * partition is owned here, so it is reviewed on time though its actor is
   * not in memory. A gap already known from a commit here is left as known.
   */
  foundGap(channel: string, partition: number, gap: RecordedGap): void {
    if (!this.owned.has(partition) || this.gaps.has(channel)) return;
    this.track(channel, partition, gap);
  }

  /** Quarantined channels among the owned partitions (their entry did not decode; waiting for a repair). */
  get quarantined(): number {
    return this.quarantinedCount;
  }

  /** Channels with a state entry but no launch, among the owned partitions. */
  get unlaunched(): number {
    return this.unlaunchedCount;
  }

  /** The stream keeps messages no longer than the gap deadline (as last read): parked messages may age out first. */
  get retentionWithinDeadline(): boolean {
    return this.streamMaxAgeMs > 0 && this.streamMaxAgeMs <= this.settings.gapDeadlineMs;
  }

  /** Open gaps tracked over the owned partitions. */
  get openGaps(): number {
    return this.gaps.size;
  }

  /** Age of the oldest open gap tracked, in seconds (0 when none), from the time recorded in its state. */
  oldestGapAgeSeconds(): number {
    const now = this.wallNow();
    let oldest = now;
    for (const gap of this.gaps.values()) if (gap.since < oldest) oldest = gap.since;
    return Math.max(0, now - oldest) / 1000;
  }

  private get wallNow(): () => number {
    return this.env.wallNow;
  }

  private track(channel: string, partition: number, gap: GapInfo | undefined): void {
    const before = this.gaps.get(channel);
    if (before) this.count(before, -1);
    this.gaps.delete(channel);
    if (gap === undefined || !this.owned.has(partition)) return;
    if (this.gaps.size >= (this.settings.maxTrackedGaps ?? MAX_TRACKED_GAPS)) {
      this.limitReached(SequencerLimit.TrackedGaps);
      return;
    }
    const tracked = { ...gap, partition };
    this.gaps.set(channel, tracked);
    this.count(tracked, 1);
  }

  private count(gap: TrackedGap, by: 1 | -1): void {
    if (gap.quarantined) this.quarantinedCount += by;
    else if (!gap.launched) this.unlaunchedCount += by;
  }

  private forgetGaps(partition: number): void {
    for (const [channel, gap] of this.gaps) {
      if (gap.partition !== partition) continue;
      this.count(gap, -1);
      this.gaps.delete(channel);
    }
  }

  /** Evicts idle actors without an open gap, and reviews the gaps that are due. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      this.evictIdle();
      const now = this.now();
      // What the stream holds matters to open gaps; otherwise only the retention gauge reads it, now and then.
      if (this.gaps.size > 0 || now - this.heldReadAt >= HELD_READ_INTERVAL_MS) {
        this.heldReadAt = now;
        try {
          const held = await this.parked.held();
          this.streamFirstSeq = held.firstSeq;
          this.streamMaxAgeMs = held.maxAgeMs;
        } catch (err) {
          this.log.debug({ err }, "the stream's first sequence is unavailable; retention is checked at the next sweep");
        }
        this.reviewGaps();
      }
    } finally {
      this.sweeping = false;
    }
  }

  private evictIdle(): void {
    const cutoff = this.now() - this.settings.actorIdleMs;
    for (const [channel, actor] of this.actors) {
      if (actor.gapSince !== undefined) continue;
      if (actor.idle && actor.lastActive <= cutoff) this.evict(channel, actor);
    }
  }

  private reviewGaps(): void {
    const overdue = this.wallNow() - this.settings.gapDeadlineMs;
    const skip = this.settings.gapPolicy === GapPolicy.Skip;
    let reviews = 0;
    let overCap = this.unlaunchedCount - this.settings.maxUnlaunchedChannels;
    if (overCap > 0) this.limitReached(SequencerLimit.UnlaunchedChannels);
    // Oldest recorded first (a commit re-inserts a channel at the end).
    for (const [channel, gap] of this.gaps) {
      if (reviews >= REVIEWS_PER_SWEEP) break;
      let reason: ReviewReason | undefined;
      // A quarantined channel is looked at every sweep: a repair replaces its entry behind the sequencer's back.
      if (gap.quarantined) reason = ReviewReason.Quarantine;
      else if (gap.fromSeq !== null && this.streamFirstSeq > gap.fromSeq) reason = ReviewReason.Retention;
      else if (gap.since <= overdue && (skip || !gap.launched)) reason = ReviewReason.Deadline;
      else if (!gap.launched && overCap > 0) {
        reason = ReviewReason.Cap;
        overCap -= 1;
      }
      if (reason === undefined) continue;
      reviews += 1;
      // An actor already asked, and not done yet, takes it as one review.
      this.actorFor(channel, gap.partition).reviewGap(reason);
    }
  }

  /**
   * Makes room for one more actor by evicting the least recently active idle
   * ones; evicts 1% of the cap at once so that the scan is not paid per delivery.
   */
  private evictOverCap(): number {
    const excess = this.actors.size - this.settings.maxActors + 1;
    const idle = [...this.actors.values()].filter((a) => a.idle).sort((a, b) => a.lastActive - b.lastActive);
    const evicted = idle.slice(0, Math.max(excess, Math.ceil(this.settings.maxActors / 100)));
    for (const actor of evicted) this.evict(actor.channel, actor);
    return evicted.length;
  }

  private evict(channel: string, actor: ChannelActor): void {
    // Remembered (boundedly) so that the rocket's next load is urgent: a flood of new channels that pushed it
    // out (idle since its last message, it is the least recently active) must not also queue it behind them.
    if (actor.launched) {
      this.evictedLaunched.set(channel, true);
      if (this.evictedLaunched.size > this.settings.maxActors) this.evictedLaunched.delete(this.evictedLaunched.keys().next().value as string);
    }
    actor.dispose();
    this.actors.delete(channel);
  }

  /** A quarantined channel is an error for an operator: logged at error level with what is wrong. */
  private logQuarantine(channel: string, err: StateDecodeError, messages: number): void {
    this.log.error(
      { err, channel, messages, problems: err.problems.slice(0, 20) },
      "stored channel state is invalid: the channel is quarantined (its messages are kept in the stream) until `npm run repair` repairs it",
    );
  }

  private logFailure(channel: string, err: unknown, messages: number): void {
    this.failuresSinceLog += 1;
    const now = this.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.log.warn(
      { err, channel, messages, failuresSinceLastLog: this.failuresSinceLog },
      "channel state write failed; messages handed back for redelivery",
    );
    this.lastFailureLog = now;
    this.failuresSinceLog = 0;
  }
}
