// Channel actors against a real KV bucket: acks only after the write that
// holds the message, coalescing, stale writers, failures and byte limits.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { RocketMessage } from "../domain/message.js";
import { apply, type Rocket } from "../domain/rocket.js";
import type { ChannelState } from "../domain/sequencing.js";
import { ChannelStateStore, encodeChannelState, encodeChannelStateFrom, keyForChannel } from "../nats/channel-state-store.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import { ActorRegistry } from "./actor-registry.js";
import { encodedSize, messageJson, type ChannelStates, type Delivery } from "./channel-actor.js";
import { Limiter } from "./limiter.js";
import { SequencerMetrics } from "./metrics.js";

const log = pino({ level: "silent" });
let server: NatsServer;
let nc: NatsConnection;
let kv: KV;
let bucketCount = 0;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

async function freshStore(): Promise<ChannelStateStore> {
  bucketCount += 1;
  kv = await openBucket(new Kvm(jetstream(nc)), `actor_test_${bucketCount}`, 1);
  return new ChannelStateStore(kv);
}

/** A store that records what it saved, and can be told to fail. */
class RecordingStore implements ChannelStates {
  readonly events: string[] = [];
  failNextSaves = 0;
  constructor(private readonly inner: ChannelStateStore) {}
  load(channel: string) {
    return this.inner.load(channel);
  }
  async save(channel: string, state: ChannelState, revision: number, encode: (s: ChannelState) => Uint8Array) {
    if (this.failNextSaves > 0) {
      this.failNextSaves -= 1;
      throw new Error("nats unavailable");
    }
    const next = await this.inner.save(channel, state, revision, encode);
    this.events.push(`saved ${state.lastApplied}/${state.pending.map((m) => m.metadata.messageNumber).join(",")}`);
    return next;
  }
}

class TestDelivery implements Delivery {
  settled: "ack" | "nak" | undefined;
  nakDelay: number | undefined;
  constructor(
    readonly message: RocketMessage,
    private readonly events: string[],
  ) {}
  ack(): void {
    this.settled = "ack";
    this.events.push(`ack ${this.message.metadata.messageNumber}`);
  }
  nak(delayMs?: number): void {
    this.settled = "nak";
    this.nakDelay = delayMs;
    this.events.push(`nak ${this.message.metadata.messageNumber}`);
  }
}

function makeRegistry(store: ChannelStates, overrides: Partial<{ maxPending: number; maxPendingBytes: number }> = {}, logger = log) {
  const metricsRegistry = new Registry();
  const metrics = new SequencerMetrics(metricsRegistry, 1, {
    bufferedMessages: () => 0,
    oldestGapAgeSeconds: () => 0,
    partitionsOwned: () => 0,
    partitionsUnacquired: () => 0,
    actors: () => 0,
  });
  const registry = new ActorRegistry(
    store,
    new Limiter(8),
    { maxPending: 1000, maxPendingBytes: 1_000_000, retryDelayMs: 1234, maxActors: 100, actorIdleMs: 60_000, ...overrides },
    metrics,
    logger,
  );
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const m = await metricsRegistry.getSingleMetric(name)?.get();
    return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  };
  return { registry, value };
}

