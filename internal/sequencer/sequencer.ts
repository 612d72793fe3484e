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
  private readonly scanAbort = new AbortController();

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
      partitionsOwned: () => this.ownership.owned,
      partitionsUnacquired: () => this.ownership.unacquired().length,
      actors: () => this.registry.size,
    });
    this.registry = new ActorRegistry(
      ports.states,
      decodedParked(ports.parked),
      new Limiter(settings.kvConcurrency),
      { fresh: (partition) => this.ownership.leaseFresh(partition) },
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
    this.scanUnlaunched();
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
   * In the background, once: finds the never-launched channels' entries
   * already in the bucket (an earlier instance's), so they count towards
   * MAX_UNLAUNCHED_CHANNELS and are given up at their deadline. Removal is
   * by compare-and-set, so several instances finding the same entry is safe.
   */
  private scanUnlaunched(): void {
    const scan = this.ports.states.scanUnlaunched;
    if (!scan) return;
    const { partitions } = this.settings;
    scan
      .call(this.ports.states, (channel, since) => this.registry.foundUnlaunched(channel, partitionOf(channel, partitions), since), this.scanAbort.signal)
      .then(
        () => this.log.debug({ unlaunched: this.registry.unlaunched }, "never-launched channels found in the state bucket"),
        (err: unknown) => this.log.warn({ err }, "could not scan the state bucket for never-launched channels; they are reviewed when next written"),
      );
  }

  /** Stops pulling, finishes in-flight writes, releases every lease and leaves. */
  async stop(): Promise<void> {
    this.scanAbort.abort();
    clearInterval(this.lagTimer);
    await this.ownership.stop();
    this.registry.stop();
  }

  private startWorker(partition: number): void {
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
