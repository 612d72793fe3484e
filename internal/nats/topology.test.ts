import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsServer } from "../testing/nats-server.js";
import { provisionTopology, STREAM_NAME, TopologyConflictError, TOPOLOGY_BUCKET } from "./topology.js";
import { ChannelStateStore, channelForKey, keyForChannel, RevisionConflictError } from "./channel-state-store.js";
import { STATE_BUCKET } from "./topology.js";
import { emptyChannelState } from "../domain/sequencing.js";

const log = pino({ level: "silent" });
const settings = { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 };

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
