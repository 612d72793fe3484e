import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Kvm, type KV } from "@nats-io/kv";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsServer } from "../testing/nats-server.js";
import type { ChannelState } from "../domain/sequencing.js";
import type { Rocket } from "../domain/rocket.js";
import { ChannelStateStore, keyForChannel } from "./channel-state-store.js";
import { ChannelStateWatcher, DEFAULT_WATCHER_SETTINGS } from "./channel-state-watcher.js";
import type { ChannelStateListener, StateChange } from "../view/channel-state-listener.js";
import { openBucket, republishTo } from "./topology.js";

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
  let jsm: JetStreamManager;
  let kv: KV;
  let bucketNumber = 0;
  const watchers: ChannelStateWatcher[] = [];
  /** Each bucket's name and where it republishes. */
  const watched = new Map<KV, { bucket: string; changes: string }>();

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    jsm = await jetstreamManager(nc);
  });

  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.stop()));
  });

  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  /**
   * A fresh bucket per test, republishing its entries as the state bucket
   * does; watchers only ever see its keys. `republish: "partly"` republishes
   * only the key `seen`, so that writes of other keys are republishes the
   * watcher never gets (as after a reconnect, a slow connection or a change
   * of leader).
   */
  async function freshBucket(republish: "all" | "partly" | "none" = "all"): Promise<KV> {
    bucketNumber += 1;
    const bucket = `state_test_${bucketNumber}`;
    const changes = `test.changes.${bucketNumber}`;
    if (republish === "partly") {
      kv = await new Kvm(nc).create(bucket, { history: 1, republish: { src: `$KV.${bucket}.seen`, dest: `${changes}.seen` } });
    } else {
      kv = await openBucket(new Kvm(nc), bucket, 1, republish === "all" ? { changesPrefix: changes } : {});
    }
    watched.set(kv, { bucket, changes });
    return kv;
  }

  function watch(bucket: KV, probeIntervalMs = DEFAULT_WATCHER_SETTINGS.probeIntervalMs): Recorder {
    const recorder = new Recorder();
    const watcher = new ChannelStateWatcher(nc, jsm, watched.get(bucket)!, recorder, log, { ...DEFAULT_WATCHER_SETTINGS, probeIntervalMs });
    watchers.push(watcher);
    watcher.start();
    return recorder;
  }

  /** The revisions delivered outside sync passes, in delivery order. */
  const liveRevisions = (rec: Recorder) => rec.events.flatMap((e) => ("change" in e && !e.change.initial ? [e.change.revision] : []));

  it("republishes the state bucket's entries where the API follows them", () => {
    expect(republishTo("rockets_state", "rockets.state")).toEqual({ src: "$KV.rockets_state.>", dest: "rockets.state.>" });
  });

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

  it("delivers every existing channel once, deleted, purged and never-launched ones as removed, then says the pass is done", async () => {
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
        // No launched rocket: known from the entry's first bytes, never decoded, and not a rocket in the view.
        "removed c (initial)",
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

  it("delivers every change in the bucket's order, each once, with its revision, and holds no consumer", async () => {
    const bucket = await freshBucket();
    const store = new ChannelStateStore(bucket);
    const rec = watch(bucket);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    const written: number[] = [];
    const revisions = new Map<string, number>();
    for (let i = 0; i < 300; i += 1) {
      const channel = `c${i % 7}`;
      const rev = await store.save(channel, state(channel, i), revisions.get(channel) ?? 0);
      revisions.set(channel, rev);
      written.push(rev);
    }
    await rec.waitFor((e) => e.filter((x) => x.kind === "stored").length >= 300);
    expect(liveRevisions(rec)).toEqual(written);
    expect((await jsm.streams.info(`KV_${watched.get(bucket)!.bucket}`)).state.consumer_count).toBe(0);
  });

  it("reads from the bucket what it was not republished, in order, when a later change shows the hole", async () => {
    const bucket = await freshBucket("partly");
    const store = new ChannelStateStore(bucket);
    // A long probe interval: only the hole before a republished change can reveal what was missed.
    const rec = watch(bucket, 60_000);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    const missed1 = await store.save("missed-1", state("missed-1", 1), 0);
    const missed2 = await store.save("missed-2", state("missed-2", 2), 0);
    const seen = await store.save("seen", state("seen", 3), 0);
    await rec.waitFor((e) => e.some((x) => x.kind === "stored" && x.channel === "seen"));
    expect(rec.summary()).toEqual(["syncStarted", "syncDone", "stored missed-1 1", "stored missed-2 2", "stored seen 3"]);
    expect(liveRevisions(rec)).toEqual([missed1, missed2, seen]);
  });

  it("finds a lost last change by probing the bucket, with nothing after it to show the hole", async () => {
    const bucket = await freshBucket("partly");
    const store = new ChannelStateStore(bucket);
    const rec = watch(bucket, 200);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    await store.save("never-republished", state("never-republished", 7), 0);
    await rec.waitFor((e) => e.some((x) => x.kind === "stored" && x.channel === "never-republished"), 5000);
    expect(rec.summary()).toEqual(["syncStarted", "syncDone", "stored never-republished 7"]);
  });

  it("follows a bucket that does not republish (created before it did) by probing it", async () => {
    const bucket = await freshBucket("none");
    const store = new ChannelStateStore(bucket);
    await store.save("a", state("a", 1), 0);
    const rec = watch(bucket, 200);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    await store.save("b", state("b", 2), 0);
    await rec.waitFor((e) => e.some((x) => x.kind === "stored" && x.channel === "b"), 5000);
    expect(rec.summary()).toEqual(["syncStarted", "stored a 1 (initial)", "syncDone", "stored b 2"]);
  });

  it("starts a new sync pass when the bucket is deleted and created again", async () => {
    const bucket = await freshBucket();
    const { bucket: name, changes } = watched.get(bucket)!;
    const store = new ChannelStateStore(bucket);
    await store.save("a", state("a", 1), 0);
    await store.save("b", state("b", 2), 0);
    const rec = watch(bucket, 200);
    await rec.waitFor((e) => e.some((x) => x.kind === "syncDone"));
    await jsm.streams.delete(`KV_${name}`);
    const again = await openBucket(new Kvm(nc), name, 1, { changesPrefix: changes });
    await new ChannelStateStore(again).save("c", state("c", 3), 0);
    await rec.waitFor((e) => e.filter((x) => x.kind === "syncDone").length >= 2, 10_000);
    expect(rec.summary()).toContain("stored c 3 (initial)");
    const secondPass = rec.summary().slice(rec.summary().lastIndexOf("syncStarted"));
    expect(secondPass).toEqual(["syncStarted", "stored c 3 (initial)", "syncDone"]);
  });
});
