// The sequencer runtime in-process against a real nats-server: exact state
// from shuffled, duplicated streams; buffered gaps that survive a restart;
// invalid messages that never block; overflow that backs off and completes.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { createRegistry } from "../../internal/observability/metrics.js";
import { ChannelStateStore } from "../../internal/nats/channel-state-store.js";
import { consumerName } from "../../internal/nats/partition-consumer.js";
import { eventSubject, provisionTopology, STATE_BUCKET, STREAM_NAME } from "../../internal/nats/topology.js";
import { partitionOf } from "../../internal/domain/partition.js";
import type { RocketMessage } from "../../internal/domain/message.js";
import { apply, type Rocket } from "../../internal/domain/rocket.js";
import type { Sequencer } from "../../internal/sequencer/sequencer.js";
import { NatsServer } from "../../internal/testing/nats-server.js";
import { makeTraffic, rocketMessages, Rng, shuffledWithDuplicates, subjectOf, type Traffic } from "../../internal/testing/rocket-traffic.js";
import { createSequencer, type RuntimeConfig } from "./runtime.js";
import type { Registry } from "prom-client";

const PARTITIONS = 8;
const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

const baseConfig: RuntimeConfig = {
  instanceId: "runtime-test",
  maxPendingPerChannel: 10_000,
  leaseTtlMs: 2000,
  heartbeatMs: 250,
  actorIdleMs: 60_000,
  maxActors: 10_000,
  kvConcurrency: 32,
  fetchBatch: 200,
  maxAckPending: 2000,
  ackWaitMs: 5000,
  retryDelayMs: 200,
  lagPollMs: 500,
};

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let store: ChannelStateStore;
const running: Sequencer[] = [];

async function startSequencer(overrides: Partial<RuntimeConfig> = {}): Promise<{ sequencer: Sequencer; registry: Registry }> {
  const provisioned = await provisionTopology(nc, { partitions: PARTITIONS, replicas: 1, duplicateWindowSeconds: 120 }, log);
  const registry = createRegistry("sequencer");
  const sequencer = await createSequencer(nc, provisioned, { ...baseConfig, ...overrides }, registry, log);
  await sequencer.start();
  running.push(sequencer);
  return { sequencer, registry };
}

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((s) => s.stop()));
}

async function publishRaw(items: Array<{ subject: string; data: string }>): Promise<void> {
  for (let i = 0; i < items.length; i += 500) {
    await Promise.all(items.slice(i, i + 500).map((m) => js.publish(m.subject, m.data)));
  }
}

async function publish(messages: RocketMessage[]): Promise<void> {
  await publishRaw(messages.map((m) => ({ subject: subjectOf(m, PARTITIONS), data: JSON.stringify(m) })));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once every channel holds its final state; returns the channels whose rocket differs from the expected one. */
async function waitForFinalStates(traffic: Traffic, timeoutMs = 30_000): Promise<string[]> {
  await waitFor(
    "every channel's final state",
    async () => {
      for (const [channel, messages] of traffic.byChannel) {
        const stored = await store.load(channel);
        if (!stored || stored.state.lastApplied !== messages.length || stored.state.pending.length !== 0) return undefined;
      }
      return true;
    },
    timeoutMs,
  );
  const wrong: string[] = [];
  for (const [channel, rocket] of traffic.expected) {
    const stored = await store.load(channel);
    if (JSON.stringify(stored?.state.rocket) !== JSON.stringify(rocket)) wrong.push(channel);
  }
  return wrong;
}

async function waitConsumersSettled(): Promise<void> {
  await waitFor("consumers with nothing pending or unacked", async () => {
    for (let p = 0; p < PARTITIONS; p += 1) {
      const info = await jsm.consumers.info(STREAM_NAME, consumerName(p)).catch(() => undefined);
      if (info && (info.num_pending !== 0 || info.num_ack_pending !== 0)) return undefined;
    }
    return true;
  });
}

async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const match = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await provisionTopology(nc, { partitions: PARTITIONS, replicas: 1, duplicateWindowSeconds: 120 }, log);
  store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET));
});

