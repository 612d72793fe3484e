// The actor registry on the in-memory state bucket and events stream (no
// nats-server; both held to the JetStream ones by the contract tests), on
// fake timers: bounded memory (idle eviction, the cap, the buffered bounds),
// the gauges, and dropping a partition's actors at once.

import { describe, expect, it, vi } from "vitest";
import type { RocketMessage } from "../domain/message.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import type { ActorRegistry } from "./actor-registry.js";
import type { ChannelStates } from "./channel-states.js";
import { GapPolicy } from "./channel-actor.js";
import { encodeChannelState } from "./state-encoding.js";
import { ActorFixture, onFakeTimers, settledAll, swept, type TestDelivery } from "./actor.fixture.js";

const fx = new ActorFixture();
const store = fx.freshStore();
onFakeTimers();

async function registry(options: { maxActors?: number; actorIdleMs?: number; maxBufferedMessages?: number; maxBufferedBytes?: number } = {}) {
  let clock = 0;
  let wall = Date.parse("2026-01-01T00:00:00Z");
  const { registry: r, value } = await fx.registry(
    store,
    { maxPending: 100, retryDelayMs: 100, maxActors: options.maxActors ?? 100, actorIdleMs: options.actorIdleMs ?? 1000, ...options },
    { now: () => clock, wallNow: () => wall },
  );
  return {
    r,
    value,
    advance: (ms: number) => {
      clock += ms;
      wall += ms;
    },
  };
}

async function deliverAll(r: ActorRegistry, partition: number, messages: RocketMessage[]): Promise<TestDelivery[]> {
  const deliveries = await fx.publish(messages);
  for (const d of deliveries) r.deliver(partition, d);
  await vi.runAllTimersAsync();
  return deliveries;
}

