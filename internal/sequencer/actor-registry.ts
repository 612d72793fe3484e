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

import type { StateDecodeError } from "../nats/channel-state-store.js";
import { isStoreFull } from "../nats/jetstream-codes.js";
import type { Logger } from "../observability/logger.js";
import { ChannelActor, type ActorEnvironment, type ActorObserver, type ActorSettings, type ChannelStates, type Delivery } from "./channel-actor.js";
import type { Limiter } from "./limiter.js";
import type { MessageOutcome, SequencerMetrics } from "./metrics.js";

export interface RegistrySettings extends ActorSettings {
  maxActors: number;
  actorIdleMs: number;
}

/** Failures are logged at most this often (with a count), so an outage does not flood the log. */
const FAILURE_LOG_INTERVAL_MS = 5000;
/** Bounds the per-channel log throttle of invalid states (cleared when full: a few extra lines, never unbounded memory). */
const MAX_UNREADABLE_TRACKED = 1000;

export class ActorRegistry {
  private readonly actors = new Map<string, ChannelActor>();
  private readonly env: ActorEnvironment;
  private buffered = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private lastFailureLog = Number.NEGATIVE_INFINITY;
  private failuresSinceLog = 0;
  /** When each channel with an invalid stored state was last logged. */
  private readonly unreadableLogged = new Map<string, number>();

  constructor(
    store: ChannelStates,
    limiter: Limiter,
    private readonly settings: RegistrySettings,
    private readonly metrics: SequencerMetrics,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    const observer: ActorObserver = {
      settled: (outcome: MessageOutcome, count: number) => metrics.settled(outcome, count),
      kvWrite: (seconds, committed) => metrics.kvWrite(seconds, committed),
      revisionConflict: () => metrics.revisionConflict(),
      bufferedChanged: (delta) => {
        this.buffered += delta;
      },
      failed: (channel, err, messages) => {
        // The bucket is full (STATE_MAX_BYTES): counted for its alert; the messages are nak'ed like any failed write.
        if (isStoreFull(err)) metrics.stateWriteRefused();
        this.logFailure(channel, err, messages);
      },
      unreadableState: (channel, err, messages) => {
        metrics.unreadableState();
        this.logUnreadable(channel, err, messages);
      },
    };
    this.env = { store, limiter, settings, observer, now };
  }

  /** Starts evicting idle actors periodically. */
  start(): void {
    const every = Math.max(250, Math.min(this.settings.actorIdleMs / 2, 10_000));
    this.sweeper = setInterval(() => this.evictIdle(), every);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  deliver(partition: number, delivery: Delivery): void {
    const channel = delivery.message.metadata.channel;
    let actor = this.actors.get(channel);
    if (!actor) {
      if (this.actors.size >= this.settings.maxActors) this.evictOverCap();
      actor = new ChannelActor(channel, partition, this.env);
      this.actors.set(channel, actor);
    }
    actor.deliver(delivery);
  }

  /** Closes the partition's actors at once (the partition was lost). */
  dropPartition(partition: number): void {
    for (const [channel, actor] of this.actors) {
      if (actor.partition !== partition) continue;
      actor.close();
      actor.dispose();
      this.actors.delete(channel);
    }
  }

  /** Lets the partition's actors finish their mailboxes, then removes them (the partition is being released). */
  async drainPartition(partition: number): Promise<void> {
    const draining = [...this.actors.values()].filter((a) => a.partition === partition);
    await Promise.all(draining.map((a) => a.drain()));
    for (const actor of draining) {
      actor.dispose();
      if (this.actors.get(actor.channel) === actor) this.actors.delete(actor.channel);
    }
  }

  get size(): number {
    return this.actors.size;
  }

  /** Messages waiting behind gaps in the cached states. */
  get bufferedMessages(): number {
    return this.buffered;
  }

  /** Age of the oldest open gap among live actors, in seconds (0 when none). */
  oldestGapAgeSeconds(): number {
    const now = this.now();
    let oldest = now;
    for (const actor of this.actors.values()) {
      if (actor.gapSince !== undefined && actor.gapSince < oldest) oldest = actor.gapSince;
    }
    return (now - oldest) / 1000;
  }

  evictIdle(): void {
    const cutoff = this.now() - this.settings.actorIdleMs;
    for (const [channel, actor] of this.actors) {
      if (actor.idle && actor.lastActive <= cutoff) this.evict(channel, actor);
    }
  }

  /**
   * Makes room for one more actor by evicting the least recently active idle
   * ones; evicts 1% of the cap at once so that the scan is not paid per delivery.
   */
  private evictOverCap(): void {
    const excess = this.actors.size - this.settings.maxActors + 1;
    const idle = [...this.actors.values()].filter((a) => a.idle).sort((a, b) => a.lastActive - b.lastActive);
    for (const actor of idle.slice(0, Math.max(excess, Math.ceil(this.settings.maxActors / 100)))) {
      this.evict(actor.channel, actor);
    }
  }

  private evict(channel: string, actor: ChannelActor): void {
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
