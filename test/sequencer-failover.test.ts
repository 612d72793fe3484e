// Sequencer instances as real processes sharing one nats-server: they split
// the partitions evenly, a SIGKILLed instance's partitions move within 15 s
// and the final state is still exact (nothing lost, nothing applied twice),
// and a SIGTERMed instance hands over at once.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { ChannelStateStore } from "../internal/nats/channel-state-store.js";
import { consumerName } from "../internal/nats/partition-consumer.js";
import { provisionTopology, STATE_BUCKET, STREAM_NAME } from "../internal/nats/topology.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { makeTraffic, shuffledWithDuplicates, subjectOf } from "../internal/testing/rocket-traffic.js";
import { ServiceProcess } from "../internal/testing/service-process.js";
import type { RocketMessage } from "../internal/domain/message.js";

const PARTITIONS = 8;
const LEASE_TTL_MS = 4000;
const REBALANCE_LIMIT_MS = 15_000;
const log = pino({ level: "silent" });

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
const instances: ServiceProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startInstance(id: string): Promise<ServiceProcess> {
  const instance = await ServiceProcess.start("sequencer", {
    natsUrl: server.url,
    env: {
      INSTANCE_ID: id,
      PARTITIONS: String(PARTITIONS),
      LEASE_TTL_MS: String(LEASE_TTL_MS),
      HEARTBEAT_MS: "500",
      // A killed instance's unacked messages come back after this.
      ACK_WAIT_MS: "5000",
      RETRY_DELAY_MS: "200",
      LOG_LEVEL: "info",
    },
  });
  instances.push(instance);
  return instance;
}

/** Waits until `group` owns every partition exactly once with shares within one; returns how long it took. */
async function balanced(group: ServiceProcess[], timeoutMs: number): Promise<{ ms: number; shares: number[] }> {
  const started = Date.now();
  for (;;) {
    const owned = await Promise.all(group.map((i) => i.ownedPartitions().catch(() => [] as number[])));
    const all = owned.flat();
    const shares = owned.map((o) => o.length);
    if (all.length === PARTITIONS && new Set(all).size === PARTITIONS && Math.max(...shares) - Math.min(...shares) <= 1) {
      return { ms: Date.now() - started, shares };
    }
    if (Date.now() - started > timeoutMs) throw new Error(`not balanced after ${timeoutMs} ms: ${JSON.stringify(owned)}`);
    await sleep(100);
  }
}

async function publish(messages: RocketMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 256) {
    await Promise.all(messages.slice(i, i + 256).map((m) => js.publish(subjectOf(m, PARTITIONS), JSON.stringify(m))));
  }
}

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  await provisionTopology(nc, { partitions: PARTITIONS, replicas: 1, duplicateWindowSeconds: 120 }, log);
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop("SIGKILL")));
  await nc?.close();
  await server?.dispose();
});

describe("sequencer instances", () => {
  it("split partitions evenly, survive a SIGKILL mid-stream within 15 s, and end in exactly the in-order state", async () => {
    const one = await startInstance("seq-1");
    const two = await startInstance("seq-2");
    expect((await balanced([one, two], 10_000)).shares).toEqual([4, 4]);
    const three = await startInstance("seq-3");
    expect((await balanced([one, two, three], 10_000)).shares.sort()).toEqual([2, 3, 3]);

    const traffic = makeTraffic({ channels: 160, perChannel: 60, seed: 21 });
    const stream = shuffledWithDuplicates(traffic, 0.1, 22);
    const half = Math.floor(stream.length / 2);
    await publish(stream.slice(0, half));

    const victim = two;
    const victimPartitions = await victim.ownedPartitions();
    expect(victimPartitions.length).toBeGreaterThan(0);
    await victim.stop("SIGKILL");
    const publishing = publish(stream.slice(half));
    const moved = await balanced([one, three], REBALANCE_LIMIT_MS);
    expect(moved.ms).toBeLessThan(REBALANCE_LIMIT_MS);
    expect(moved.shares).toEqual([4, 4]);
    await publishing;

    const store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET));
    const deadline = Date.now() + 40_000;
    let unfinished: string[] = [];
    do {
      unfinished = [];
      for (const [channel, messages] of traffic.byChannel) {
        const s = await store.load(channel);
        if (!s || s.state.lastApplied !== messages.length || s.state.pending.length > 0) unfinished.push(channel);
      }
      if (unfinished.length > 0) await sleep(250);
    } while (unfinished.length > 0 && Date.now() < deadline);
    expect(unfinished).toEqual([]);
    for (const [channel, rocket] of traffic.expected) {
      expect((await store.load(channel))?.state.rocket, channel).toEqual(rocket);
    }
    // Messages the victim held unacked (already in KV, or duplicates) come back after ack_wait
    // and are acked as duplicates: every consumer ends with nothing pending or unacked.
    const jsm = await jetstreamManager(nc);
    const settleBy = Date.now() + 15_000;
    let unsettled: number[][] = [];
    do {
      unsettled = [];
      for (let p = 0; p < PARTITIONS; p += 1) {
        const info = await jsm.consumers.info(STREAM_NAME, consumerName(p));
        if (info.num_pending + info.num_ack_pending > 0) unsettled.push([p, info.num_pending, info.num_ack_pending]);
      }
      if (unsettled.length > 0) await sleep(250);
    } while (unsettled.length > 0 && Date.now() < settleBy);
    expect(unsettled).toEqual([]);
    const logs = one.logs() + three.logs();
    for (const p of victimPartitions) expect(logs).toMatch(new RegExp(`"partition":${p},"previousOwner":"seq-2".*partition taken over`));
  });

  it("hands a SIGTERMed instance's partitions over at once", async () => {
    const [one, three] = instances.filter((i) => i.running);
    await balanced([one!, three!], 10_000);
    const code = await three!.stop("SIGTERM");
    expect(code).toBe(0);
    const moved = await balanced([one!], LEASE_TTL_MS);
    expect(moved.ms).toBeLessThan(LEASE_TTL_MS);
    expect(three!.logs()).toMatch(/partitions released/);
  });
});
