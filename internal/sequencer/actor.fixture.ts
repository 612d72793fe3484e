// What the actor and registry tests share, in memory (no nats-server): an
// events stream (one partition's subjects and sequences), a fresh state
// bucket per test, and deliveries that carry the stream sequence their
// message really has, so parked messages are read back as in production.
// The memory stream and bucket are held to the JetStream ones by
// parked-messages.contract.test.ts and channel-states.contract.test.ts.
//
// The adapters answer on timers (internal/testing/round-trip.ts): the tests
// run on vitest's fake timers, and `settledAll` runs every timer until the
// system is quiet, so nothing sleeps and a delivery never settled fails at
// once instead of at a timeout.

import { afterEach, beforeEach, vi } from "vitest";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { RocketMessage } from "../domain/message.js";
import type { Logger } from "../observability/logger.js";
import { MemoryChannelStates, type MemoryChannelStatesOptions } from "../testing/memory-channel-states.js";
import { MemoryEventStream } from "../testing/memory-event-stream.js";
import { ActorRegistry, type RegistrySettings } from "./actor-registry.js";
import { GapPolicy, type Delivery } from "./channel-actor.js";
import type { ChannelStates } from "./channel-states.js";
import { Limiter } from "./limiter.js";
import { SequencerMetrics } from "./metrics.js";

export const silent = pino({ level: "silent" });

export const defaultSettings: RegistrySettings = {
  maxPending: 1000,
  retryDelayMs: 1234,
  gapPolicy: GapPolicy.Wait,
  gapDeadlineMs: 3_600_000,
  maxActors: 100,
  actorIdleMs: 60_000,
  maxBufferedMessages: 100_000,
  maxBufferedBytes: 64 * 2 ** 20,
  maxUnlaunchedChannels: 1000,
};

export class TestDelivery implements Delivery {
  settled: "ack" | "nak" | undefined;
  nakDelay: number | undefined;
  constructor(
    readonly message: RocketMessage,
    readonly seq: number,
    private readonly events: string[] = [],
  ) {}
  ack(): void {
    this.settled = "ack";
    this.events.push(`ack ${this.message.metadata.messageNumber}@${this.seq}`);
  }
  nak(delayMs?: number): void {
    this.settled = "nak";
    this.nakDelay = delayMs;
    this.events.push(`nak ${this.message.metadata.messageNumber}@${this.seq}`);
  }
}

export class ActorFixture {
  readonly stream = new MemoryEventStream();

  freshStore(options: MemoryChannelStatesOptions = {}): MemoryChannelStates {
    return new MemoryChannelStates(options);
  }

  /** Stores the messages in the events stream (partition 0) and returns deliveries carrying their sequences. */
  async publish(messages: RocketMessage[], events: string[] = []): Promise<TestDelivery[]> {
    return messages.map((m) => new TestDelivery(m, this.stream.publish(0, m), events));
  }

  async registry(
    store: ChannelStates,
    overrides: Partial<RegistrySettings> = {},
    options: { log?: Logger; now?: () => number; wallNow?: () => number; partitions?: number[] } = {},
  ) {
    const metricsRegistry = new Registry();
    const holder: { registry?: ActorRegistry } = {};
    const metrics = new SequencerMetrics(metricsRegistry, 1, {
      bufferedMessages: () => holder.registry?.bufferedMessages ?? 0,
      bufferedBytes: () => holder.registry?.bufferedBytesHeld ?? 0,
      openGaps: () => holder.registry?.openGaps ?? 0,
      unlaunchedChannels: () => holder.registry?.unlaunched ?? 0,
      quarantinedChannels: () => holder.registry?.quarantined ?? 0,
      oldestGapAgeSeconds: () => holder.registry?.oldestGapAgeSeconds() ?? 0,
      partitionsOwned: () => 0,
      partitionsUnacquired: () => 0,
      actors: () => holder.registry?.size ?? 0,
    });
    const registry = new ActorRegistry(
      store,
      this.stream.parked(),
      new Limiter(8),
      { ...defaultSettings, ...overrides },
      metrics,
      options.log ?? silent,
      options.now,
      options.wallNow,
    );
    holder.registry = registry;
    // The tests deliver to these partitions: owned, so their gaps are tracked and reviewed.
    for (const p of options.partitions ?? [0, 7]) registry.beginPartition(p);
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const m = await metricsRegistry.getSingleMetric(name)?.get();
      return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
    };
    return { registry, value };
  }
}

/** Puts every test of the calling file on fake timers (the memory adapters answer on timers). */
export function onFakeTimers(): void {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** Runs one sweep of the registry (its reads of the stream answer on timers) and everything it set off. */
export async function swept(registry: { sweep(): Promise<void> }): Promise<void> {
  const sweep = registry.sweep();
  await vi.runAllTimersAsync();
  await sweep;
  await vi.runAllTimersAsync();
}

/** Runs every timer until nothing is left to do; throws when a delivery is still unsettled then (it never will be). */
export async function settledAll(deliveries: { settled: unknown }[]): Promise<void> {
  await vi.runAllTimersAsync();
  const unsettled = deliveries.filter((d) => d.settled === undefined).length;
  if (unsettled > 0) throw new Error(`${unsettled} of ${deliveries.length} deliveries never settled`);
}
