// What the actor and registry tests share: a real nats-server with the
// project's topology (one partition), a fresh state bucket per test, and
// deliveries that carry the stream sequence their message really has, so
// parked messages can be read back as in production.

import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { RocketMessage } from "../domain/message.js";
import { ChannelStateStore } from "../nats/channel-state-store.js";
import { StreamParkedMessages } from "../nats/parked-messages.js";
import { eventSubject, openBucket, provisionTopology } from "../nats/topology.js";
import type { Logger } from "../observability/logger.js";
import { NatsServer } from "../testing/nats-server.js";
import { ActorRegistry, type RegistrySettings } from "./actor-registry.js";
import { GapPolicy, type Delivery } from "./channel-actor.js";
import type { ChannelStates } from "./channel-states.js";
import { Limiter } from "./limiter.js";
import { SequencerMetrics } from "./metrics.js";
import { decodedParked } from "./partition-worker.js";

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

export class StreamFixture {
  private buckets = 0;
  private constructor(
    readonly server: NatsServer,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
  ) {}

  static async start(): Promise<StreamFixture> {
    const server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    await provisionTopology(nc, { partitions: 1, replicas: 1, duplicateWindowSeconds: 120 }, silent);
    return new StreamFixture(server, nc, jetstream(nc));
  }

  async stop(): Promise<void> {
    await this.nc.close();
    await this.server.dispose();
  }

  async freshStore(): Promise<ChannelStateStore> {
    this.buckets += 1;
    return new ChannelStateStore(await openBucket(new Kvm(this.js), `actor_test_${this.buckets}`, 1));
  }

  /** Stores the messages in the events stream (partition 0) and returns deliveries carrying their real sequences. */
  async publish(messages: RocketMessage[], events: string[] = []): Promise<TestDelivery[]> {
    const deliveries: TestDelivery[] = [];
    for (const m of messages) {
      const ack = await this.js.publish(eventSubject(0, m.metadata.channel), JSON.stringify(m));
      deliveries.push(new TestDelivery(m, ack.seq, events));
    }
    return deliveries;
  }

  async registry(store: ChannelStates, overrides: Partial<RegistrySettings> = {}, options: { log?: Logger; now?: () => number; wallNow?: () => number } = {}) {
    const metricsRegistry = new Registry();
    const jsm = await jetstreamManager(this.nc);
    const holder: { registry?: ActorRegistry } = {};
    const metrics = new SequencerMetrics(metricsRegistry, 1, {
      bufferedMessages: () => holder.registry?.bufferedMessages ?? 0,
      bufferedBytes: () => holder.registry?.bufferedBytesHeld ?? 0,
      openGaps: () => holder.registry?.openGaps ?? 0,
      unlaunchedChannels: () => holder.registry?.unlaunched ?? 0,
      oldestGapAgeSeconds: () => holder.registry?.oldestGapAgeSeconds() ?? 0,
      partitionsOwned: () => 0,
      partitionsUnacquired: () => 0,
      actors: () => holder.registry?.size ?? 0,
    });
    const registry = new ActorRegistry(
      store,
      decodedParked(new StreamParkedMessages(this.js, jsm, 2000)),
      new Limiter(8),
      { ...defaultSettings, ...overrides },
      metrics,
      options.log ?? silent,
      options.now,
      options.wallNow,
    );
    holder.registry = registry;
    const value = async (name: string, labels: Record<string, string> = {}) => {
      const m = await metricsRegistry.getSingleMetric(name)?.get();
      return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
    };
    return { registry, value };
  }
}

export async function settledAll(deliveries: { settled: unknown }[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (deliveries.some((d) => d.settled === undefined)) {
    if (Date.now() > deadline) throw new Error("deliveries not settled in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
