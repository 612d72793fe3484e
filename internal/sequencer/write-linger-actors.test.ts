// The write linger seen from the actors (in memory, fake timers): quiet
// channels' writes wait for the window and start together; nothing is acked
// before the write holding it commits; a release does not wait the window out.

import { describe, expect, it, vi } from "vitest";
import type { ChannelState } from "../domain/sequencing.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import type { MemoryChannelStates } from "../testing/memory-channel-states.js";
import type { ChannelStates, Quarantine } from "./channel-states.js";
import { ActorFixture, onFakeTimers, settledAll } from "./actor.fixture.js";

const fx = new ActorFixture();
onFakeTimers();

/** Records when (fake ms) each write started. */
class TimedStore implements ChannelStates {
  readonly starts: Array<{ channel: string; at: number }> = [];
  constructor(readonly inner: MemoryChannelStates) {}
  load(channel: string) {
    return this.inner.load(channel);
  }
  save(channel: string, state: ChannelState, revision: number, encode: (s: ChannelState) => Uint8Array) {
    this.starts.push({ channel, at: Date.now() });
    return this.inner.save(channel, state, revision, encode);
  }
  quarantine(channel: string, record: Quarantine, revision: number) {
    return this.inner.quarantine(channel, record, revision);
  }
  remove(channel: string, revision: number, parkedFrom?: number) {
    return this.inner.remove(channel, revision, parkedFrom);
  }
}

describe("write linger", () => {
  it("starts quiet channels' writes together at the end of the window, and acks only after they commit", async () => {
    const store = new TimedStore(fx.freshStore());
    const { registry } = await fx.registry(store, { writeLingerMs: 20 });
    const t0 = Date.now();
    const a = await fx.publish(rocketMessages("linger-a", 1, new Rng(1)));
    const b = await fx.publish(rocketMessages("linger-b", 1, new Rng(2)));
    registry.deliver(0, a[0]!);
    await vi.advanceTimersByTimeAsync(7);
    registry.deliver(0, b[0]!);
    await vi.advanceTimersByTimeAsync(12);
    // 19 ms in: nothing written, nothing acked.
    expect(store.starts).toEqual([]);
    expect(a[0]!.settled).toBeUndefined();
    await settledAll([...a, ...b]);
    expect(store.starts.map((s) => s.channel).sort()).toEqual(["linger-a", "linger-b"]);
    // Loads first (each one round trip), then both writes in the same moment.
    expect(new Set(store.starts.map((s) => s.at)).size).toBe(1);
    expect(store.starts[0]!.at - t0).toBeGreaterThanOrEqual(20);
    expect(a[0]!.settled).toBe("ack");
    expect(b[0]!.settled).toBe("ack");
  });

  it("does not hold a busy channel: what arrives during a write goes in its next write, with no window", async () => {
    // Each store call takes 100 ms: load 1000-1100, first write 1100-1200.
    const store = new TimedStore(fx.freshStore({ latencyMs: 100 }));
    const { registry } = await fx.registry(store, { writeLingerMs: 1000 });
    const messages = rocketMessages("linger-busy", 3, new Rng(3));
    // Stored one by one as they arrive: the launch's read of the stream must not find the later ones.
    const deliveries = await fx.publish(messages.slice(0, 1));
    registry.deliver(0, deliveries[0]!);
    await vi.advanceTimersByTimeAsync(1150);
    // The first write is in flight; the rest arrive meanwhile.
    expect(store.starts).toHaveLength(1);
    deliveries.push(...(await fx.publish(messages.slice(1))));
    registry.deliver(0, deliveries[1]!);
    registry.deliver(0, deliveries[2]!);
    // Its commit at 1200 starts the next write at once, not a window later.
    await vi.advanceTimersByTimeAsync(60);
    expect(store.starts).toHaveLength(2);
    expect(store.starts[1]!.at - store.starts[0]!.at).toBe(100);
    await settledAll(deliveries);
    expect(deliveries.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
  });

  it("a released partition's actors start at once rather than after the window", async () => {
    const store = new TimedStore(fx.freshStore());
    const { registry } = await fx.registry(store, { writeLingerMs: 60_000 });
    const deliveries = await fx.publish(rocketMessages("linger-release", 2, new Rng(4)));
    for (const d of deliveries) registry.deliver(0, d);
    const released = registry.drainPartition(0);
    await vi.advanceTimersByTimeAsync(100);
    await released;
    expect(deliveries.map((d) => d.settled)).toEqual(["ack", "ack"]);
  });
});
