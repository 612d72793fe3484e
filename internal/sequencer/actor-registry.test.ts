// The actor registry against a real KV bucket: bounded memory (idle
// eviction, the cap), the buffered and gap-age gauges, and dropping a
// partition's actors at once.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { RocketMessage } from "../domain/message.js";
import { ChannelStateStore } from "../nats/channel-state-store.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import { ActorRegistry } from "./actor-registry.js";
import type { Delivery } from "./channel-actor.js";
import { Limiter } from "./limiter.js";
import { SequencerMetrics } from "./metrics.js";

let server: NatsServer;
let nc: NatsConnection;
let store: ChannelStateStore;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  store = new ChannelStateStore(await openBucket(new Kvm(jetstream(nc)), "registry_test", 1));
});

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

class Settle implements Delivery {
  settled: string | undefined;
  constructor(readonly message: RocketMessage) {}
  ack(): void {
    this.settled = "ack";
  }
  nak(): void {
    this.settled = "nak";
  }
}

function registry(options: { maxActors?: number; actorIdleMs?: number } = {}) {
  let clock = 0;
  const r = new ActorRegistry(
    store,
    new Limiter(4),
    { maxPending: 100, maxPendingBytes: 1_000_000, retryDelayMs: 100, maxActors: options.maxActors ?? 100, actorIdleMs: options.actorIdleMs ?? 1000 },
    new SequencerMetrics(new Registry(), 1, {
      bufferedMessages: () => 0,
      oldestGapAgeSeconds: () => 0,
      partitionsOwned: () => 0,
      partitionsUnacquired: () => 0,
      actors: () => 0,
    }),
    pino({ level: "silent" }),
    () => clock,
  );
  return { r, advance: (ms: number) => (clock += ms) };
}

async function deliverAll(r: ActorRegistry, partition: number, messages: RocketMessage[]): Promise<Settle[]> {
  const deliveries = messages.map((m) => new Settle(m));
  for (const d of deliveries) r.deliver(partition, d);
  const deadline = Date.now() + 10_000;
  while (deliveries.some((d) => d.settled === undefined) && Date.now() < deadline) await new Promise((x) => setTimeout(x, 5));
  return deliveries;
}

describe("actor registry", () => {
  it("evicts actors idle longer than ACTOR_IDLE_MS and keeps busy or recent ones", async () => {
    const { r, advance } = registry({ actorIdleMs: 1000 });
    await deliverAll(r, 0, rocketMessages("idle-a", 2, new Rng(1)));
    advance(600);
    await deliverAll(r, 0, rocketMessages("idle-b", 2, new Rng(2)));
    advance(600);
    r.evictIdle();
    expect(r.size).toBe(1);
    advance(600);
    r.evictIdle();
    expect(r.size).toBe(0);
  });

  it("stays within MAX_ACTORS by evicting the least recently active idle actors", async () => {
    const { r, advance } = registry({ maxActors: 3 });
    for (let i = 0; i < 6; i += 1) {
      await deliverAll(r, 0, rocketMessages(`capped-${i}`, 1, new Rng(i)));
      advance(10);
    }
    expect(r.size).toBeLessThanOrEqual(3);
    // An evicted channel's state is in KV: a later message continues from it.
    const more = rocketMessages("capped-0", 3, new Rng(0));
    expect((await deliverAll(r, 0, more)).map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    expect((await store.load("capped-0"))?.state.lastApplied).toBe(3);
  });

  it("counts buffered messages and reports how long the oldest gap has been open", async () => {
    const { r, advance } = registry();
    const messages = rocketMessages("gap-age", 4, new Rng(3));
    await deliverAll(r, 0, messages.slice(2));
    expect(r.bufferedMessages).toBe(2);
    advance(2500);
    expect(r.oldestGapAgeSeconds()).toBe(2.5);
    await deliverAll(r, 0, messages.slice(0, 2));
    expect(r.bufferedMessages).toBe(0);
    expect(r.oldestGapAgeSeconds()).toBe(0);
  });

  it("drops a lost partition's actors at once, naking what they had not started", async () => {
    const { r } = registry();
    // From number 2 on: the first batch buffers, so a late commit would show in the gauge.
    const messages = rocketMessages("dropped", 30, new Rng(4)).slice(1);
    const deliveries = messages.map((m) => new Settle(m));
    for (const d of deliveries) r.deliver(7, d);
    r.dropPartition(7);
    expect(r.size).toBe(0);
    expect(r.bufferedMessages).toBe(0);
    const deadline = Date.now() + 5000;
    while (deliveries.some((d) => d.settled === undefined) && Date.now() < deadline) await new Promise((x) => setTimeout(x, 5));
    // The first one was already being written when the partition was lost; the rest go back.
    expect(deliveries.slice(1).every((d) => d.settled === "nak")).toBe(true);
    expect(r.bufferedMessages).toBe(0);
  });
});
