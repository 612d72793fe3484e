// The sequencer's Prometheus metrics, with the names every dashboard and
// alert relies on. Label values are bounded: an outcome, a partition event,
// a partition number (at most the partition count); never a channel id.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../observability/metrics.js";

/** What became of one message delivered from the stream: the `outcome` label of sequencer_messages_total. */
export const DeliveryOutcome = {
  Applied: "applied",
  Duplicate: "duplicate",
  Buffered: "buffered",
  /** Not a valid message: terminated, never redelivered. */
  Rejected: "rejected",
  /** No longer produced (a message ahead of a gap is parked, never handed back); kept so dashboards keep the series. */
  Overflow: "overflow",
} as const;
export type DeliveryOutcome = (typeof DeliveryOutcome)[keyof typeof DeliveryOutcome];

/** A sequencer bound that was reached (limit_reached_total's label). */
export const SequencerLimit = {
  BufferedMessages: "buffered_messages",
  BufferedBytes: "buffered_bytes",
  Actors: "actors",
  UnlaunchedChannels: "unlaunched_channels",
  /** Gaps tracked for review (past it, a gap is reviewed once its channel is next written). */
  TrackedGaps: "tracked_gaps",
} as const;
export type SequencerLimit = (typeof SequencerLimit)[keyof typeof SequencerLimit];

export const PartitionEvent = { Acquired: "acquired", Released: "released", Lost: "lost" } as const;
export type PartitionEvent = (typeof PartitionEvent)[keyof typeof PartitionEvent];

/** Live figures the gauges read at scrape time. */
export interface SequencerGauges {
  bufferedMessages(): number;
  bufferedBytes?(): number;
  openGaps?(): number;
  unlaunchedChannels?(): number;
  oldestGapAgeSeconds(): number;
  retentionWithinDeadline?(): boolean;
  quarantinedChannels?(): number;
  partitionsOwned(): number;
  partitionsUnacquired(): number;
  actors(): number;
}

export class SequencerMetrics {
  private readonly messages: Counter<"outcome">;
  private readonly kvWriteDuration: Histogram;
  private readonly kvWrites: Counter;
  private readonly conflicts: Counter;
  private readonly consumerPending: Gauge<"partition">;
  private readonly partitionEvents: Counter<"event">;
  private readonly fetchFailures: Counter;
  private readonly unreadableStates: Counter;
  private readonly limits: Counter<"limit">;
  private readonly rereads: Counter;
  private readonly skipped: Counter<"reason">;
  private readonly expired: Counter;
  private readonly stateWritesRefused: Counter;

