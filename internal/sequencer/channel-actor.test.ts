// Channel actors on the in-memory state bucket and events stream (no
// nats-server; both held to the JetStream ones by the contract tests), on
// fake timers: acks only after the write that applies or locates the
// message, coalescing, stale writers, failures, parking past the memory
// bound, re-reading after a reload (a long descending gap read back a few
// times over, not once per window), the gap policy, and constant-size writes
// however long the gap.

import { describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import type { RocketMessage } from "../domain/message.js";
import { apply, type Rocket } from "../domain/rocket.js";
import type { ChannelState } from "../domain/sequencing.js";
import { encodeChannelState, encodeChannelStateFrom } from "./state-encoding.js";
import type { MemoryChannelStates } from "../testing/memory-channel-states.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import { GapPolicy, messageJson } from "./channel-actor.js";
import type { ChannelStates, Quarantine } from "./channel-states.js";
import { repairChannel } from "./channel-repair.js";
import { ActorFixture, onFakeTimers, settledAll, swept, type TestDelivery } from "./actor.fixture.js";

const fx = new ActorFixture();
onFakeTimers();

/** A store that records what it saved (lastApplied, gap.fromSeq, encoded size), and can be told to fail. */
class RecordingStore implements ChannelStates {
  readonly events: string[] = [];
  readonly sizes: number[] = [];
  failNextSaves = 0;
  constructor(readonly inner: MemoryChannelStates) {}
  load(channel: string) {
    return this.inner.load(channel);
  }
  peek(channel: string) {
    return this.inner.peek(channel);
  }
  async save(channel: string, state: ChannelState, revision: number, encode: (s: ChannelState) => Uint8Array) {
    if (this.failNextSaves > 0) {
      this.failNextSaves -= 1;
      throw new Error("nats unavailable");
    }
    const next = await this.inner.save(channel, state, revision, encode);
    this.sizes.push(encode(state).byteLength);
    this.events.push(`saved ${state.lastApplied}/${state.gap?.fromSeq ?? "-"}`);
    return next;
  }
  quarantine(channel: string, record: Quarantine, revision: number) {
    return this.inner.quarantine(channel, record, revision);
  }
  remove(channel: string, revision: number, parkedFrom?: number) {
    return this.inner.remove(channel, revision, parkedFrom);
  }
}

/** Runs a store call or a repair to its end on fake timers. */
async function repairing<T>(work: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return work;
}

const inOrder = (messages: RocketMessage[]) => messages.reduce<Rocket | null>((r, m) => apply(r, m), null);

async function recording(): Promise<RecordingStore> {
  return new RecordingStore(fx.freshStore());
}

describe("channel actor", () => {
  it("acks a message only after the KV write that applies it or locates it in the stream has committed", async () => {
    const store = await recording();
    const { registry } = await fx.registry(store);
    const messages = rocketMessages("ack-after-commit", 6, new Rng(1));
    const order = [messages[2]!, messages[0]!, messages[1]!, messages[4]!, messages[3]!, messages[5]!];
    const deliveries = await fx.publish(order, store.events);
    for (const d of deliveries) registry.deliver(0, d);
    await settledAll(deliveries);
    for (const d of deliveries) expect(d.settled).toBe("ack");
    // Every ack follows a save whose state has applied the message, or parks it at or after gap.fromSeq.
    store.events.forEach((event, i) => {
      if (!event.startsWith("ack")) return;
      const [n, seq] = event.slice(4).split("@").map(Number) as [number, number];
      const saves = store.events.slice(0, i).filter((e) => e.startsWith("saved"));
      const covered = saves.some((s) => {
        const [last, from] = s.slice(6).split("/");
        return n <= Number(last) || (from !== "-" && Number(from) <= seq);
      });
      expect(covered, `${event} before a save holding it: ${store.events.join("; ")}`).toBe(true);
    });
    const stored = store.peek("ack-after-commit");
    expect(stored?.state.rocket).toEqual(inOrder(messages));
    expect(stored?.state.gap).toBeUndefined();
  });

  it("coalesces everything that arrives during a write into the next single write", async () => {
    const store = await recording();
    const { registry, value } = await fx.registry(store);
    const messages = rocketMessages("coalescing", 100, new Rng(2));
    const [launch] = await fx.publish(messages.slice(0, 1));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    const writes = await value("rockets_sequencer_kv_writes_total");
    const deliveries = await fx.publish(messages.slice(1));
    for (const d of deliveries) registry.deliver(0, d);
    await settledAll(deliveries);
    // The first delivery starts a write; the other 98 wait for it and go in one more.
    expect((await value("rockets_sequencer_kv_writes_total")) - writes).toBe(2);
    expect(await value("rockets_sequencer_messages_total", { outcome: "applied" })).toBe(100);
    expect(store.peek("coalescing")?.state.rocket).toEqual(inOrder(messages));
  });

  it("acks duplicates of committed state without writing", async () => {
    const store = await recording();
    const { registry, value } = await fx.registry(store);
    const messages = rocketMessages("duplicates", 3, new Rng(3));
    const first = await fx.publish(messages);
    for (const d of first) registry.deliver(0, d);
    await settledAll(first);
    const writes = await value("rockets_sequencer_kv_writes_total");
    const again = [first[1]!, first[0]!, first[2]!].map((d) => new (d.constructor as typeof TestDelivery)(d.message, d.seq));
    for (const d of again) registry.deliver(0, d);
    await settledAll(again);
    expect(again.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    expect(await value("rockets_sequencer_kv_writes_total")).toBe(writes);
    expect(await value("rockets_sequencer_messages_total", { outcome: "duplicate" })).toBeGreaterThanOrEqual(3);
  });

  it("rejects a stale owner's write and recomputes against the newer state, applying nothing twice", async () => {
    const store = fx.freshStore();
    const channel = "stale-owner";
    const messages = rocketMessages(channel, 8, new Rng(4));
    const stale = await fx.registry(store);
    const fresh = await fx.registry(store);

    // Published as they are delivered: a launch re-reads its channel from the stream's start.
    const early = await fx.publish(messages.slice(0, 3));
    for (const d of early) stale.registry.deliver(0, d);
    await settledAll(early);
    // The partition moved: the new owner writes 4..6 while the old one still caches revision "after 3".
    const moved = await fx.publish(messages.slice(3, 6));
    for (const d of moved) fresh.registry.deliver(0, d);
    await settledAll(moved);
    // The stale owner gets 7, 8 and a redelivered 5: its write at the old revision must fail.
    const [seventh, eighth] = await fx.publish(messages.slice(6));
    const late = [seventh!, new (seventh!.constructor as typeof TestDelivery)(moved[1]!.message, moved[1]!.seq), eighth!];
    for (const d of late) stale.registry.deliver(0, d);
    await settledAll(late);

    expect(await stale.value("rockets_sequencer_revision_conflicts_total")).toBe(1);
    expect(late.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    const stored = store.peek(channel);
    expect(stored?.state.lastApplied).toBe(8);
    expect(stored?.state.gap).toBeUndefined();
    expect(stored?.state.rocket).toEqual(inOrder(messages));
  });

  it("naks with a delay and never acks when the write fails, then recovers from a fresh load", async () => {
    const store = await recording();
    const { registry } = await fx.registry(store);
    const messages = rocketMessages("kv-down", 4, new Rng(5));
    const stored = await fx.publish(messages);
    store.failNextSaves = 2;
    const failed = stored.slice(0, 2);
    for (const d of failed) registry.deliver(0, d);
    await settledAll(failed);
    expect(failed.map((d) => [d.settled, d.nakDelay])).toEqual([
      ["nak", 1234],
      ["nak", 1234],
    ]);
    const retried = stored.map((d) => new (d.constructor as typeof TestDelivery)(d.message, d.seq));
    for (const d of retried) registry.deliver(0, d);
    await settledAll(retried);
    expect(retried.every((d) => d.settled === "ack")).toBe(true);
    expect(store.peek("kv-down")?.state.rocket).toEqual(inOrder(messages));
  });

  it("quarantines an invalid stored state: keeps its bytes, acks its messages against the record, counts and logs it, and a repair rebuilds it from the stream", async () => {
    const store = await recording();
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: "error" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const { registry, value } = await fx.registry(store, {}, { log });
    const channel = "invalid-stored-state";
    const messages = rocketMessages(channel, 4, new Rng(8));
    const early = await fx.publish(messages.slice(0, 1));
    // A state with a buffered message ingest would refuse (a bidi override in its mission), as an older release or a hand edit could leave.
    const spoiled = JSON.parse(JSON.stringify({ rocket: inOrder(messages.slice(0, 1)), lastApplied: 1, pending: [messages[2]] }));
    spoiled.pending[0].metadata.messageType = "RocketMissionChanged";
    spoiled.pending[0].message = { newMission: "APOLLO\u202e" };
    const spoiledText = JSON.stringify({ v: 1, ...spoiled });
    const spoiledRevision = store.inner.putRaw(channel, spoiledText);

    const published = await fx.publish(messages.slice(1));
    for (const d of published) registry.deliver(0, d);
    await settledAll(published);
    // Acked, not held back: the partition goes on.
    expect(published.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    const quarantined = store.inner.peek(channel)!;
    expect(quarantined.revision).toBeGreaterThan(spoiledRevision);
    expect(quarantined.quarantine).toMatchObject({
      fromSeq: published[0]!.seq,
      problems: [{ path: "pending.0.message.newMission", reason: expect.stringContaining("U+202E") }],
    });
    expect(Buffer.from(quarantined.quarantine!.original, "base64").toString()).toBe(spoiledText);
    expect(store.events.filter((e) => e.startsWith("saved"))).toEqual([]);
    expect(await value("rockets_sequencer_unreadable_states_total")).toBe(1);
    expect(await value("rockets_sequencer_quarantined_channels")).toBe(1);
    expect(lines).toEqual([expect.objectContaining({ level: 50, channel, msg: expect.stringContaining("quarantined") })]);

    // The operator's repair folds what the stream holds (the launch stored before the entry went bad included).
    const outcome = await repairing(repairChannel(channel, 0, store.inner, fx.stream.parked()));
    expect(outcome).toMatchObject({ kind: "repaired", messages: 4 + early.length - 1 });
    expect(store.peek(channel)?.state).toEqual({ rocket: inOrder(messages), lastApplied: 4, pending: [] });
    // The next sweep finds the channel repaired: it is no longer counted.
    await swept(registry);
    expect(await value("rockets_sequencer_quarantined_channels")).toBe(0);
  });

  it("parks every message past the memory bound instead of handing it back, and re-reads them when the gap closes", async () => {
    const store = await recording();
    const channel = "memory-bound";
    const messages = rocketMessages(channel, 40, new Rng(6));
    const { registry, value } = await fx.registry(store, { maxPending: 5 });
    // Launched first (published as delivered: a launch re-reads its channel from the stream's start); then 3..40 arrive, 2 last.
    const [launch] = await fx.publish(messages.slice(0, 1));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    const ahead = await fx.publish(messages.slice(2));
    for (const d of ahead) registry.deliver(0, d);
    await settledAll(ahead);
    expect(ahead.every((d) => d.settled === "ack")).toBe(true);
    expect(registry.bufferedMessages).toBe(5);
    const parked = store.peek(channel);
    expect(parked?.state.lastApplied).toBe(1);
    expect(parked?.state.pending).toEqual([]);
    expect(parked?.state.gap?.fromSeq).toBe(ahead[0]!.seq);
    expect(parked?.state.gap?.parked).toBe(38);
    const [second] = await fx.publish(messages.slice(1, 2));
    registry.deliver(0, second!);
    await settledAll([second!]);
    const done = store.peek(channel);
    expect(done?.state).toEqual({ rocket: inOrder(messages), lastApplied: 40, pending: [] });
    expect(await value("rockets_sequencer_reread_messages_total")).toBeGreaterThan(0);
    expect(await value("rockets_sequencer_messages_total", { outcome: "overflow" })).toBe(0);
    expect(registry.bufferedMessages).toBe(0);
  });

  it("reads a long gap sent in descending order back a few times over, not once per window of MAX_PENDING_PER_CHANNEL", async () => {
    // 600 messages in windows of 20 (30 windows, all mapped by the first read) or of 5 (120: past what one read maps).
    for (const [order, maxPending, bound] of [
      ["descending", 20, 3],
      ["descending", 5, 4],
      ["shuffled", 20, Number.POSITIVE_INFINITY],
    ] as const) {
      const store = await recording();
      const channel = `long-gap-${order}-${maxPending}`;
      const count = 600;
      const messages = rocketMessages(channel, count, new Rng(order === "descending" ? 61 : 62));
      const { registry, value } = await fx.registry(store, { maxPending });
      const rest = messages.slice(1);
      if (order === "descending") rest.reverse();
      else for (let i = rest.length - 1, rng = new Rng(63); i > 0; i -= 1) {
        const j = Math.floor(rng.next() * (i + 1));
        [rest[i], rest[j]] = [rest[j]!, rest[i]!];
      }
      // One at a time, as a slow sender's would come: memory keeps the lowest maxPending, the rest stay in the stream only.
      for (const m of rest) {
        const [d] = await fx.publish([m]);
        registry.deliver(0, d!);
        await settledAll([d!]);
      }
      const [launch] = await fx.publish(messages.slice(0, 1));
      registry.deliver(0, launch!);
      await settledAll([launch!]);
      expect(store.peek(channel)?.state, `${order}, windows of ${maxPending}`).toEqual({ rocket: inOrder(messages), lastApplied: count, pending: [] });
      // A full read (~600), then each further window's own range; once a read's map runs out, another full read.
      expect(await value("rockets_sequencer_reread_messages_total"), `${order}, windows of ${maxPending}`).toBeLessThanOrEqual(bound * count);
    }
  });

  it("ends exact for long gaps sent descending, in reversed blocks, nearly descending or shuffled, with duplicates and small memory bounds", async () => {
    for (let seed = 1; seed <= 40; seed += 1) {
      const rng = new Rng(seed * 7);
      const count = 100 + Math.floor(rng.next() * 400);
      const channel = `long-gap-orders-${seed}`;
      const messages = rocketMessages(channel, count, new Rng(seed));
      const rest = messages.slice(1);
      const kind = ["descending", "reversed blocks", "nearly descending", "shuffled"][seed % 4]!;
      let order: RocketMessage[];
      if (kind === "descending") {
        order = [...rest].reverse();
      } else if (kind === "reversed blocks") {
        const size = 5 + Math.floor(rng.next() * 40);
        const blocks: RocketMessage[][] = [];
        for (let i = 0; i < rest.length; i += size) blocks.push(rest.slice(i, i + size));
        order = blocks.reverse().flat();
      } else if (kind === "nearly descending") {
        order = [...rest].reverse();
        for (let i = 0; i < order.length; i += 1) {
          if (rng.next() >= 0.2) continue;
          const j = Math.min(order.length - 1, i + Math.floor(rng.next() * 10));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      } else {
        order = [...rest];
        for (let i = order.length - 1; i > 0; i -= 1) {
          const j = Math.floor(rng.next() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      }
      const sent = order.flatMap((m) => (rng.next() < 0.1 ? [m, m] : [m]));
      const store = fx.freshStore();
      const maxPending = 5 + Math.floor(rng.next() * 30);
      const maxBufferedMessages = rng.next() < 0.5 ? 3 + Math.floor(rng.next() * 20) : 100_000;
      const { registry } = await fx.registry(store, { maxPending, maxBufferedMessages });
      const batch = 1 + Math.floor(rng.next() * 5);
      for (let i = 0; i < sent.length; i += batch) {
        const deliveries = await fx.publish(sent.slice(i, i + batch));
        for (const d of deliveries) registry.deliver(0, d);
        await settledAll(deliveries);
      }
      const [launch] = await fx.publish(messages.slice(0, 1));
      registry.deliver(0, launch!);
      await settledAll([launch!]);
      expect(store.peek(channel)?.state, `seed ${seed}, ${kind}, maxPending ${maxPending}, maxBufferedMessages ${maxBufferedMessages}`).toEqual({
        rocket: inOrder(messages),
        lastApplied: count,
        pending: [],
      });
    }
  });

  it("writes a state of the same size however many messages wait behind the gap", async () => {
    const store = await recording();
    const channel = "constant-writes";
    const messages = rocketMessages(channel, 120, new Rng(9));
    const { registry } = await fx.registry(store);
    const [launch] = await fx.publish(messages.slice(0, 1));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    const ahead = await fx.publish(messages.slice(2));
    // One at a time: every parked message is its own write.
    for (const d of ahead) {
      registry.deliver(0, d);
      await settledAll([d]);
    }
    const sizes = store.sizes.slice(1);
    expect(sizes.length).toBe(ahead.length);
    // The first parked write and the last differ only by the digits of the parked count.
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(3);
    expect(Math.max(...sizes)).toBeLessThan(600);
  });

  it("after a reload, re-reads the parked messages from the stream and applies them in order", async () => {
    const store = fx.freshStore();
    const channel = "reload-reread";
    const messages = rocketMessages(channel, 20, new Rng(10));
    const published = await fx.publish([...messages.slice(10), ...messages.slice(1, 10).reverse(), messages[0]!]);
    const first = await fx.registry(store);
    const beforeLaunch = published.slice(0, 19);
    for (const d of beforeLaunch) first.registry.deliver(0, d);
    await settledAll(beforeLaunch);
    // The channel had no entry when its first message parked: the entry it got locates every message the stream held for it.
    expect(store.peek(channel)?.state.gap?.fromSeq).toBe(published[0]!.seq);
    // Another instance takes over with nothing in memory: only the launch is delivered to it.
    const second = await fx.registry(store);
    second.registry.deliver(0, published[19]!);
    await settledAll([published[19]!]);
    expect(store.peek(channel)?.state).toEqual({ rocket: inOrder(messages), lastApplied: 20, pending: [] });
    expect(await second.value("rockets_sequencer_messages_total", { outcome: "applied" })).toBe(1);
    expect(await second.value("rockets_sequencer_reread_messages_total")).toBe(20);
  });

  it("under GAP_POLICY=skip, gives up the missing numbers after the deadline, records them and goes on", async () => {
    const store = fx.freshStore();
    const channel = "skipping";
    const messages = rocketMessages(channel, 12, new Rng(11));
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const { registry, value } = await fx.registry(store, { gapPolicy: GapPolicy.Skip, gapDeadlineMs: 60_000 }, { wallNow: () => wall });
    const published = await fx.publish([...messages.slice(0, 3), ...messages.slice(5)]);
    for (const d of published) registry.deliver(0, d);
    await settledAll(published);
    expect(store.peek(channel)?.state.gap?.since).toBe("2026-01-01T00:00:00.000Z");
    wall += 30_000;
    await swept(registry);
    await vi.runAllTimersAsync();
    expect(store.peek(channel)?.state.lastApplied).toBe(3);
    wall += 30_000;
    await swept(registry);
    await vi.runAllTimersAsync();
    const done = store.peek(channel)!;
    expect(done.state.lastApplied).toBe(12);
    expect(done.state.skipped).toEqual([{ from: 4, to: 5, at: "2026-01-01T00:01:00.000Z", reason: "deadline" }]);
    expect(done.state.gap).toBeUndefined();
    expect(done.state.rocket).toEqual(inOrder([...messages.slice(0, 3), ...messages.slice(5)]));
    expect(await value("rockets_sequencer_gaps_skipped_total", { reason: "deadline" })).toBe(1);
    // Message 4 arriving now is a duplicate: it was given up.
    const [late] = await fx.publish([messages[3]!]);
    registry.deliver(0, late!);
    await settledAll([late!]);
    expect(store.peek(channel)?.state.lastApplied).toBe(12);
  });

  it("under GAP_POLICY=skip, gives up only the numbers below the lowest one waiting anywhere: in memory, or parked in the stream only", async () => {
    const store = fx.freshStore();
    const channel = "skip-lowest";
    const messages = rocketMessages(channel, 22, new Rng(31));
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const settings = { gapPolicy: GapPolicy.Skip, gapDeadlineMs: 60_000, maxPending: 2 };
    const first = await fx.registry(store, settings, { wallNow: () => wall });
    // 20 and 21 parked and acked; then the instance goes (its memory with it).
    const parked = await fx.publish([messages[0]!, messages[19]!, messages[20]!]);
    for (const d of parked) first.registry.deliver(0, d);
    await settledAll(parked);
    expect(parked.map((d) => d.settled)).toEqual(["ack", "ack", "ack"]);
    // Another instance: 22 arrives (held in memory), the deadline passes.
    const second = await fx.registry(store, settings, { wallNow: () => wall });
    const [late] = await fx.publish([messages[21]!]);
    second.registry.deliver(0, late!);
    await settledAll([late!]);
    wall += 61_000;
    await swept(second.registry);
    const done = store.peek(channel)!.state;
    // 20 and 21 had arrived: only 2..19 never did.
    expect(done.skipped).toEqual([{ from: 2, to: 19, at: "2026-01-01T00:01:01.000Z", reason: "deadline" }]);
    expect(done.lastApplied).toBe(22);
    expect(done.rocket).toEqual(inOrder([messages[0]!, ...messages.slice(19)]));
  });

  it("applies a number's first stored copy, not a later one held in memory, when the gap closes from the stream", async () => {
    const store = fx.freshStore();
    const channel = "first-copy";
    const messages = rocketMessages(channel, 3, new Rng(32));
    const first = await fx.registry(store);
    const parked = await fx.publish([messages[0]!, messages[2]!]);
    for (const d of parked) first.registry.deliver(0, d);
    await settledAll(parked);
    // After the duplicate window a changed 3 was stored again (3 was not applied yet), and is what the next instance holds.
    const changed = JSON.parse(JSON.stringify(messages[2])) as RocketMessage;
    (changed.message as { by?: number; newMission?: string }).by = 999_999;
    (changed.message as { newMission?: string }).newMission = "SKYLAB";
    const second = await fx.registry(store);
    const [later, two] = await fx.publish([changed, messages[1]!]);
    second.registry.deliver(0, later!);
    await settledAll([later!]);
    second.registry.deliver(0, two!);
    await settledAll([two!]);
    expect(store.peek(channel)?.state).toEqual({ rocket: inOrder(messages), lastApplied: 3, pending: [] });
  });

  it("under GAP_POLICY=wait, never skips, but gives up a channel that never launched (its messages stay in the stream)", async () => {
    const store = fx.freshStore();
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const { registry, value } = await fx.registry(store, { gapDeadlineMs: 60_000 }, { wallNow: () => wall });
    const waiting = rocketMessages("waiting", 6, new Rng(12));
    const unlaunched = rocketMessages("unlaunched", 6, new Rng(13));
    const a = await fx.publish([waiting[0]!, ...waiting.slice(2)]);
    const b = await fx.publish(unlaunched.slice(1));
    for (const d of [...a, ...b]) registry.deliver(0, d);
    await settledAll([...a, ...b]);
    expect(registry.unlaunched).toBe(1);
    wall += 61_000;
    await swept(registry);
    await vi.runAllTimersAsync();
    expect(store.peek("unlaunched")).toBeNull();
    expect(await value("rockets_sequencer_unlaunched_expired_total")).toBe(1);
    expect(registry.unlaunched).toBe(0);
    expect(store.peek("waiting")?.state.lastApplied).toBe(1);
    // The launch comes at last: its re-read from the stream's start finds the rest.
    const [launch] = await fx.publish(unlaunched.slice(0, 1));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    expect(store.peek("unlaunched")?.state).toEqual({ rocket: inOrder(unlaunched), lastApplied: 6, pending: [] });
  });

  it("past MAX_UNLAUNCHED_CHANNELS gives up the oldest never-launched entries at the next sweep, and their launches still find everything", async () => {
    const store = fx.freshStore();
    const { registry, value } = await fx.registry(store, { maxUnlaunchedChannels: 1 });
    const first = rocketMessages("unlaunched-1", 4, new Rng(14));
    const second = rocketMessages("unlaunched-2", 4, new Rng(15));
    const a = await fx.publish(first.slice(1));
    await settledAll(a.map((d) => (registry.deliver(0, d), d)));
    const b = await fx.publish(second.slice(1));
    await settledAll(b.map((d) => (registry.deliver(0, d), d)));
    // Every message acked after a write that locates it: each channel has its entry, for now.
    expect([...a, ...b].every((d) => d.settled === "ack")).toBe(true);
    expect(store.peek("unlaunched-1")?.state.gap).toMatchObject({ fromSeq: a[0]!.seq, parked: expect.any(Number) });
    expect(registry.unlaunched).toBe(2);
    await swept(registry);
    // The oldest is given up (its messages stay in the stream), the bound counted.
    expect(store.peek("unlaunched-1")).toBeNull();
    expect(store.peek("unlaunched-2")?.state.gap?.fromSeq).toBe(b[0]!.seq);
    expect(registry.unlaunched).toBe(1);
    expect(await value("rockets_sequencer_limit_reached_total", { limit: "unlaunched_channels" })).toBeGreaterThan(0);
    const launches = await fx.publish([first[0]!, second[0]!]);
    for (const d of launches) registry.deliver(0, d);
    await settledAll(launches);
    expect(store.peek("unlaunched-1")?.state.rocket).toEqual(inOrder(first));
    expect(store.peek("unlaunched-2")?.state.rocket).toEqual(inOrder(second));
  });

  it("reads nothing back for a channel never written (what the stream holds of it is still on its way), and reads from a given-up entry's marker", async () => {
    const store = await recording();
    let wall = Date.parse("2026-01-01T00:00:00Z");
    const { registry, value } = await fx.registry(store, { gapDeadlineMs: 60_000 }, { wallNow: () => wall });
    // Messages 2 and 3 are stored but not yet delivered when the launch is: nothing is read; they come through the consumer.
    const ahead = rocketMessages("launch-ahead", 3, new Rng(17));
    const deliveries = await fx.publish(ahead);
    registry.deliver(0, deliveries[0]!);
    await settledAll([deliveries[0]!]);
    expect(await value("rockets_sequencer_reread_messages_total")).toBe(0);
    expect(store.peek("launch-ahead")?.state.lastApplied).toBe(1);
    for (const d of deliveries.slice(1)) registry.deliver(0, d);
    await settledAll(deliveries);
    expect(store.peek("launch-ahead")?.state).toEqual({ rocket: inOrder(ahead), lastApplied: 3, pending: [] });
    expect(await value("rockets_sequencer_reread_messages_total")).toBe(0);
    // A channel that never launched in time: its entry is given up, its marker recording where its messages start.
    const late = rocketMessages("launch-late", 3, new Rng(18));
    const waiting = await fx.publish(late.slice(1));
    for (const d of waiting) registry.deliver(0, d);
    await settledAll(waiting);
    wall += 61_000;
    await swept(registry);
    expect(await repairing(store.inner.load("launch-late"))).toMatchObject({ deleted: true, parkedFrom: waiting[0]!.seq });
    const [launch] = await fx.publish(late.slice(0, 1));
    registry.deliver(0, launch!);
    await settledAll([launch!]);
    expect(store.peek("launch-late")?.state).toEqual({ rocket: inOrder(late), lastApplied: 3, pending: [] });
    expect(await value("rockets_sequencer_reread_messages_total")).toBe(3);
  });

  it("ends exact however deliveries are shuffled, duplicated, cut by a crash and redelivered to another instance", async () => {
    for (let seed = 1; seed <= 6; seed += 1) {
      const rng = new Rng(100 + seed);
      // Round trips of 5 ms against a cut within 30 ms: half the seeds lose the partition with work still to do.
      const store = fx.freshStore({ latencyMs: 5 });
      const channel = `crash-shuffle-${seed}`;
      const messages = rocketMessages(channel, 60, rng);
      // Shuffled, with about one message in five stored twice (a resend after the window).
      const order = messages.flatMap((m) => (rng.next() < 0.2 ? [m, m] : [m]));
      for (let i = order.length - 1; i > 0; i -= 1) {
        const j = Math.floor(rng.next() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      // Stored as they are sent: the second part only after the first instance is gone.
      const cut = 1 + Math.floor(rng.next() * (order.length - 1));
      const deliveries = await fx.publish(order.slice(0, cut));
      // A small memory bound, so gaps are re-read from the stream as well as closed from memory.
      const first = await fx.registry(store, { maxPending: 5 });
      for (const d of deliveries.slice(0, cut)) first.registry.deliver(0, d);
      await vi.advanceTimersByTimeAsync(Math.floor(rng.next() * 30));
      // The instance loses the partition: a write in flight completes, everything else goes back.
      first.registry.dropPartition(0);
      await settledAll(deliveries.slice(0, cut));
      deliveries.push(...(await fx.publish(order.slice(cut))));
      const second = await fx.registry(store, { maxPending: 5 });
      const again = deliveries.slice(0, cut).filter((d) => d.settled !== "ack" || rng.next() < 0.3);
      const rest = [...again, ...deliveries.slice(cut)].map((d) => new (d.constructor as typeof TestDelivery)(d.message, d.seq));
      for (const d of rest) second.registry.deliver(0, d);
      await settledAll(rest);
      expect(rest.every((d) => d.settled === "ack"), `seed ${seed}`).toBe(true);
      const stored = store.peek(channel);
      expect(stored?.state, `seed ${seed}, cut ${cut} of ${deliveries.length}`).toEqual({ rocket: inOrder(messages), lastApplied: 60, pending: [] });
    }
  });

  it("writes exactly the bytes encodeChannelState would", () => {
    const messages = rocketMessages("encoding-ü-日本-🚀", 6, new Rng(7));
    const states: ChannelState[] = [
      { rocket: null, lastApplied: 0, pending: [] },
      { rocket: null, lastApplied: 0, pending: messages.slice(2) },
      { rocket: inOrder(messages.slice(0, 2)), lastApplied: 2, pending: [messages[4]!] },
      { rocket: inOrder(messages), lastApplied: 6, pending: [] },
      {
        rocket: inOrder(messages.slice(0, 2)),
        lastApplied: 2,
        pending: [],
        gap: { fromSeq: 17, parked: 3, since: "2026-01-01T00:00:00.000Z" },
        skipped: [{ from: 1, to: 1, at: "2026-01-01T00:00:00.000Z" }],
      },
    ];
    for (const state of states) {
      expect(Buffer.from(encodeChannelStateFrom(state, messageJson))).toEqual(Buffer.from(encodeChannelState(state)));
    }
  });
});