describe("actor registry", () => {
  it("evicts actors idle longer than ACTOR_IDLE_MS and keeps busy or recent ones", async () => {
    const { r, advance } = await registry({ actorIdleMs: 1000 });
    await deliverAll(r, 0, rocketMessages("idle-a", 2, new Rng(1)));
    advance(600);
    await deliverAll(r, 0, rocketMessages("idle-b", 2, new Rng(2)));
    advance(600);
    await swept(r);
    expect(r.size).toBe(1);
    advance(600);
    await swept(r);
    expect(r.size).toBe(0);
  });

  it("stays within MAX_ACTORS by evicting the least recently active idle actors", async () => {
    const { r, advance } = await registry({ maxActors: 3 });
    for (let i = 0; i < 6; i += 1) {
      await deliverAll(r, 0, rocketMessages(`capped-${i}`, 1, new Rng(i)));
      advance(10);
    }
    expect(r.size).toBeLessThanOrEqual(3);
    // An evicted channel's state is in KV: a later message continues from it.
    const more = rocketMessages("capped-0", 3, new Rng(0)).slice(1);
    expect((await deliverAll(r, 0, more)).map((d) => d.settled)).toEqual(["ack", "ack"]);
    expect(store.peek("capped-0")?.state.lastApplied).toBe(3);
  });

  it("reloads a launched rocket that a flood of never-launched channels pushed out ahead of the flood's own loads", async () => {
    // Loads of the flood's channels wait at a gate, holding every KV slot (8) and queueing the rest.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const loads: string[] = [];
    const gated: ChannelStates = {
      load: async (channel) => {
        loads.push(channel);
        if (channel.startsWith("flood-")) await gate;
        return store.load(channel);
      },
      save: (channel, state, revision, encode) => store.save(channel, state, revision, encode),
      quarantine: (channel, record, revision) => store.quarantine(channel, record, revision),
      remove: (channel, revision, parkedFrom) => store.remove(channel, revision, parkedFrom),
    };
    let clock = 0;
    const { registry: r } = await fx.registry(gated, { maxPending: 100, retryDelayMs: 100, maxActors: 4, actorIdleMs: 60_000 }, { now: () => clock });
    const fleet = rocketMessages("fleet-1", 2, new Rng(21));
    await deliverAll(r, 0, fleet.slice(0, 1));
    clock += 10;
    // 20 channels that never launch (message 2 only): the idle rocket is the one actor the cap can evict.
    const flood = await fx.publish(Array.from({ length: 20 }, (_, i) => rocketMessages(`flood-${i}`, 2, new Rng(100 + i))[1]!));
    for (const d of flood) r.deliver(0, d);
    const next = await fx.publish(fleet.slice(1));
    for (const d of next) r.deliver(0, d);
    await vi.advanceTimersByTimeAsync(50);
    open();
    await settledAll([...flood, ...next]);
    // The rocket's reload took the first free slot: right after the 8 flood loads that held them.
    const reloaded = loads.lastIndexOf("fleet-1");
    expect(loads.slice(0, reloaded).filter((c) => c.startsWith("flood-"))).toHaveLength(8);
    expect(next[0]!.settled).toBe("ack");
    expect(store.peek("fleet-1")?.state.lastApplied).toBe(2);
  });

  it("counts buffered messages and reports how long the oldest gap has been open", async () => {
    const { r, advance } = await registry();
    const messages = rocketMessages("gap-age", 4, new Rng(3));
    await deliverAll(r, 0, messages.slice(0, 1));
    await deliverAll(r, 0, messages.slice(2));
    expect(r.bufferedMessages).toBe(2);
    advance(2500);
    expect(r.oldestGapAgeSeconds()).toBe(2.5);
    await deliverAll(r, 0, messages.slice(1, 2));
    expect(r.bufferedMessages).toBe(0);
    expect(r.oldestGapAgeSeconds()).toBe(0);
  });

  it("drops a lost partition's actors at once, naking what they had not started", async () => {
    const { r } = await registry();
    // From number 2 on: the first batch buffers, so a late commit would show in the gauge.
    const messages = rocketMessages("dropped", 30, new Rng(4)).slice(1);
    const deliveries = await fx.publish(messages);
    for (const d of deliveries) r.deliver(7, d);
    r.dropPartition(7);
    expect(r.size).toBe(0);
    expect(r.bufferedMessages).toBe(0);
    await vi.runAllTimersAsync();
    // The first one was already being written when the partition was lost; the rest go back.
    expect(deliveries.slice(1).every((d) => d.settled === "nak")).toBe(true);
    expect(r.bufferedMessages).toBe(0);
  });

  it("keeps parked messages in memory only up to MAX_BUFFERED_MESSAGES over all channels, counting each refusal, losing none", async () => {
    const { r, value } = await registry({ maxBufferedMessages: 6 });
    const a = rocketMessages("bounded-a", 10, new Rng(5));
    const b = rocketMessages("bounded-b", 10, new Rng(6));
    await deliverAll(r, 0, [a[0]!, b[0]!]);
    const ahead = await deliverAll(r, 0, [...a.slice(2), ...b.slice(2)]);
    expect(ahead.every((d) => d.settled === "ack")).toBe(true);
    expect(r.bufferedMessages).toBeLessThanOrEqual(6);
    expect(await value("rockets_sequencer_limit_reached_total", { limit: "buffered_messages" })).toBeGreaterThanOrEqual(10);
    expect(await value("rockets_sequencer_open_gaps")).toBe(2);
    await deliverAll(r, 0, [a[1]!, b[1]!]);
    expect(store.peek("bounded-a")?.state.lastApplied).toBe(10);
    expect(store.peek("bounded-b")?.state.lastApplied).toBe(10);
    expect(r.bufferedMessages).toBe(0);
  });

  it("does not evict an actor with an open gap for idleness, so its deadline is kept", async () => {
    const { r, advance } = await registry({ actorIdleMs: 1000 });
    const messages = rocketMessages("idle-gap", 4, new Rng(7));
    await deliverAll(r, 0, messages.slice(0, 1));
    await deliverAll(r, 0, messages.slice(2));
    advance(5000);
    await swept(r);
    expect(r.size).toBe(1);
    expect(r.openGaps).toBe(1);
  });

  it("tracks and reviews only the gaps of partitions it owns: a scan's finds elsewhere are neither counted nor touched", async () => {
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const { registry: r } = await fx.registry(store, { gapDeadlineMs: 60_000 }, { wallNow: () => wall, partitions: [0] });
    const old = { fromSeq: 1, parked: 2, since: "2025-12-31T00:00:00.000Z" };
    store.putRaw("scan-mine", encodeChannelState({ rocket: null, lastApplied: 0, pending: [], gap: old }));
    store.putRaw("scan-theirs", encodeChannelState({ rocket: null, lastApplied: 0, pending: [], gap: old }));
    r.foundGap("scan-mine", 0, { since: Date.parse(old.since), fromSeq: 1, launched: false });
    // Partition 3 belongs to another instance: its gaps are that instance's to review.
    r.foundGap("scan-theirs", 3, { since: Date.parse(old.since), fromSeq: 1, launched: false });
    expect(r.unlaunched).toBe(1);
    wall += 1000;
    await swept(r);
    expect(store.peek("scan-mine")).toBeNull();
    expect(store.peek("scan-theirs")?.state.gap).toEqual(old);
    expect(r.size).toBe(1);
    // Taken later, the partition's gaps count (the sequencer scans again when it takes partitions).
    r.beginPartition(3);
    r.foundGap("scan-theirs", 3, { since: Date.parse(old.since), fromSeq: 1, launched: false });
    await swept(r);
    expect(store.peek("scan-theirs")).toBeNull();
  });

  it("gives up a launched rocket's gap past the deadline under GAP_POLICY=skip though its actor is not in memory (a restart)", async () => {
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const messages = rocketMessages("restart-skip", 6, new Rng(41));
    const before = await fx.registry(store, { gapPolicy: GapPolicy.Skip, gapDeadlineMs: 60_000 }, { wallNow: () => wall });
    const published = await fx.publish([...messages.slice(0, 2), ...messages.slice(3)]);
    for (const d of published) before.registry.deliver(0, d);
    await settledAll(published);
    expect(store.peek("restart-skip")?.state.lastApplied).toBe(2);
    // A new instance: nothing in memory, the gap found by its scan, no message of the channel arriving.
    const after = await fx.registry(store, { gapPolicy: GapPolicy.Skip, gapDeadlineMs: 60_000 }, { wallNow: () => wall });
    const gap = store.peek("restart-skip")!.state.gap!;
    after.registry.foundGap("restart-skip", 0, { since: Date.parse(gap.since), fromSeq: gap.fromSeq, launched: true });
    wall += 61_000;
    await swept(after.registry);
    const done = store.peek("restart-skip")!.state;
    expect(done.lastApplied).toBe(6);
    expect(done.skipped).toEqual([expect.objectContaining({ from: 3, to: 3, reason: "deadline" })]);
  });
});
