// The channel actors of the partitions this instance owns, created on first
// delivery and evicted when idle, so memory is bounded by the active
// channels, not by every channel ever seen.
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
//   actors (MAX_ACTORS, soft as above) and channels with a state entry but
//   no launch, as this instance wrote them or found them in the bucket at
//   start (MAX_UNLAUNCHED_CHANNELS; past it such a channel's messages are parked
//   in the stream only, found by its launch's re-read), and the channels so
//   parked that it records (StreamOnlyParks; past it a partition's new
//   channels re-read from its lowest unrecorded sequence). The memory bounds
//   are checked before each batch is planned, so they may be passed by at
//   most the batches being planned at that moment.
// - Every sweep reviews the gaps past GAP_DEADLINE_SECONDS of the actors in
//   memory: a channel that never launched is given up, and under
//   GAP_POLICY=skip a launched rocket skips its missing numbers. An actor
//   with an open gap is not evicted for idleness (only by the MAX_ACTORS cap),
//   so its deadline is kept; its memory is bounded by the buffered bounds.

import { StateStoreFullError, type ChannelStates, type StateDecodeError } from "./channel-states.js";
import type { Logger } from "../observability/logger.js";
import {
  ChannelActor,
  GapPolicy,
  type ActorBounds,
  type ActorEnvironment,
  type ActorObserver,
  type ActorSettings,
  type Delivery,
  LeaseNotFreshError,
  type ParkedMessages,
} from "./channel-actor.js";
import { Limiter } from "./limiter.js";
import { WriteLinger } from "./write-linger.js";
import { StreamOnlyParks } from "./stream-only-parks.js";
import { SequencerLimit, type DeliveryOutcome, type SequencerMetrics } from "./metrics.js";

export interface RegistrySettings extends ActorSettings {
  maxActors: number;
  actorIdleMs: number;
  /** Parked messages held in memory over every actor. */
  maxBufferedMessages: number;
  /** Their encoded bytes. */
  maxBufferedBytes: number;
  /** Channels with a stored state but no launch this instance keeps entries for. */
  maxUnlaunchedChannels: number;
  /** How long an idle actor's write may wait to leave with others' (WriteLinger); 0 or absent: at once. */
  writeLingerMs?: number;
  /** Channels parked in the stream only that this instance records (StreamOnlyParks); absent: MAX_STREAM_ONLY_CHANNELS. */
  maxStreamOnlyChannels?: number;
}

/** Whether this instance's lease on a partition surely has not moved (Ownership.leaseFresh). */
export interface LeaseFence {
  fresh(partition: number): boolean;
}

/**
 * Channels whose messages this instance parked in the stream only, recorded
 * over every partition (StreamOnlyParks); ~150 bytes each. Past it, a
 * partition's new channels re-read from its lowest unrecorded sequence.
 */
const MAX_STREAM_ONLY_CHANNELS = 50_000;

/** After a scan over MAX_ACTORS found nothing to evict, the next waits this long. */
const EVICTION_SCAN_INTERVAL_MS = 100;

/** Re-reads of parked messages at once; each holds up to maxPending messages, so this bounds their memory. */
export const REREAD_CONCURRENCY = 4;
/** Never-launched channels given up per sweep at most, so a backlog costs a steady trickle of KV work. */
const UNLAUNCHED_REVIEWS_PER_SWEEP = 1000;