async function settledAll(deliveries: TestDelivery[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (deliveries.some((d) => d.settled === undefined)) {
    if (Date.now() > deadline) throw new Error("deliveries not settled in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const inOrder = (messages: RocketMessage[]) => messages.reduce<Rocket | null>((r, m) => apply(r, m), null);

describe("channel actor", () => {
  it("acks a message only after the KV write that holds it has committed", async () => {
    const store = new RecordingStore(await freshStore());
    const { registry } = makeRegistry(store);
    const messages = rocketMessages("ack-after-commit", 6, new Rng(1));
    const order = [messages[2]!, messages[0]!, messages[1]!, messages[4]!, messages[3]!, messages[5]!];
    const deliveries = order.map((m) => new TestDelivery(m, store.events));
    for (const d of deliveries) registry.deliver(0, d);
    await settledAll(deliveries);
    for (const d of deliveries) expect(d.settled).toBe("ack");
    // Every ack follows a save whose state covers the message (applied or pending).
    store.events.forEach((event, i) => {
      if (!event.startsWith("ack")) return;
      const n = Number(event.split(" ")[1]);
      const saves = store.events.slice(0, i).filter((e) => e.startsWith("saved"));
      const covered = saves.some((s) => {
        const [last, pending] = s.slice(6).split("/");
        return n <= Number(last) || pending!.split(",").includes(String(n));
      });
      expect(covered, `${event} before a save holding it: ${store.events.join("; ")}`).toBe(true);
    });
    const stored = await store.load("ack-after-commit");
    expect(stored?.state.rocket).toEqual(inOrder(messages));
  });

  it("coalesces everything that arrives during a write into the next single write", async () => {
    const store = new RecordingStore(await freshStore());
    const { registry, value } = makeRegistry(store);
    const messages = rocketMessages("coalescing", 100, new Rng(2));
    const deliveries = messages.map((m) => new TestDelivery(m, store.events));
    for (const d of deliveries) registry.deliver(0, d);
    await settledAll(deliveries);
    // The first delivery starts a write; the other 99 wait for it and go in one more.
    expect(await value("rockets_sequencer_kv_writes_total")).toBe(2);
    expect(await value("rockets_sequencer_messages_total", { outcome: "applied" })).toBe(100);
    expect((await store.load("coalescing"))?.state.rocket).toEqual(inOrder(messages));
  });

  it("acks duplicates of committed state without writing", async () => {
    const store = new RecordingStore(await freshStore());
    const { registry, value } = makeRegistry(store);
    const messages = rocketMessages("duplicates", 3, new Rng(3));
    const first = messages.map((m) => new TestDelivery(m, store.events));
    for (const d of first) registry.deliver(0, d);
    await settledAll(first);
    const writes = await value("rockets_sequencer_kv_writes_total");
    const again = [messages[1]!, messages[0]!, messages[2]!].map((m) => new TestDelivery(m, store.events));
    for (const d of again) registry.deliver(0, d);
    await settledAll(again);
    expect(again.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    expect(await value("rockets_sequencer_kv_writes_total")).toBe(writes);
    expect(await value("rockets_sequencer_messages_total", { outcome: "duplicate" })).toBe(3);
  });

  it("rejects a stale owner's write and recomputes against the newer state, applying nothing twice", async () => {
    const store = await freshStore();
    const channel = "stale-owner";
    const messages = rocketMessages(channel, 8, new Rng(4));
    const events: string[] = [];
    const stale = makeRegistry(store);
    const fresh = makeRegistry(store);

    const early = messages.slice(0, 3).map((m) => new TestDelivery(m, events));
    for (const d of early) stale.registry.deliver(0, d);
    await settledAll(early);
    // The partition moved: the new owner writes 4..6 while the old one still caches revision "after 3".
    const moved = messages.slice(3, 6).map((m) => new TestDelivery(m, events));
    for (const d of moved) fresh.registry.deliver(0, d);
    await settledAll(moved);
    // The stale owner gets 7, 8 and a redelivered 5: its write at the old revision must fail.
    const late = [messages[6]!, messages[4]!, messages[7]!].map((m) => new TestDelivery(m, events));
    for (const d of late) stale.registry.deliver(0, d);
    await settledAll(late);

    expect(await stale.value("rockets_sequencer_revision_conflicts_total")).toBe(1);
    expect(late.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    const stored = await store.load(channel);
    expect(stored?.state.lastApplied).toBe(8);
    expect(stored?.state.pending).toEqual([]);
    expect(stored?.state.rocket).toEqual(inOrder(messages));
  });

  it("naks with a delay and never acks when the write fails, then recovers from a fresh load", async () => {
    const store = new RecordingStore(await freshStore());
    const { registry } = makeRegistry(store);
    const messages = rocketMessages("kv-down", 4, new Rng(5));
    store.failNextSaves = 2;
    const failed = messages.slice(0, 2).map((m) => new TestDelivery(m, store.events));
    for (const d of failed) registry.deliver(0, d);
    await settledAll(failed);
    expect(failed.map((d) => [d.settled, d.nakDelay])).toEqual([
      ["nak", 1234],
      ["nak", 1234],
    ]);
    const retried = messages.map((m) => new TestDelivery(m, store.events));
    for (const d of retried) registry.deliver(0, d);
    await settledAll(retried);
    expect(retried.every((d) => d.settled === "ack")).toBe(true);
    expect((await store.load("kv-down"))?.state.rocket).toEqual(inOrder(messages));
  });

  it("never acts on an invalid stored state: naks with a delay, writes nothing, counts and logs it, and resumes once repaired", async () => {
    const store = new RecordingStore(await freshStore());
    const lines: Record<string, unknown>[] = [];
    const recording = pino({ level: "error" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const { registry, value } = makeRegistry(store, {}, recording);
    const channel = "invalid-stored-state";
    const messages = rocketMessages(channel, 4, new Rng(8));
    // A state with a buffered message ingest would refuse (a bidi override in its mission), as an older release or a hand edit could leave.
    const spoiled = JSON.parse(JSON.stringify({ rocket: inOrder(messages.slice(0, 1)), lastApplied: 1, pending: [messages[2]] }));
    spoiled.pending[0].metadata.messageType = "RocketMissionChanged";
    spoiled.pending[0].message = { newMission: "APOLLO\u202e" };
    const spoiledRevision = await kv.put(keyForChannel(channel), JSON.stringify({ v: 1, ...spoiled }));

    const held = [messages[1]!, messages[3]!].map((m) => new TestDelivery(m, store.events));
    for (const d of held) registry.deliver(0, d);
    await settledAll(held);
    expect(held.map((d) => [d.settled, d.nakDelay])).toEqual([
      ["nak", 1234],
      ["nak", 1234],
    ]);
    expect(store.events.filter((e) => e.startsWith("saved"))).toEqual([]);
    expect((await kv.get(keyForChannel(channel)))?.revision).toBe(spoiledRevision);
    // Counted per read (the second delivery waited in the mailbox and met it again), logged once per channel and interval.
    expect(await value("rockets_sequencer_unreadable_states_total")).toBe(2);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        channel,
        msg: "stored channel state is invalid; its messages are held back (nak'ed) until the entry is repaired",
        problems: [{ path: "pending.0.message.newMission", reason: expect.stringContaining("U+202E") }],
      }),
    ]);

    // Repaired by hand (the buffered message as it really was): the same deliveries now go through.
    await kv.put(keyForChannel(channel), encodeChannelState({ rocket: inOrder(messages.slice(0, 1)), lastApplied: 1, pending: [messages[2]!] }));
    const retried = [messages[1]!, messages[3]!].map((m) => new TestDelivery(m, store.events));
    for (const d of retried) registry.deliver(0, d);
    await settledAll(retried);
    expect(retried.every((d) => d.settled === "ack")).toBe(true);
    expect((await store.load(channel))?.state).toEqual({ rocket: inOrder(messages), lastApplied: 4, pending: [] });
  });

  it("naks instead of buffering past the byte budget, so a state write never outgrows the payload limit", async () => {
    const store = new RecordingStore(await freshStore());
    const messages = rocketMessages("byte-budget", 12, new Rng(6));
    const budget = messages.slice(1, 6).reduce((sum, m) => sum + encodedSize(m), 0);
    const { registry, value } = makeRegistry(store, { maxPendingBytes: budget });
    const ahead = messages.slice(1).map((m) => new TestDelivery(m, store.events));
    for (const d of ahead) registry.deliver(0, d);
    await settledAll(ahead);
    const stored = await store.load("byte-budget");
    expect(stored?.state.pending.map((m) => m.metadata.messageNumber)).toEqual([2, 3, 4, 5, 6]);
    expect(ahead.filter((d) => d.settled === "nak").map((d) => d.message.metadata.messageNumber)).toEqual([7, 8, 9, 10, 11, 12]);
    expect(await value("rockets_sequencer_messages_total", { outcome: "overflow" })).toBe(6);
  });

  it("writes exactly the bytes encodeChannelState would", () => {
    const messages = rocketMessages("encoding-ü-日本-🚀", 6, new Rng(7));
    const states: ChannelState[] = [
      { rocket: null, lastApplied: 0, pending: [] },
      { rocket: null, lastApplied: 0, pending: messages.slice(2) },
      { rocket: inOrder(messages.slice(0, 2)), lastApplied: 2, pending: [messages[4]!] },
      { rocket: inOrder(messages), lastApplied: 6, pending: [] },
    ];
    for (const state of states) {
      expect(Buffer.from(encodeChannelStateFrom(state, messageJson))).toEqual(Buffer.from(encodeChannelState(state)));
    }
  });
});
