import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsServer } from "../testing/nats-server.js";
import type { ChannelState } from "../domain/sequencing.js";
import type { Rocket } from "../domain/rocket.js";
import { ChannelStateStore, keyForChannel } from "./channel-state-store.js";
import { ChannelStateWatcher } from "./channel-state-watcher.js";
import type { ChannelStateListener, StateChange } from "../view/channel-state-listener.js";
import { openBucket } from "./topology.js";

const log = pino({ level: "silent" });

function rocket(channel: string, speed: number): Rocket {
  return {
    channel,
    type: "Falcon-9",
    mission: "ARTEMIS",
    speed,
    status: "launched",
    explosionReason: null,
    launchedAt: "2022-02-02T19:39:05.86337+01:00",
    updatedAt: "2022-02-02T19:39:05.86337+01:00",
    lastMessageNumber: 1,
  };
}

const state = (channel: string, speed: number): ChannelState => ({ rocket: rocket(channel, speed), lastApplied: 1, pending: [] });

type Event =
  | { kind: "syncStarted" }
  | { kind: "syncDone" }
  | { kind: "stored"; channel: string; speed: number | null; change: StateChange }
  | { kind: "removed"; channel: string; change: StateChange }
  | { kind: "unreadable"; channel: string; change: StateChange };

class Recorder implements ChannelStateListener {
  readonly events: Event[] = [];
  syncStarted(): void {
    this.events.push({ kind: "syncStarted" });
  }
  syncDone(): void {
    this.events.push({ kind: "syncDone" });
  }
  stored(channel: string, s: ChannelState, change: StateChange): void {
    this.events.push({ kind: "stored", channel, speed: s.rocket?.speed ?? null, change });
  }
  removed(channel: string, change: StateChange): void {
    this.events.push({ kind: "removed", channel, change });
  }
  unreadable(channel: string, _error: Error, change: StateChange): void {
    this.events.push({ kind: "unreadable", channel, change });
  }
  summary(): string[] {
    return this.events.map((e) => {
      if (e.kind === "stored") return `stored ${e.channel} ${e.speed}${e.change.initial ? " (initial)" : ""}`;
      if (e.kind === "removed" || e.kind === "unreadable") return `${e.kind} ${e.channel}${e.change.initial ? " (initial)" : ""}`;
      return e.kind;
    });
  }
  async waitFor(predicate: (events: Event[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > deadline) throw new Error(`timed out; events so far: ${JSON.stringify(this.summary())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe("ChannelStateWatcher against a real nats-server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let bucketNumber = 0;
  const watchers: ChannelStateWatcher[] = [];

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });

  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.stop()));
  });

  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  /** A fresh bucket per test; watchers only ever see its keys. */
  async function freshBucket(): Promise<KV> {
    bucketNumber += 1;
    kv = await openBucket(new Kvm(nc), `state_test_${bucketNumber}`, 1);
    return kv;
  }

  function watch(bucket: KV): Recorder {
    const recorder = new Recorder();
    const watcher = new ChannelStateWatcher(bucket, recorder, log);
    watchers.push(watcher);
    watcher.start();
    return recorder;
  }

  it("finishes the sync pass at once on an empty bucket, then delivers live changes", async () => {
    const bucket = await freshBucket();
    const rec = watch(bucket);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    const store = new ChannelStateStore(bucket);
    const before = Date.now();
    await store.save("a", state("a", 500), 0);
    await rec.waitFor((e) => e.some((x) => x.kind === "stored"));
    expect(rec.summary()).toEqual(["syncStarted", "syncDone", "stored a 500"]);
    const stored = rec.events[2] as Extract<Event, { kind: "stored" }>;
    expect(stored.change.revision).toBeGreaterThan(0);
    expect(stored.change.writtenAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it("delivers every existing channel once, deleted and purged ones as removed, then says the pass is done", async () => {
    const bucket = await freshBucket();
    const store = new ChannelStateStore(bucket);
    await store.save("a", state("a", 500), 0);
    const rev = await store.save("b", state("b", 600), 0);
    await store.save("b", state("b", 700), rev);
    await store.save("c", { rocket: null, lastApplied: 0, pending: [] }, 0);
    await store.save("gone", state("gone", 1), 0);
    await bucket.delete(keyForChannel("gone"));
    await store.save("purged", state("purged", 1), 0);
    await bucket.purge(keyForChannel("purged"));
    await store.save("weird:channel/é", state("weird:channel/é", 800), 0);

    const rec = watch(bucket);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    const summary = rec.summary();
    expect(summary[0]).toBe("syncStarted");
    expect(summary[summary.length - 1]).toBe("syncDone");
    expect(summary.slice(1, -1).sort()).toEqual(
      [
        "stored a 500 (initial)",
        "stored b 700 (initial)",
        "stored c null (initial)",
        "removed gone (initial)",
        "removed purged (initial)",
        "stored weird:channel/é 800 (initial)",
      ].sort(),
    );
  });

  it("reports deletes, purges and undecodable entries as they happen and keeps watching", async () => {
    const bucket = await freshBucket();
    const store = new ChannelStateStore(bucket);
    await store.save("a", state("a", 500), 0);
    const rec = watch(bucket);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    await bucket.put(keyForChannel("junk"), new TextEncoder().encode("not json"));
    await bucket.delete(keyForChannel("a"));
    await store.save("b", state("b", 900), 0);
    await bucket.purge(keyForChannel("b"));
    await store.save("c", state("c", 100), 0);
    await rec.waitFor((e) => e.some((x) => x.kind === "stored" && x.channel === "c"));
    expect(rec.summary()).toEqual([
      "syncStarted",
      "stored a 500 (initial)",
      "syncDone",
      "unreadable junk",
      "removed a",
      "stored b 900",
      "removed b",
      "stored c 100",
    ]);
  });

  it("keeps delivering changes after the nats-server restarts", async () => {
    const bucket = await freshBucket();
    const store = new ChannelStateStore(bucket);
    await store.save("a", state("a", 500), 0);
    const rec = watch(bucket);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));

    await server.stop();
    await server.launch();
    // The client reconnects by itself; writes succeed once JetStream is back.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await store.save("b", state("b", 600), 0);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await rec.waitFor((e) => e.some((x) => x.kind === "stored" && x.channel === "b"), 30_000);
    const b = rec.events.find((x) => x.kind === "stored" && x.channel === "b")!;
    expect(b).toMatchObject({ speed: 600 });
  }, 60_000);
});

describe("ChannelStateWatcher when its watch ends", () => {
  // The real watch survives reconnects by itself (tested above), so ending it
  // takes a stand-in bucket: this checks only the restart logic.
  it("restarts the watch with a new sync pass", async () => {
    const encoder = new TextEncoder();
    const entry = (key: string, speed: number, revision: number, delta: number) => ({
      key,
      revision,
      delta,
      created: new Date(),
      operation: "PUT",
      value: encoder.encode(JSON.stringify({ v: 1, rocket: rocket(key, speed), lastApplied: 1, pending: [] })),
    });
    const passes = [
      [entry("a", 1, 1, 1), entry("b", 2, 2, 0)],
      [entry("a", 3, 3, 0)],
    ];
    let watches = 0;
    const bucket = {
      status: async () => ({ values: 2 }),
      watch: async () => {
        const entries = passes[Math.min(watches, passes.length - 1)]!;
        const last = watches >= passes.length;
        watches += 1;
        let stopped = false;
        return {
          stop: () => {
            stopped = true;
          },
          async *[Symbol.asyncIterator]() {
            if (last) {
              while (!stopped) await new Promise((r) => setTimeout(r, 10));
              return;
            }
            yield* entries;
          },
        };
      },
    } as unknown as KV;
    const rec = new Recorder();
    const watcher = new ChannelStateWatcher(bucket, rec, log);
    watcher.start();
    await rec.waitFor((e) => e.filter((x) => x.kind === "syncDone").length >= 2, 10_000);
    await watcher.stop();
    expect(rec.summary().slice(0, 7)).toEqual([
      "syncStarted",
      "stored a 1 (initial)",
      "stored b 2 (initial)",
      "syncDone",
      "syncStarted",
      "stored a 3 (initial)",
      "syncDone",
    ]);
  });
});
