import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsServer } from "../testing/nats-server.js";
import {
  changeTopology,
  describeTopology,
  provisionTopology,
  republishTo,
  STATE_CHANGES_PREFIX,
  STREAM_NAME,
  TopologyConflictError,
  TOPOLOGY_BUCKET,
  upgradeReadPaths,
} from "./topology.js";
import { RevisionConflictError, StateStoreFullError } from "../sequencer/channel-states.js";
import { ChannelStateStore, channelForKey, keyForChannel } from "./channel-state-store.js";
import { STATE_BUCKET } from "./topology.js";
import { emptyChannelState } from "../domain/sequencing.js";
import { DEFAULT_STATE_MAX_BYTES } from "../config/common.js";
import { isStoreFull } from "./jetstream-codes.js";

const log = pino({ level: "silent" });
const settings = { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 };
const unset = { partitions: undefined, replicas: undefined };

describe("topology provisioning (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("creates the stream and buckets, and is idempotent", async () => {
    const first = await provisionTopology(nc, settings, log);
    const second = await provisionTopology(nc, settings, log);
    expect(first.topology.partitions).toBe(16);
    expect(second.topology.partitions).toBe(16);
    const info = await first.jsm.streams.info(STREAM_NAME);
    expect(info.config.duplicate_window).toBeGreaterThanOrEqual(120 * 1e9);
    expect(info.config.subjects).toEqual(["rockets.events.>"]);
  });

  it("creates the events stream with direct gets and the state bucket republishing its entries, for readers that hold no consumer", async () => {
    const { jsm } = await provisionTopology(nc, settings, log);
    expect((await jsm.streams.info(STREAM_NAME)).config.allow_direct).toBe(true);
    const state = (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config;
    expect(state.republish).toEqual(republishTo(STATE_BUCKET, STATE_CHANGES_PREFIX));
    expect(state.allow_direct).toBe(true);
  });

  it("upgrades a deployment created before, once and only when asked: provisioning never does", async () => {
    const fresh = await NatsServer.start();
    const c = await connect({ servers: fresh.url });
    try {
      const { jsm } = await provisionTopology(c, settings, log);
      // As a deployment from before had them.
      const events = (await jsm.streams.info(STREAM_NAME)).config;
      await jsm.streams.update(STREAM_NAME, { ...events, allow_direct: false });
      const state = (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config;
      await jsm.streams.update(`KV_${STATE_BUCKET}`, { ...state, republish: undefined });
      await provisionTopology(c, settings, log);
      expect((await jsm.streams.info(STREAM_NAME)).config.allow_direct).toBe(false);
      expect((await jsm.streams.info(`KV_${STATE_BUCKET}`)).config.republish).toBeUndefined();

      expect(await upgradeReadPaths(c, log)).toEqual([`stream ${STREAM_NAME}: direct gets allowed`, `bucket ${STATE_BUCKET}: entries republished on rockets.state.>`]);
      expect((await jsm.streams.info(STREAM_NAME)).config.allow_direct).toBe(true);
      expect((await jsm.streams.info(`KV_${STATE_BUCKET}`)).config.republish?.dest).toBe("rockets.state.>");
      expect(await upgradeReadPaths(c, log)).toEqual([]);
    } finally {
      await c.close();
      await fresh.dispose();
    }
  });

  it("refuses a service configured with another partition count, naming both", async () => {
    await provisionTopology(nc, settings, log);
    await expect(provisionTopology(nc, { ...settings, partitions: 8 }, log)).rejects.toThrow(TopologyConflictError);
    await expect(provisionTopology(nc, { ...settings, partitions: 8 }, log)).rejects.toThrow(/PARTITIONS=8 conflicts .* 16 partitions/);
    await expect(provisionTopology(nc, { ...settings, partitions: 16 }, log)).resolves.toBeDefined();
  });

  it("agrees on one partition count when services start at once", async () => {
    const fresh = await NatsServer.start();
    const conns = await Promise.all([1, 2, 3].map(() => connect({ servers: fresh.url })));
    try {
      const results = await Promise.allSettled(conns.map((c) => provisionTopology(c, { ...settings, partitions: 4 }, log)));
      for (const r of results) {
        expect(r.status).toBe("fulfilled");
        if (r.status === "fulfilled") expect(r.value.topology.partitions).toBe(4);
      }
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await fresh.dispose();
    }
    expect(TOPOLOGY_BUCKET).toBe("rockets_topology");
  });

  it("records the replica count once: unset adopts it, a conflicting one refuses, naming the deliberate way", async () => {
    await provisionTopology(nc, settings, log);
    expect((await provisionTopology(nc, unset, log)).topology.replicas).toBe(1);
    await expect(provisionTopology(nc, { ...unset, replicas: 3 }, log)).rejects.toThrow(
      /STREAM_REPLICAS=3 conflicts with this deployment's 1 replicas .*npm run topology -- set replicas=3/,
    );
    expect((await describeTopology(nc)).replicas).toBe(1);
  });

  it("never changes an existing stream: a differing explicit setting refuses to start, unset ones adopt the stream's", async () => {
    const { jsm } = await provisionTopology(nc, settings, log);
    const before = (await jsm.streams.info(STREAM_NAME)).config;
    // Defaults: a week, sized bytes, S2 compression.
    expect(before.max_age).toBe(7 * 86_400 * 1e9);
    expect(before.max_bytes).toBe(6 * 2 ** 30);
    expect(before.compression).toBe("s2");
    await expect(provisionTopology(nc, { ...unset, maxAgeSeconds: 3600, compression: "none" }, log)).rejects.toThrow(
      /STREAM_MAX_AGE=3600 but stream ROCKETS_EVENTS has 604800; STREAM_COMPRESSION=none but .* has s2\. .*npm run topology -- set max-age=3600 compression=none/,
    );
    await expect(provisionTopology(nc, { ...unset, duplicateWindowSeconds: 300 }, log)).rejects.toThrow(TopologyConflictError);
    expect((await jsm.streams.info(STREAM_NAME)).config).toEqual(before);
    await expect(provisionTopology(nc, unset, log)).resolves.toBeDefined();
  });

  it("changes the stream when asked deliberately, and then agrees with a service configured so", async () => {
    const { jsm } = await provisionTopology(nc, settings, log);
    await changeTopology(nc, { maxAgeSeconds: 2 * 86_400, maxBytes: 2 ** 30 }, log);
    const cfg = (await jsm.streams.info(STREAM_NAME)).config;
    expect(cfg.max_age).toBe(2 * 86_400 * 1e9);
    expect(cfg.max_bytes).toBe(2 ** 30);
    await expect(provisionTopology(nc, { ...unset, maxAgeSeconds: 2 * 86_400, maxBytes: 2 ** 30 }, log)).resolves.toBeDefined();
    expect((await describeTopology(nc)).stream).toMatchObject({ maxAgeSeconds: 2 * 86_400, maxBytes: 2 ** 30, compression: "s2", replicas: 1 });
  });

  it("caps the state bucket at STATE_MAX_BYTES: default when new, unset adopts, a conflict refuses naming topology set, which changes it", async () => {
    const fresh = await NatsServer.start();
    const c = await connect({ servers: fresh.url });
    try {
      const { jsm } = await provisionTopology(c, unset, log);
      const stateBytes = async () => (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config.max_bytes;
      expect(await stateBytes()).toBe(DEFAULT_STATE_MAX_BYTES);
      await expect(provisionTopology(c, { ...unset, stateMaxBytes: 2 ** 20 }, log)).rejects.toThrow(TopologyConflictError);
      await expect(provisionTopology(c, { ...unset, stateMaxBytes: 2 ** 20 }, log)).rejects.toThrow(
        /STATE_MAX_BYTES=1048576 but bucket rockets_state has 1073741824.*`npm run topology -- set state-max-bytes=1048576`/,
      );
      await changeTopology(c, { stateMaxBytes: 2 ** 20 }, log);
      expect(await stateBytes()).toBe(2 ** 20);
      await expect(provisionTopology(c, { ...unset, stateMaxBytes: 2 ** 20 }, log)).resolves.toBeDefined();
      await expect(provisionTopology(c, unset, log)).resolves.toBeDefined();
      expect((await describeTopology(c)).state).toMatchObject({ maxBytes: 2 ** 20 });
    } finally {
      await c.close();
      await fresh.dispose();
    }
  });

  it("creates a new state bucket with the STATE_MAX_BYTES asked for, and a full bucket refuses writes until raised", async () => {
    const fresh = await NatsServer.start();
    const c = await connect({ servers: fresh.url });
    try {
      const { kvm } = await provisionTopology(c, { ...unset, stateMaxBytes: 2 ** 16 }, log);
      const store = new ChannelStateStore(await kvm.open(STATE_BUCKET));
      let refused: unknown;
      let written = 0;
      for (; written < 1000; written += 1) {
        try {
          await store.save(`full-${written}`, emptyChannelState(), 0);
        } catch (err) {
          refused = err;
          break;
        }
      }
      expect(written).toBeGreaterThan(10);
      // The port's error, carrying the server's refusal.
      expect(refused, String(refused)).toBeInstanceOf(StateStoreFullError);
      expect(isStoreFull((refused as Error).cause), String((refused as Error).cause)).toBe(true);
      await changeTopology(c, { stateMaxBytes: 2 ** 20 }, log);
      await expect(store.save(`full-${written}`, emptyChannelState(), 0)).resolves.toBeGreaterThan(0);
    } finally {
      await c.close();
      await fresh.dispose();
    }
  });

  it("says plainly that three replicas cannot be placed on one server", async () => {
    const single = await NatsServer.start();
    const c = await connect({ servers: single.url });
    try {
      await expect(provisionTopology(c, { ...unset, replicas: 3 }, log)).rejects.toThrow(
        /STREAM_REPLICAS=3 cannot be placed: .*use 1 on a single server/,
      );
    } finally {
      await c.close();
      await single.dispose();
    }
  });

  it("rejects a state write made from a stale revision", async () => {
    const { kvm } = await provisionTopology(nc, settings, log);
    const store = new ChannelStateStore(await kvm.open(STATE_BUCKET));
    const channel = "stale-writer-test";
    const rev1 = await store.save(channel, emptyChannelState(), 0);
    await expect(store.save(channel, emptyChannelState(), 0)).rejects.toBeInstanceOf(RevisionConflictError);
    const rev2 = await store.save(channel, { ...emptyChannelState(), lastApplied: 0 }, rev1);
    await expect(store.save(channel, emptyChannelState(), rev1)).rejects.toBeInstanceOf(RevisionConflictError);
    expect((await store.load(channel))?.revision).toBe(rev2);
  });

  it("stores channels whose ids are not valid KV keys", async () => {
    const { kvm } = await provisionTopology(nc, settings, log);
    const store = new ChannelStateStore(await kvm.open(STATE_BUCKET));
    const channel = "rocket#1:ü";
    expect(keyForChannel(channel)).toMatch(/^b64\./);
    expect(channelForKey(keyForChannel(channel))).toBe(channel);
    expect(keyForChannel("193270a9-c9cf-404a-8f83-838e71d9ae67")).toBe("193270a9-c9cf-404a-8f83-838e71d9ae67");
    await store.save(channel, emptyChannelState(), 0);
    expect((await store.load(channel))?.state).toEqual(emptyChannelState());
  });
});
