// A channel whose state entry stops decoding, with a real sequencer process
// on a real nats-server: the sequencer quarantines it (a record keeping the
// bad bytes, locating what it acks since) and the rest of its partition goes
// on; `npm run repair` lists it and rebuilds its state from the events
// stream; the sequencer then takes it from there, exact.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { RocketMessage } from "../internal/domain/message.js";
import { partitionOf } from "../internal/domain/partition.js";
import { apply, type Rocket } from "../internal/domain/rocket.js";
import { ChannelStateStore, keyForChannel } from "../internal/nats/channel-state-store.js";
import { provisionTopology, STATE_BUCKET } from "../internal/nats/topology.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { rocketMessages, Rng, subjectOf } from "../internal/testing/rocket-traffic.js";
import { ServiceProcess } from "../internal/testing/service-process.js";
import { listQuarantined, repair } from "../scripts/repair.js";

const PARTITIONS = 2;

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let kv: KV;
let store: ChannelStateStore;
let sequencer: ServiceProcess;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inOrder = (messages: RocketMessage[]) => messages.reduce<Rocket | null>((r, m) => apply(r, m), null);

async function publish(messages: RocketMessage[]): Promise<void> {
  for (const m of messages) await js.publish(subjectOf(m, PARTITIONS), JSON.stringify(m));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Two rockets on the same partition. */
function twoRockets(): [RocketMessage[], RocketMessage[]] {
  const found: RocketMessage[][] = [];
  for (let i = 0; found.length < 2; i += 1) {
    const channel = `quarantine-${i}`;
    if (found.length === 0 || partitionOf(channel, PARTITIONS) === partitionOf(found[0]![0]!.metadata.channel, PARTITIONS)) {
      found.push(rocketMessages(channel, 10, new Rng(50 + i)));
    }
  }
  return [found[0]!, found[1]!];
}

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  await provisionTopology(nc, { partitions: PARTITIONS, replicas: 1, duplicateWindowSeconds: 120 }, pino({ level: "silent" }));
  kv = await new Kvm(js).open(STATE_BUCKET);
  store = new ChannelStateStore(kv);
  sequencer = await ServiceProcess.start("sequencer", {
    natsUrl: server.url,
    env: { PARTITIONS: String(PARTITIONS), LEASE_TTL_MS: "2000", HEARTBEAT_MS: "500", RETRY_DELAY_MS: "200", LOG_LEVEL: "info" },
  });
});

afterAll(async () => {
  await sequencer?.stop("SIGKILL");
  await nc?.close();
  await server?.dispose();
});

describe("a channel whose entry stops decoding", () => {
  it("is quarantined without stopping its partition, listed, rebuilt from the stream by npm run repair, and goes on exact", async () => {
    const [broken, neighbour] = twoRockets();
    const channel = broken[0]!.metadata.channel;
    await publish(broken.slice(0, 5));
    await waitFor("the first five applied", async () => ((await store.load(channel))?.state.lastApplied === 5 ? true : undefined));

    // A hand edit (or a bug elsewhere) leaves bytes that are not a state.
    await kv.put(keyForChannel(channel), "{\"v\":2,\"rocket\":\"garbage\"}");
    await publish([...broken.slice(5, 8), ...neighbour]);

    // The neighbour on the same partition is not held up, and the broken channel's messages are acked against a quarantine record.
    await waitFor("the neighbour applied", async () => ((await store.load(neighbour[0]!.metadata.channel))?.state.lastApplied === 10 ? true : undefined));
    const quarantined = await waitFor("the quarantine", async () => {
      const found = await listQuarantined(nc);
      return found.length === 1 ? found[0] : undefined;
    });
    expect(quarantined.channel).toBe(channel);
    expect(Buffer.from(quarantined.quarantine.original, "base64").toString()).toBe("{\"v\":2,\"rocket\":\"garbage\"}");
    expect(quarantined.quarantine.problems.length).toBeGreaterThan(0);
    await sequencer.waitForLog(/quarantined/, 10_000);

    const outcome = await repair(nc, channel);
    expect(outcome).toMatchObject({ kind: "repaired", messages: 8 });
    expect((await store.load(channel))?.state).toEqual({ rocket: inOrder(broken.slice(0, 8)), lastApplied: 8, pending: [] });
    expect(await listQuarantined(nc)).toEqual([]);
    // Nothing to repair twice.
    expect(await repair(nc, channel)).toEqual({ kind: "healthy" });

    await publish(broken.slice(8));
    await waitFor("the rest applied", async () => ((await store.load(channel))?.state.lastApplied === 10 ? true : undefined));
    expect((await store.load(channel))?.state.rocket).toEqual(inOrder(broken));
  });

  it("refuses to take a name that is not a channel id", async () => {
    await expect(repair(nc, "not.a.channel")).rejects.toThrow(/is not a channel id/);
  });
});