/** Failures are logged at most this often (with a count), so an outage does not flood the log. */
const FAILURE_LOG_INTERVAL_MS = 5000;
/** Bounds the per-channel log throttle of invalid states (cleared when full: a few extra lines, never unbounded memory). */
const MAX_UNREADABLE_TRACKED = 1000;

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
  /** Channels with a state entry but no launch: their partition and when their gap was recorded (wall-clock ms). */
  private readonly unlaunchedChannels = new Map<string, { partition: number; since: number }>();
  private lastLimitLog = new Map<SequencerLimit, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  private failuresSinceLog = 0;
  /** When each channel with an invalid stored state was last logged. */
  private readonly unreadableLogged = new Map<string, number>();

  private readonly streamOnly: StreamOnlyParks;

  constructor(
    store: ChannelStates,
    parked: ParkedMessages,
    limiter: Limiter,
    leases: LeaseFence,
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
      gapSkipped: (channel, from, to) => {
        metrics.gapSkipped();
        this.log.warn({ channel, from, to }, "gap policy gave up messages that never arrived; the rocket records the skipped range");
      },
      unlaunchedExpired: (channel) => {
        metrics.unlaunchedExpired();
        this.log.info({ channel }, "channel never launched within the gap deadline; its state entry was removed (its messages stay in the stream)");
      },
      unlaunched: (channel, partition, since) => {
        if (since !== undefined) this.unlaunchedChannels.set(channel, { partition, since });
        else this.unlaunchedChannels.delete(channel);
      },
      failed: (channel, err, messages) => {
        // The bucket is full (STATE_MAX_BYTES): counted for its alert; the messages are nak'ed like any failed write.
        if (err instanceof StateStoreFullError) metrics.stateWriteRefused();
        // Not a failure of ours: the partition is moving; its next owner settles them.
        if (err instanceof LeaseNotFreshError) {
          this.log.debug({ channel, messages, partition: err.partition }, err.message);
          return;
        }
        this.logFailure(channel, err, messages);
      },
      unreadableState: (channel, err, messages) => {
        metrics.unreadableState();
        this.logUnreadable(channel, err, messages);
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
      mayRecordUnlaunched: (channel, partition) => {
        if (this.unlaunchedChannels.has(channel)) return true;
        if (this.unlaunchedChannels.size >= settings.maxUnlaunchedChannels) return this.limitReached(SequencerLimit.UnlaunchedChannels);
        // Reserved now; the committed write records its real start (a failed one leaves a place taken until the deadline).
        this.unlaunchedChannels.set(channel, { partition, since: this.wallNow() });
        return true;
      },
    };
    this.streamOnly = new StreamOnlyParks(settings.maxStreamOnlyChannels ?? MAX_STREAM_ONLY_CHANNELS, () => this.limitReached(SequencerLimit.StreamOnlyChannels));
    this.env = {
      store,
      parked,
      limiter,
      rereads: new Limiter(REREAD_CONCURRENCY),
      linger: new WriteLinger(settings.writeLingerMs ?? 0),
      streamOnly: this.streamOnly,
      leaseFresh: (partition) => leases.fresh(partition),
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
      this.log.warn({ limit }, "sequencer bound reached; what it refused stays parked in the stream and is re-read later");
    }
    return false;
  }

  /** Starts evicting idle actors periodically. */
  start(): void {
    // Often enough to evict idle actors and to keep gap deadlines within a quarter of their length.
    const every = Math.max(250, Math.min(this.settings.actorIdleMs / 2, this.settings.gapDeadlineMs / 4, 10_000));
    this.sweeper = setInterval(() => this.evictIdle(), every);
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
        // 20,000 actors in the hostile suite's attack (b)). The cap is soft only while nothing can be evicted.
        const now = this.now();
        if (now - this.lastFutileScan >= EVICTION_SCAN_INTERVAL_MS && this.evictOverCap() === 0) this.lastFutileScan = now;
      }
      actor = new ChannelActor(channel, partition, this.env, this.evictedLaunched.delete(channel));
      this.actors.set(channel, actor);
    }
    return actor;
  }

  private forgetUnlaunched(partition: number): void {
    for (const [channel, entry] of this.unlaunchedChannels) if (entry.partition === partition) this.unlaunchedChannels.delete(channel);
  }

  /**
   * This instance took the partition, whose consumer had delivered through
   * `deliveredThrough` (undefined: unknown); called before its first delivery.
   */
  beginPartition(partition: number, deliveredThrough: number | undefined): void {
    this.streamOnly.begin(partition, deliveredThrough);
  }

  /** Closes the partition's actors at once (the partition was lost). */
  dropPartition(partition: number): void {
    this.streamOnly.end(partition);
    this.forgetUnlaunched(partition);
    for (const [channel, actor] of this.actors) {
      if (actor.partition !== partition) continue;
      actor.close();
      actor.dispose();
      this.actors.delete(channel);
    }
  }

  /** Lets the partition's actors finish their mailboxes, then removes them (the partition is being released). */
  async drainPartition(partition: number): Promise<void> {
    const tenure = this.streamOnly.tenure(partition);
    this.forgetUnlaunched(partition);
    const draining = [...this.actors.values()].filter((a) => a.partition === partition);
    const drained = Promise.all(draining.map((a) => a.drain()));
    // A release should not wait out the linger window.
    this.env.linger.flush();
    await drained;
    for (const actor of draining) {
      actor.dispose();
      if (this.actors.get(actor.channel) === actor) this.actors.delete(actor.channel);
    }
    // After the drain: its actors still consult and add records until they finish.
    if (tenure !== undefined) this.streamOnly.end(partition, tenure);
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
   * Counts a never-launched channel's entry found in the bucket (by the
   * start's scan), so the bound and the deadline cover entries an earlier
   * instance wrote. Past MAX_UNLAUNCHED_CHANNELS the rest are left to later.
   */
  foundUnlaunched(channel: string, partition: number, since: number): void {
    if (this.unlaunchedChannels.has(channel) || this.unlaunchedChannels.size >= this.settings.maxUnlaunchedChannels) return;
    this.unlaunchedChannels.set(channel, { partition, since });
  }

  /** Channels whose messages this instance parked in the stream only and no committed state covers yet. */
  get streamOnlyChannels(): number {
    return this.streamOnly.recorded;
  }

  /** Channels with a state entry but no launch, as this instance knows them. */
  get unlaunched(): number {
    return this.unlaunchedChannels.size;
  }

  /** Open gaps among live actors. */
  get openGaps(): number {
    let n = 0;
    for (const actor of this.actors.values()) if (actor.gapSince !== undefined) n += 1;
    return n;
  }

  /** Age of the oldest open gap among live actors, in seconds (0 when none), from the time recorded in its state. */
  oldestGapAgeSeconds(): number {
    const now = this.wallNow();
    let oldest = now;
    for (const actor of this.actors.values()) {
      const since = actor.gapSince;
      if (since !== undefined && since < oldest) oldest = since;
    }
    return Math.max(0, now - oldest) / 1000;
  }

  private get wallNow(): () => number {
    return this.env.wallNow;
  }

  /** Evicts idle actors without an open gap, and asks those whose gap passed the deadline to review it. */
  evictIdle(): void {
    const cutoff = this.now() - this.settings.actorIdleMs;
    const overdue = this.wallNow() - this.settings.gapDeadlineMs;
    for (const [channel, actor] of this.actors) {
      const since = actor.gapSince;
      if (since !== undefined) {
        if (since <= overdue && (this.settings.gapPolicy === GapPolicy.Skip || actor.unlaunched)) actor.reviewGap();
        continue;
      }
      if (actor.idle && actor.lastActive <= cutoff) this.evict(channel, actor);
    }
    // Unlaunched channels whose actor was evicted (by the cap), or found by the start's scan, are still given up on time.
    let reviews = 0;
    for (const [channel, { partition, since }] of this.unlaunchedChannels) {
      if (reviews >= UNLAUNCHED_REVIEWS_PER_SWEEP) break;
      if (since <= overdue && !this.actors.has(channel)) {
        this.actorFor(channel, partition).reviewGap();
        reviews += 1;
      }
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

  /**
   * An invalid stored state is an error for an operator: logged at error
   * level with what is wrong, once per channel per FAILURE_LOG_INTERVAL_MS
   * (its messages come back every retry delay until it is repaired).
   */
  private logUnreadable(channel: string, err: StateDecodeError, messages: number): void {
    const now = this.now();
    const last = this.unreadableLogged.get(channel);
    if (last !== undefined && now - last < FAILURE_LOG_INTERVAL_MS) return;
    if (this.unreadableLogged.size >= MAX_UNREADABLE_TRACKED) this.unreadableLogged.clear();
    this.unreadableLogged.set(channel, now);
    this.log.error(
      { err, channel, messages, problems: err.problems.slice(0, 20) },
      "stored channel state is invalid; its messages are held back (nak'ed) until the entry is repaired",
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
