// The sequencer runtime: ownership decides which partitions this instance
// consumes; a worker per owned partition pulls messages; channel actors turn
// them into committed state. Built from ports, so it holds no NATS types;
// cmd/sequencer wires the NATS adapters in.

import type { Registry } from "prom-client";
import { partitionOf } from "../domain/partition.js";
import type { Logger } from "../observability/logger.js";
import { ActorRegistry } from "./actor-registry.js";
import type { GapPolicy } from "./channel-actor.js";
import type { ChannelStates } from "./channel-states.js";
import { Limiter } from "./limiter.js";
import { SequencerMetrics } from "./metrics.js";
import type { LeaseStore } from "./lease-store.js";
import { Ownership, type ClusterOwnership } from "./ownership.js";
import { decodedParked, PartitionWorker, type ParkedSource, type PartitionSource } from "./partition-worker.js";

export interface SequencerSettings {
  instanceId: string;
  partitions: number;
  leaseTtlMs: number;
  heartbeatMs: number;
  /** Parked messages one channel keeps in memory, and the numbers one re-read keeps. */
  maxPendingPerChannel: number;
  retryDelayMs: number;
  gapPolicy: GapPolicy;
  gapDeadlineMs: number;
  maxBufferedMessages: number;
  maxBufferedBytes: number;
  maxUnlaunchedChannels: number;
  maxActors: number;
  actorIdleMs: number;
  kvConcurrency: number;
  /** How long an idle channel's state write may wait to leave with others' (STATE_WRITE_LINGER_MS). */
  writeLingerMs?: number;
  fetchBatch: number;
  fetchExpiresMs: number;
  /** Most messages per partition with the actors and unsettled. */
  maxInFlightPerPartition: number;
  lagPollMs: number;
}

/** How often the state bucket is scanned again for the owned partitions' gaps: a quarter of the gap deadline, within 5 s to 10 min. */
export function rescanIntervalMs(gapDeadlineMs: number): number {
  return Math.min(600_000, Math.max(5000, gapDeadlineMs / 4));
}

export interface SequencerPorts {
  states: ChannelStates;
  /** Reads a channel's messages back from the events stream (StreamParkedMessages). */
  parked: ParkedSource;
  leases: LeaseStore;
  /** The partition's consumer; created (idempotently) on first fetch. */
  partition(partition: number): PartitionSource;
}

export class Sequencer {
  private readonly registry: ActorRegistry;
  private readonly ownership: Ownership;
  private readonly workers = new Map<number, PartitionWorker>();
  private readonly metrics: SequencerMetrics;
  private lagTimer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly scanAbort = new AbortController();
  private started = false;
  /** A scan of the state bucket's gaps is running, or one is due after it (partitions were taken meanwhile). */
  private scanning: Promise<void> | undefined;
  private rescan = false;

  constructor(
    private readonly ports: SequencerPorts,
    private readonly settings: SequencerSettings,
    metricsRegistry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new SequencerMetrics(metricsRegistry, settings.partitions, {
      bufferedMessages: () => this.registry.bufferedMessages,
      bufferedBytes: () => this.registry.bufferedBytesHeld,
      openGaps: () => this.registry.openGaps,
      unlaunchedChannels: () => this.registry.unlaunched,
      oldestGapAgeSeconds: () => this.registry.oldestGapAgeSeconds(),
      retentionWithinDeadline: () => this.registry.retentionWithinDeadline,
      quarantinedChannels: () => this.registry.quarantined,
      partitionsOwned: () => this.ownership.owned,
      partitionsUnacquired: () => this.ownership.unacquired().length,
      actors: () => this.registry.size,
    });
    this.registry = new ActorRegistry(
      ports.states,
      decodedParked(ports.parked),
      new Limiter(settings.kvConcurrency),
      {
        maxPending: settings.maxPendingPerChannel,
        retryDelayMs: settings.retryDelayMs,
        gapPolicy: settings.gapPolicy,
        gapDeadlineMs: settings.gapDeadlineMs,
        maxBufferedMessages: settings.maxBufferedMessages,
        maxBufferedBytes: settings.maxBufferedBytes,
        maxUnlaunchedChannels: settings.maxUnlaunchedChannels,
        maxActors: settings.maxActors,
        actorIdleMs: settings.actorIdleMs,
        writeLingerMs: settings.writeLingerMs,
      },
      this.metrics,
      log,
    );
    this.ownership = new Ownership(
      ports.leases,
      {
        instanceId: settings.instanceId,
        partitions: settings.partitions,
        leaseTtlMs: settings.leaseTtlMs,
        heartbeatMs: settings.heartbeatMs,
      },
      {
        acquired: (p) => this.startWorker(p),
        release: (p) => this.releaseWorker(p),
        lost: (p) => this.loseWorker(p),
        event: (e) => this.metrics.partitionEvent(e),
      },
      log,
    );
  }