afterEach(stopAll);

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe("sequencer runtime", () => {
  it("turns a shuffled, duplicated stream over many channels into exactly the in-order state", async () => {
    const traffic = makeTraffic({ channels: 120, perChannel: 40, seed: 1 });
    const stream = shuffledWithDuplicates(traffic, 0.1, 2);
    const { registry } = await startSequencer();
    await publish(stream);
    expect(await waitForFinalStates(traffic)).toEqual([]);
    await waitConsumersSettled();
    const applied = await counter(registry, "rockets_sequencer_messages_total", { outcome: "applied" });
    const buffered = await counter(registry, "rockets_sequencer_messages_total", { outcome: "buffered" });
    const duplicate = await counter(registry, "rockets_sequencer_messages_total", { outcome: "duplicate" });
    // Every distinct message was applied or buffered exactly once; every extra copy was a duplicate.
    expect(applied + buffered).toBe(120 * 40);
    expect(duplicate).toBe(stream.length - 120 * 40);
    expect(await counter(registry, "rockets_sequencer_kv_writes_total")).toBeLessThan(stream.length);
    expect(await counter(registry, "rockets_sequencer_partitions_owned")).toBe(PARTITIONS);
  });

  it("keeps buffered messages in KV across a restart, acked, without replaying the stream", async () => {
    const channel = "restart-gap-1";
    const messages = rocketMessages(channel, 10, new Rng(7));
    const first = await startSequencer();
    await publish(messages.slice(1));
    const buffered = await waitFor("the gap to be stored", async () => {
      const s = await store.load(channel);
      return s?.state.pending.length === 9 ? s : undefined;
    });
    expect(buffered.state.lastApplied).toBe(0);
    await waitConsumersSettled();
    await first.sequencer.stop();
    running.splice(running.indexOf(first.sequencer), 1);

    const second = await startSequencer({ instanceId: "runtime-test-2" });
    await publish(messages.slice(0, 1));
    const done = await waitFor("the gap to close", async () => {
      const s = await store.load(channel);
      return s?.state.lastApplied === 10 ? s : undefined;
    });
    expect(done.state.pending).toEqual([]);
    expect(done.state.rocket?.lastMessageNumber).toBe(10);
    // The second instance saw only message 1: the buffered nine came from KV, not from a replay.
    expect(await counter(second.registry, "rockets_sequencer_messages_total", { outcome: "applied" })).toBe(1);
  });

  it("terminates invalid messages without blocking their partition", async () => {
    const channel = "invalid-neighbours";
    const p = partitionOf(channel, PARTITIONS);
    const messages = rocketMessages(channel, 5, new Rng(3));
    const { registry } = await startSequencer();
    await publishRaw([
      { subject: eventSubject(p, channel), data: "not json" },
      { subject: eventSubject(p, channel), data: JSON.stringify({ metadata: { channel }, message: {} }) },
      // Valid, but on a subject of another channel: it must not reach this partition's actors.
      { subject: eventSubject(p, "someone-else"), data: JSON.stringify(messages[0]) },
    ]);
    await publish(messages);
    await waitFor("the valid messages to apply", async () => {
      const s = await store.load(channel);
      return s?.state.lastApplied === 5 ? true : undefined;
    });
    await waitConsumersSettled();
    expect(await counter(registry, "rockets_sequencer_messages_total", { outcome: "rejected" })).toBe(3);
  });

  it("resumes after NATS restarts mid-stream and still ends in exactly the in-order state", async () => {
    const traffic = makeTraffic({ channels: 60, perChannel: 40, seed: 5 });
    const stream = shuffledWithDuplicates(traffic, 0.1, 6);
    await startSequencer();
    const half = Math.floor(stream.length / 2);
    await publish(stream.slice(0, half));
    await server.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await server.launch();
    await waitFor("the client to reconnect", async () => {
      await nc.flush();
      await jsm.streams.info(STREAM_NAME);
      return true;
    });
    await publish(stream.slice(half));
    expect(await waitForFinalStates(traffic, 40_000)).toEqual([]);
    await waitConsumersSettled();
  });

  it("naks messages past a full buffer and completes once the gap closes", async () => {
    const channel = "overflowing-1";
    const messages = rocketMessages(channel, 30, new Rng(11));
    const { registry } = await startSequencer({ maxPendingPerChannel: 5 });
    await publish(messages.slice(1));
    await waitFor("overflow", async () =>
      (await counter(registry, "rockets_sequencer_messages_total", { outcome: "overflow" })) > 0 ? true : undefined,
    );
    const s = await store.load(channel);
    expect(s?.state.pending.length).toBe(5);
    await publish(messages.slice(0, 1));
    const done = await waitFor("the channel to complete", async () => {
      const st = await store.load(channel);
      return st?.state.lastApplied === 30 ? st : undefined;
    });
    expect(done.state.pending).toEqual([]);
    expect(done.state.rocket).toEqual(messages.reduce<Rocket | null>((r, m) => apply(r, m), null));
    await waitConsumersSettled();
  });
});