  constructor(registry: Registry, partitions: number, gauges: SequencerGauges) {
    const registers = [registry];
    this.messages = new Counter({
      name: `${METRIC_PREFIX}sequencer_messages_total`,
      help: "Messages delivered from the stream, by what became of them",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of Object.values(DeliveryOutcome)) this.messages.inc({ outcome }, 0);
    this.kvWriteDuration = new Histogram({
      name: `${METRIC_PREFIX}sequencer_kv_write_duration_seconds`,
      help: "Latency of channel state writes to KV, conflicts and failures included",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.kvWrites = new Counter({
      name: `${METRIC_PREFIX}sequencer_kv_writes_total`,
      help: "Channel state writes committed to KV",
      registers,
    });
    this.conflicts = new Counter({
      name: `${METRIC_PREFIX}sequencer_revision_conflicts_total`,
      help: "Channel state writes refused because another writer changed the entry first",
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_buffered_messages`,
      help: "Messages waiting behind a gap in the channels held in memory",
      registers,
      collect() {
        this.set(gauges.bufferedMessages());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_buffered_bytes`,
      help: "Encoded bytes of the parked messages the actors hold in memory (bounded by MAX_BUFFERED_BYTES)",
      registers,
      collect() {
        this.set(gauges.bufferedBytes?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_open_gaps`,
      help: "Channels of the owned partitions whose gap is open (messages parked in the stream, waiting for a missing number)",
      registers,
      collect() {
        this.set(gauges.openGaps?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_unlaunched_channels`,
      help: "Channels of the owned partitions with a state entry but no launch (past MAX_UNLAUNCHED_CHANNELS the oldest are given up)",
      registers,
      collect() {
        this.set(gauges.unlaunchedChannels?.() ?? 0);
      },
    });
    this.limits = new Counter({
      name: `${METRIC_PREFIX}sequencer_limit_reached_total`,
      help: "Times a sequencer bound was reached; what it refused stays parked in the stream (nothing accepted is lost)",
      labelNames: ["limit"],
      registers,
    });
    for (const limit of Object.values(SequencerLimit)) this.limits.inc({ limit }, 0);
    this.rereads = new Counter({
      name: `${METRIC_PREFIX}sequencer_reread_messages_total`,
      help: "Messages read back from the events stream to close a gap (after a restart, a takeover, or a bound)",
      registers,
    });
    this.skipped = new Counter({
      name: `${METRIC_PREFIX}sequencer_gaps_skipped_total`,
      help: "Ranges of numbers a rocket gave up (it records them): reason deadline (GAP_POLICY=skip past GAP_DEADLINE_SECONDS), retention (the stream removed parked messages before they could be applied)",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of ["deadline", "retention"]) this.skipped.inc({ reason }, 0);
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_quarantined_channels`,
      help: "Channels of the owned partitions whose entry did not decode and is quarantined: their messages wait in the stream for `npm run repair`",
      registers,
      collect() {
        this.set(gauges.quarantinedChannels?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_retention_within_deadline`,
      help: "1 while the events stream keeps messages (max_age) no longer than GAP_DEADLINE_SECONDS: a gap may then lose its parked messages before its deadline",
      registers,
      collect() {
        this.set(gauges.retentionWithinDeadline?.() ? 1 : 0);
      },
    });
    this.expired = new Counter({
      name: `${METRIC_PREFIX}sequencer_unlaunched_expired_total`,
      help: "Channels that never launched within GAP_DEADLINE_SECONDS whose state entry was removed (their messages stay in the stream)",
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_oldest_gap_age_seconds`,
      help: "How long the oldest gap among the owned partitions' channels has been open",
      registers,
      collect() {
        this.set(gauges.oldestGapAgeSeconds());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_partitions_owned`,
      help: "Partitions whose lease this instance holds",
      registers,
      collect() {
        this.set(gauges.partitionsOwned());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_partitions_unacquired`,
      help: "Partitions assigned to this instance that it has not acquired for longer than a lease TTL (retried; alerts)",
      registers,
      collect() {
        this.set(gauges.partitionsUnacquired());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_partitions_total`,
      help: "The deployment's partition count",
      registers,
    }).set(partitions);
    this.consumerPending = new Gauge({
      name: `${METRIC_PREFIX}sequencer_consumer_pending_messages`,
      help: "Messages not yet delivered from each owned partition (consumer lag)",
      labelNames: ["partition"],
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}sequencer_actors`,
      help: "Channel actors held in memory",
      registers,
      collect() {
        this.set(gauges.actors());
      },
    });
    this.partitionEvents = new Counter({
      name: `${METRIC_PREFIX}sequencer_partition_events_total`,
      help: "Partitions acquired, released and lost by this instance",
      labelNames: ["event"],
      registers,
    });
    for (const event of Object.values(PartitionEvent)) this.partitionEvents.inc({ event }, 0);
    this.fetchFailures = new Counter({
      name: `${METRIC_PREFIX}sequencer_fetch_failures_total`,
      help: "Pulls from an owned partition that failed and were retried (missed heartbeats on a busy server, a consumer being recreated)",
      registers,
    });
    this.unreadableStates = new Counter({
      name: `${METRIC_PREFIX}sequencer_unreadable_states_total`,
      help: "Channel entries that did not decode and were quarantined (their messages kept in the stream until `npm run repair`)",
      registers,
    });
    this.stateWritesRefused = new Counter({
      name: `${METRIC_PREFIX}sequencer_state_writes_refused_total`,
      help: "Channel state writes the state bucket refused for lack of room (STATE_MAX_BYTES or the server's storage): their messages are not acked and come back",
      registers,
    });
  }

  stateWriteRefused(): void {
    this.stateWritesRefused.inc();
  }

  limitReached(limit: SequencerLimit): void {
    this.limits.inc({ limit });
  }

  reread(messages: number): void {
    this.rereads.inc(messages);
  }

  gapSkipped(reason: string): void {
    this.skipped.inc({ reason });
  }

  unlaunchedExpired(): void {
    this.expired.inc();
  }

  quarantined(): void {
    this.unreadableStates.inc();
  }

  settled(outcome: DeliveryOutcome, count = 1): void {
    this.messages.inc({ outcome }, count);
  }

  kvWrite(seconds: number, committed: boolean): void {
    this.kvWriteDuration.observe(seconds);
    if (committed) this.kvWrites.inc();
  }

  revisionConflict(): void {
    this.conflicts.inc();
  }

  fetchFailed(): void {
    this.fetchFailures.inc();
  }

  partitionEvent(event: PartitionEvent): void {
    this.partitionEvents.inc({ event });
  }

  consumerLag(partition: number, pending: number): void {
    this.consumerPending.set({ partition: String(partition) }, pending);
  }

  forgetPartition(partition: number): void {
    this.consumerPending.remove({ partition: String(partition) });
  }
}
