// Messages parked in the stream only, and the record that finds them again:
// the record itself (StreamOnlyParks), and the actors on the in-memory state
// bucket and events stream, on fake timers: a partition taken before anything
// was delivered re-reads nothing for a shuffled launch; one taken later still
// reads from the stream's start; what this instance parked in the stream only
// is found after an eviction and after a stale former owner wrote the
// channel's entry; and nothing is acked without a write once the lease may
// have moved.

import { describe, expect, it, vi } from "vitest";
import type { RocketMessage } from "../domain/message.js";
import { apply, type Rocket } from "../domain/rocket.js";
import { encodeChannelState } from "./state-encoding.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import { StreamOnlyParks } from "./stream-only-parks.js";
import { ActorFixture, onFakeTimers, settledAll } from "./actor.fixture.js";

const inOrder = (messages: RocketMessage[]) => messages.reduce<Rocket | null>((r, m) => apply(r, m), null);
const NONE = Number.POSITIVE_INFINITY;

describe("StreamOnlyParks", () => {
  it("knows through which sequence earlier owners may have parked: none when nothing was delivered before the partition was taken", () => {
    const parks = new StreamOnlyParks(10);
    // Not begun: unknown, so a channel without an entry reads from the stream's start.
    expect(parks.earlierThrough(0)).toBeUndefined();
    expect(parks.ownFrom(0, "c", true)).toBe(NONE);
    parks.begin(0, 0);
    parks.begin(1, 250);
    parks.begin(2, undefined);
    expect(parks.earlierThrough(0)).toBe(0);
    expect(parks.ownFrom(0, "c", false)).toBe(NONE);
    expect(parks.earlierThrough(1)).toBe(250);
    expect(parks.earlierThrough(2)).toBeUndefined();
    // An entry locates everything earlier owners parked; only this instance's own records matter to it.
    expect(parks.ownFrom(1, "c", true)).toBe(NONE);
  });

  it("records the lowest sequence per channel until a committed state covers it", () => {
    const parks = new StreamOnlyParks(10);
    parks.begin(0, 0);
    parks.record(0, "c", 40);
    parks.record(0, "c", 30);
    parks.record(0, "c", 50);
    expect(parks.ownFrom(0, "c", false)).toBe(30);
    expect(parks.ownFrom(0, "c", true)).toBe(30);
    expect(parks.ownFrom(0, "other", false)).toBe(NONE);
    expect(parks.recorded).toBe(1);
    // A state committed from a view missing only from 31 on does not cover 30.
    parks.covered(0, "c", 31);
    expect(parks.ownFrom(0, "c", true)).toBe(30);
    parks.covered(0, "c", 30);
    expect(parks.ownFrom(0, "c", false)).toBe(NONE);
    expect(parks.recorded).toBe(0);
  });

  it("past its bound lets the lowest unrecorded sequence stand for the partition's channels without an entry, and counts it", () => {
    let reached = 0;
    const parks = new StreamOnlyParks(2, () => (reached += 1));
    parks.begin(0, 0);
    parks.begin(1, 0);
    parks.record(0, "a", 10);
    parks.record(0, "b", 20);
    parks.record(0, "c", 30);
    parks.record(0, "a", 5);
    expect(reached).toBe(1);
    expect(parks.recorded).toBe(2);
    expect(parks.ownFrom(0, "a", false)).toBe(5);
    expect(parks.ownFrom(0, "c", false)).toBe(30);
    expect(parks.ownFrom(0, "new", false)).toBe(30);
    expect(parks.ownFrom(1, "new", false)).toBe(NONE);
    // A channel with an entry relies on its entry alone.
    expect(parks.ownFrom(0, "new", true)).toBe(NONE);
  });

  it("forgets a partition when it ends, but not a later tenure when an older one ends", () => {
    const parks = new StreamOnlyParks(10);
    const first = parks.begin(0, 0);
    parks.record(0, "c", 7);
    parks.end(0);
    expect(parks.recorded).toBe(0);
    expect(parks.earlierThrough(0)).toBeUndefined();
    expect(parks.ownFrom(0, "c", false)).toBe(NONE);
    parks.record(0, "c", 8);
    expect(parks.recorded).toBe(0);
    parks.begin(0, 100);
    parks.record(0, "c", 120);
    parks.end(0, first);
    expect(parks.earlierThrough(0)).toBe(100);
    expect(parks.ownFrom(0, "c", true)).toBe(120);
  });
});

