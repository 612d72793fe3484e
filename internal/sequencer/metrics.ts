// The sequencer's Prometheus metrics, with the names every dashboard and
// alert relies on. Label values are bounded: an outcome, a partition event,
// a partition number (at most the partition count); never a channel id.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../observability/metrics.js";

/** What became of one delivered message. */
export const MessageOutcome = {
  Applied: "applied",
  Duplicate: "duplicate",
  Buffered: "buffered",
  /** Not a valid message: terminated, never redelivered. */
  Rejected: "rejected",
  /** The channel's buffer was full: handed back for later. */
  Overflow: "overflow",
} as const;
export type MessageOutcome = (typeof MessageOutcome)[keyof typeof MessageOutcome];

export const PartitionEvent = { Acquired: "acquired", Released: "released", Lost: "lost" } as const;
export type PartitionEvent = (typeof PartitionEvent)[keyof typeof PartitionEvent];

/** Live figures the gauges read at scrape time. */
export interface SequencerGauges {
  bufferedMessages(): number;
  oldestGapAgeSeconds(): number;
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
  private readonly stateWritesRefused: Counter;

  constructor(registry: Registry, partitions: number, gauges: SequencerGauges) {
    const registers = [registry];
    this.messages = new Counter({
      name: `${METRIC_PREFIX}sequencer_messages_total`,
      help: "Messages delivered from the stream, by what became of them",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of Object.values(MessageOutcome)) this.messages.inc({ outcome }, 0);
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
      name: `${METRIC_PREFIX}sequencer_oldest_gap_age_seconds`,
      help: "How long the oldest gap among the channels held in memory has been open",
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
      help: "Reads of a channel state from KV that was invalid and not acted on (its messages held back until an operator repairs it)",
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

  unreadableState(): void {
    this.unreadableStates.inc();
  }

  settled(outcome: MessageOutcome, count = 1): void {
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
