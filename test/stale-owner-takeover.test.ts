// Never-launched channels across a takeover from a paused owner, with real
// sequencer processes on a real nats-server. MAX_UNLAUNCHED_CHANNELS=0: every
// such channel's entry is given up at the next sweep, its messages left in the
// stream for its launch to find.
// - partition 0: the first owner parked messages before it was paused;
// - partition 1: the paused owner's pulls outlive its lease and receive
//   messages after the takeover; when it wakes it settles them only through
//   compare-and-set writes, which the new owner's writes fence.
// Every rocket must end exact: every acknowledgement has a committed write
// behind it, whoever made it (docs/decisions/every-ack-has-a-write.md).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { RocketMessage } from "../internal/domain/message.js";
import { partitionOf } from "../internal/domain/partition.js";
import { apply, type Rocket } from "../internal/domain/rocket.js";
import { ChannelStateStore } from "../internal/nats/channel-state-store.js";
import { consumerName } from "../internal/nats/partition-consumer.js";
import { provisionTopology, STATE_BUCKET, STREAM_NAME } from "../internal/nats/topology.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { rocketMessages, Rng, subjectOf } from "../internal/testing/rocket-traffic.js";
import { ServiceProcess } from "../internal/testing/service-process.js";

const PARTITIONS = 2;
const LEASE_TTL_MS = 1000;
const FETCH_BATCH = 100;
const log = pino({ level: "silent" });

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const instances: ServiceProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startInstance(id: string): Promise<ServiceProcess> {
  const instance = await ServiceProcess.start("sequencer", {
    natsUrl: server.url,
    env: {
      INSTANCE_ID: id,
      PARTITIONS: String(PARTITIONS),
      LEASE_TTL_MS: String(LEASE_TTL_MS),
      HEARTBEAT_MS: "200",
      // Pulls that outlive the lease by far: what a paused owner leaves open at the server.
      FETCH_EXPIRES_MS: "15000",
      FETCH_BATCH: String(FETCH_BATCH),
      MAX_UNLAUNCHED_CHANNELS: "0",
      RETRY_DELAY_MS: "200",
      ACK_WAIT_MS: "5000",
      LOG_LEVEL: "info",
    },
  });
  instances.push(instance);
  return instance;
}

async function owns(instance: ServiceProcess, partitions: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const owned = await instance.ownedPartitions().catch(() => [] as number[]);
    if (partitions.every((p) => owned.includes(p))) return;
    if (Date.now() > deadline) throw new Error(`${instance.name} owns ${JSON.stringify(owned)}, not ${JSON.stringify(partitions)}, after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function publish(messages: RocketMessage[]): Promise<void> {
  await Promise.all(messages.map((m) => js.publish(subjectOf(m, PARTITIONS), JSON.stringify(m))));
}

/** `count` rockets of `length` messages whose channels fall in `partition`. */
function rocketsIn(partition: number, count: number, length: number, seed: number): RocketMessage[][] {
  const rng = new Rng(seed);
  const rockets: RocketMessage[][] = [];
  for (let i = 0; rockets.length < count; i += 1) {
    const channel = `stale-owner-${seed}-${i}`;
    if (partitionOf(channel, PARTITIONS) === partition) rockets.push(rocketMessages(channel, length, rng));
  }
  return rockets;
}

async function settled(partition: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await jsm.consumers.info(STREAM_NAME, consumerName(partition));
    if (info.num_pending === 0 && info.num_ack_pending === 0) return;
    if (Date.now() > deadline) throw new Error(`partition ${partition}: ${info.num_pending} pending, ${info.num_ack_pending} unacked after ${timeoutMs} ms`);
    await sleep(50);
  }
}

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await provisionTopology(nc, { partitions: PARTITIONS, replicas: 1, duplicateWindowSeconds: 120 }, log);
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop("SIGKILL")));
  await nc?.close();
  await server?.dispose();
});

describe("never-launched channels across a takeover from a paused owner", () => {
  it("end exact once launched, whether parked before the pause or delivered to the paused owner's pulls after the takeover", async () => {
    const first = rocketsIn(0, 30, 6, 1);
    const second = rocketsIn(1, 30, 6, 2);
    const a = await startInstance("stale-a");
    await owns(a, [0, 1], 15_000);

    // Partition 0: messages 2 and 3 of each rocket, parked by the first owner (90 of its 100-message pull), their entries given up.
    await publish(first.flatMap((r) => r.slice(1, 4)));
    await settled(0, 15_000);

    a.signal("SIGSTOP");
    const b = await startInstance("stale-b");
    await owns(b, [0, 1], 20_000);

    // The paused owner's pulls are the oldest waiting: they take the first of these (10 on partition 0, 100 on partition 1).
    await publish([...first.flatMap((r) => r.slice(4)), ...second.flatMap((r) => r.slice(1))]);
    await sleep(500);
    a.signal("SIGCONT");
    await sleep(1000);
    await publish([...first, ...second].map((r) => r[0]!));

    const store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET));
    const rockets = [...first, ...second];
    const deadline = Date.now() + 45_000;
    let unfinished: string[] = [];
    do {
      unfinished = [];
      for (const messages of rockets) {
        const s = await store.load(messages[0]!.metadata.channel);
        if (s?.state.lastApplied !== messages.length || s.state.gap !== undefined) unfinished.push(messages[0]!.metadata.channel);
      }
      if (unfinished.length > 0) await sleep(250);
    } while (unfinished.length > 0 && Date.now() < deadline);
    expect(unfinished).toEqual([]);
    for (const messages of rockets) {
      const expected = messages.reduce<Rocket | null>((r, m) => apply(r, m), null);
      expect((await store.load(messages[0]!.metadata.channel))?.state.rocket).toEqual(expected);
    }
    await settled(0, 30_000);
    await settled(1, 30_000);
    expect(a.logs()).toMatch(/lease/);
  });
});