  /** Joins and takes the first partitions; when it throws (NATS failing over), nothing is left running and it may be called again. */
  async start(): Promise<void> {
    await this.ownership.start();
    this.registry.start();
    this.started = true;
    this.scanGaps();
    // Again now and then: a former owner that had not yet learned it lost a partition may have written a gap after
    // this instance's scan of it (its writes are compare-and-set, so they are right, but this instance would not know).
    this.rescanTimer = setInterval(() => this.scanGaps(), rescanIntervalMs(this.settings.gapDeadlineMs));
    this.rescanTimer.unref();
    this.lagTimer = setInterval(() => this.pollLag(), this.settings.lagPollMs);
    this.lagTimer.unref();
  }

  /** Undefined when healthy, else why not. */
  health(): string | undefined {
    return this.ownership.health();
  }

  ownedPartitions(): number[] {
    return this.ownership.ownedPartitions();
  }

  /** Every partition's lease and the live members, as this instance sees them. */
  clusterView(): ClusterOwnership {
    return this.ownership.clusterView();
  }

  /**
   * In the background: finds the gaps other instances recorded in the
   * partitions this one owns (when it starts, and again after it takes
   * partitions), so they count towards MAX_UNLAUNCHED_CHANNELS and are
   * reviewed on time though no message of theirs arrives. Reviews act by
   * compare-and-set, so a gap found twice, or by two instances, is safe.
   */
  private scanGaps(): void {
    const scan = this.ports.states.scanGaps;
    if (!scan) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    const { partitions } = this.settings;
    this.scanning = scan
      .call(this.ports.states, (channel, gap) => this.registry.foundGap(channel, partitionOf(channel, partitions), gap), this.scanAbort.signal)
      .then(
        () => this.log.debug({ gaps: this.registry.openGaps, unlaunched: this.registry.unlaunched }, "gaps found in the state bucket"),
        (err: unknown) => this.log.warn({ err }, "could not scan the state bucket for gaps; a gap is reviewed once its channel is next written"),
      )
      .finally(() => {
        this.scanning = undefined;
        if (this.rescan && !this.scanAbort.signal.aborted) {
          this.rescan = false;
          this.scanGaps();
        }
      });
  }

  /** Stops pulling, finishes in-flight writes, releases every lease and leaves. */
  async stop(): Promise<void> {
    this.scanAbort.abort();
    clearInterval(this.lagTimer);
    clearInterval(this.rescanTimer);
    await this.ownership.stop();
    this.registry.stop();
  }

  private startWorker(partition: number): void {
    this.registry.beginPartition(partition);
    // Taken after the start's scan: its gaps were recorded by other instances.
    if (this.started) this.scanGaps();
    const worker = new PartitionWorker(
      partition,
      this.ports.partition(partition),
      this.registry,
      {
        fetchBatch: this.settings.fetchBatch,
        fetchExpiresMs: this.settings.fetchExpiresMs,
        maxInFlight: this.settings.maxInFlightPerPartition,
        retryDelayMs: this.settings.retryDelayMs,
      },
      this.metrics,
      this.log,
    );
    this.workers.set(partition, worker);
    worker.start();
  }

  private async releaseWorker(partition: number): Promise<void> {
    const worker = this.workers.get(partition);
    if (!worker) return;
    await worker.release();
    if (this.workers.get(partition) !== worker) return;
    this.workers.delete(partition);
    this.metrics.forgetPartition(partition);
  }

  private loseWorker(partition: number): void {
    const worker = this.workers.get(partition);
    if (!worker) return;
    worker.lose();
    this.workers.delete(partition);
    this.metrics.forgetPartition(partition);
  }

  private pollLag(): void {
    for (const [partition, worker] of this.workers) {
      worker.lag().then(
        (pending) => {
          if (this.workers.get(partition) === worker) this.metrics.consumerLag(partition, pending);
        },
        (err: unknown) => this.log.debug({ err, partition }, "consumer lag unavailable"),
      );
    }
  }
}