describe("actors and the stream-only record", () => {
  const fx = new ActorFixture();
  onFakeTimers();

  /** A rocket's messages with its launch last, the rest shuffled. */
  function launchLast(channel: string, count: number, seed: number): { messages: RocketMessage[]; arrival: RocketMessage[] } {
    const messages = rocketMessages(channel, count, new Rng(seed));
    const rest = messages.slice(1);
    const rng = new Rng(seed + 1000);
    for (let i = rest.length - 1; i > 0; i -= 1) {
      const j = Math.floor(rng.next() * (i + 1));
      [rest[i], rest[j]] = [rest[j]!, rest[i]!];
    }
    return { messages, arrival: [...rest, messages[0]!] };
  }

  it("reads nothing back for a shuffled launch in a partition taken before anything was delivered, or for a channel new since a later takeover", async () => {
    for (const late of [false, true]) {
      const store = fx.freshStore();
      const { registry, value } = await fx.registry(store);
      // Taken later: everything stored so far (other channels' messages) was delivered to earlier owners.
      const takenAt = late ? (await fx.publish(rocketMessages(`before-${late}`, 3, new Rng(20))))[2]!.seq : 0;
      registry.beginPartition(0, takenAt);
      const channel = `taken-${late ? "late" : "fresh"}`;
      const { messages, arrival } = launchLast(channel, 30, late ? 22 : 21);
      const deliveries = await fx.publish(arrival);
      const reads = fx.stream.reads;
      for (const d of deliveries) registry.deliver(0, d);
      await settledAll(deliveries);
      expect(deliveries.every((d) => d.settled === "ack")).toBe(true);
      expect(store.peek(channel)?.state).toEqual({ rocket: inOrder(messages), lastApplied: 30, pending: [] });
      expect(await value("rockets_sequencer_reread_messages_total")).toBe(0);
      // Not even a read that finds nothing: the stream holds none of its messages up to takenAt.
      expect(fx.stream.reads).toBe(reads);
    }
  });

  it("reads back what an earlier owner parked in the stream only, up to what was delivered when the partition was taken", async () => {
    const store = fx.freshStore();
    const { registry, value } = await fx.registry(store);
    const { messages, arrival } = launchLast("earlier-owner", 20, 23);
    // Messages 2..8 (shuffled) were delivered to the earlier owner, which parked them in the stream only: stored, never delivered here.
    const earlier = await fx.publish(arrival.slice(0, 7));
    registry.beginPartition(0, earlier[6]!.seq);
    const later = await fx.publish(arrival.slice(7, 19));
    for (const d of later) registry.deliver(0, d);
    await settledAll(later);
    // Until the launch reads them back, the state tells any later reader to start from the stream's start.
    expect(store.peek("earlier-owner")?.state.gap?.fromSeq).toBe(1);
    const [launch] = await fx.publish(arrival.slice(19));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    expect(store.peek("earlier-owner")?.state).toEqual({ rocket: inOrder(messages), lastApplied: 20, pending: [] });
    // Those 7 and nothing else: what came since was this instance's to see.
    expect(await value("rockets_sequencer_reread_messages_total")).toBe(7);
  });

  it("finds what it parked in the stream only past MAX_UNLAUNCHED_CHANNELS, after an eviction too, and then forgets it", async () => {
    // Taken with nothing delivered, and taken later (earlier owners' range read back first, then this instance's record).
    for (const late of [false, true]) {
      const store = fx.freshStore();
      let clock = 0;
      const { registry, value } = await fx.registry(store, { maxUnlaunchedChannels: 0, actorIdleMs: 1000 }, { now: () => clock });
      registry.beginPartition(0, late ? (await fx.publish(rocketMessages("before-stream-only", 1, new Rng(30))))[0]!.seq : 0);
      const channel = `stream-only-${late ? "late" : "fresh"}`;
      const { messages, arrival } = launchLast(channel, 12, 31);
      const early = await fx.publish(arrival.slice(0, 8));
      for (const d of early) registry.deliver(0, d);
      await settledAll(early);
      expect(early.every((d) => d.settled === "ack")).toBe(true);
      expect(store.peek(channel)).toBeNull();
      expect(registry.streamOnlyChannels).toBe(1);
      // Evicted while idle: the record, not the actor, remembers.
      clock += 2000;
      registry.evictIdle();
      expect(registry.size).toBe(0);
      const rest = await fx.publish(arrival.slice(8));
      for (const d of rest) registry.deliver(0, d);
      await settledAll(rest);
      expect(store.peek(channel)?.state).toEqual({ rocket: inOrder(messages), lastApplied: 12, pending: [] });
      expect(await value("rockets_sequencer_reread_messages_total")).toBeGreaterThan(0);
      expect(registry.streamOnlyChannels).toBe(0);
    }
  });

  it("finds what it parked in the stream only when a stale former owner wrote the channel's entry after it found none", async () => {
    const store = fx.freshStore();
    let clock = 0;
    const { registry } = await fx.registry(store, { maxUnlaunchedChannels: 0, actorIdleMs: 1000 }, { now: () => clock });
    registry.beginPartition(0, 0);
    const messages = rocketMessages("stale-entry", 5, new Rng(41));
    // Messages 3 and 4 arrive here first: no entry, so parked in the stream only.
    const parked = await fx.publish(messages.slice(2, 4));
    for (const d of parked) registry.deliver(0, d);
    await settledAll(parked);
    expect(parked.every((d) => d.settled === "ack")).toBe(true);
    // A former owner, paused past its lease with the launch and message 2 in hand, wakes and writes them.
    const written = store.save("stale-entry", { rocket: inOrder(messages.slice(0, 2)), lastApplied: 2, pending: [] }, 0, encodeChannelState);
    await vi.runAllTimersAsync();
    await written;
    clock += 2000;
    registry.evictIdle();
    // Message 5: loaded with the stale owner's entry, this instance still reads back what it parked.
    const last = await fx.publish(messages.slice(4));
    registry.deliver(0, last[0]!);
    await settledAll(last);
    expect(store.peek("stale-entry")?.state).toEqual({ rocket: inOrder(messages), lastApplied: 5, pending: [] });
    expect(registry.streamOnlyChannels).toBe(0);
  });

  it("acks nothing without a write once the lease may have moved: parks in the stream only and gives up entries only while it is fresh", async () => {
    const store = fx.freshStore();
    let fresh = false;
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const { registry } = await fx.registry(
      store,
      { maxUnlaunchedChannels: 1, gapDeadlineMs: 60_000, retryDelayMs: 777 },
      { leaseFresh: () => fresh, wallNow: () => wall },
    );
    registry.beginPartition(0, 0);
    const first = rocketMessages("fence-entry", 4, new Rng(51));
    const second = rocketMessages("fence-stream-only", 4, new Rng(52));
    const withEntry = await fx.publish(first.slice(1));
    for (const d of withEntry) registry.deliver(0, d);
    await settledAll(withEntry);
    // The first takes the one unlaunched place with a write: acked, lease or not.
    expect(withEntry.every((d) => d.settled === "ack")).toBe(true);
    const streamOnly = await fx.publish(second.slice(1));
    for (const d of streamOnly) registry.deliver(0, d);
    await settledAll(streamOnly);
    expect(streamOnly.map((d) => [d.settled, d.nakDelay])).toEqual(streamOnly.map(() => ["nak", 777]));
    expect(registry.streamOnlyChannels).toBe(0);
    // Past the deadline the entry is given up only with a fresh lease.
    wall += 61_000;
    registry.evictIdle();
    await vi.runAllTimersAsync();
    expect(store.peek("fence-entry")).not.toBeNull();
    fresh = true;
    registry.evictIdle();
    await vi.runAllTimersAsync();
    expect(store.peek("fence-entry")).toBeNull();
    expect(registry.streamOnlyChannels).toBe(1);
    // Redelivered with a fresh lease: parked in the stream only and acked; both launches find everything.
    const again = await fx.publish(second.slice(1));
    for (const d of again) registry.deliver(0, d);
    await settledAll(again);
    expect(again.every((d) => d.settled === "ack")).toBe(true);
    const launches = await fx.publish([first[0]!, second[0]!]);
    for (const d of launches) registry.deliver(0, d);
    await settledAll(launches);
    expect(store.peek("fence-entry")?.state).toEqual({ rocket: inOrder(first), lastApplied: 4, pending: [] });
    expect(store.peek("fence-stream-only")?.state).toEqual({ rocket: inOrder(second), lastApplied: 4, pending: [] });
  });

  it("past the record's bound still finds every channel's messages, counting the bound", async () => {
    const store = fx.freshStore();
    const { registry, value } = await fx.registry(store, { maxUnlaunchedChannels: 0, maxStreamOnlyChannels: 2 });
    registry.beginPartition(0, 0);
    const rockets = [0, 1, 2, 3].map((i) => launchLast(`over-record-${i}`, 6, 61 + i));
    const early = await fx.publish(rockets.flatMap((r) => r.arrival.slice(0, 5)));
    for (const d of early) registry.deliver(0, d);
    await settledAll(early);
    expect(registry.streamOnlyChannels).toBe(2);
    expect(await value("rockets_sequencer_limit_reached_total", { limit: "stream_only_channels" })).toBeGreaterThan(0);
    const launches = await fx.publish(rockets.map((r) => r.arrival[5]!));
    for (const d of launches) registry.deliver(0, d);
    await settledAll(launches);
    for (const [i, r] of rockets.entries()) {
      expect(store.peek(`over-record-${i}`)?.state).toEqual({ rocket: inOrder(r.messages), lastApplied: 6, pending: [] });
    }
  });
});
