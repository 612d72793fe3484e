// What a partition's durable pull consumer does (PartitionSource, as
// internal/nats/partition-consumer.ts configures it on JetStream), held
// against both: the JetStream consumer on a real nats-server, and the
// in-memory consumer the simulator runs the sequencer on
// (internal/testing/memory-partition-consumer.ts). A rule the memory one
// broke would let the simulation pass against a sequencer that fails on NATS.

import { expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { eventSubject } from "../domain/partition.js";
import { PartitionConsumer } from "../nats/partition-consumer.js";
import { provisionTopology } from "../nats/topology.js";
import { describeContract, NatsContractServer, type ContractSubject } from "../testing/contract.js";
import { MemoryEventStream } from "../testing/memory-event-stream.js";
import { MemoryPartitionConsumer } from "../testing/memory-partition-consumer.js";
import type { ConsumerPosition } from "./partition-worker.js";

const ACK_WAIT_MS = 3000;
const MAX_ACK_PENDING = 3;

interface Pulled {
  seq: number;
  pending: number;
  ack(): void;
  nak(delayMs?: number): void;
}

interface Consumer {
  fetch(max: number, expiresMs: number): Promise<Pulled[]>;
  position(): Promise<ConsumerPosition>;
}

interface Subject extends ContractSubject {
  /** A fresh partition (its own number, so its own consumer) and a way to store on its subjects. */
  fresh(): Promise<{ partition: number; publish: (channel: string, partition?: number) => Promise<number>; consumer: Consumer }>;
}

const natsSubject: Subject = (() => {
  const server = new NatsContractServer();
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let next = 0;
  return {
    async setUp() {
      const nc = await server.start();
      js = jetstream(nc);
      jsm = await jetstreamManager(nc);
      await provisionTopology(nc, { partitions: 64, replicas: 1, duplicateWindowSeconds: 120 }, pino({ level: "silent" }));
    },
    tearDown: () => server.stop(),
    async fresh() {
      const partition = next++;
      const source = new PartitionConsumer(js, jsm, partition, { ackWaitMs: ACK_WAIT_MS, maxAckPending: MAX_ACK_PENDING });
      await source.ensure();
      return {
        partition,
        publish: async (channel, p = partition) => (await js.publish(eventSubject(p, channel), "{}")).seq,
        consumer: {
          async fetch(max, expiresMs) {
            const got: Pulled[] = [];
            await source.fetch(max, expiresMs, (d) => got.push({ seq: d.seq, pending: d.info.pending, ack: () => d.ack(), nak: (ms) => d.nak(ms) }));
            return got;
          },
          position: () => source.position(),
        },
      };
    },
  };
})();

const memorySubject: Subject = (() => {
  const stream = new MemoryEventStream(0);
  let next = 0;
  return {
    async fresh() {
      const partition = next++;
      const source = new MemoryPartitionConsumer(stream, partition, { ackWaitMs: ACK_WAIT_MS, maxAckPending: MAX_ACK_PENDING });
      return {
        partition,
        publish: async (channel, p = partition) => stream.append(eventSubject(p, channel), "{}"),
        consumer: {
          fetch: (max, expiresMs) =>
            new Promise<Pulled[]>((resolve) => {
              const got: Pulled[] = [];
              source.pull(
                max,
                expiresMs,
                (m) => got.push({ seq: m.seq, pending: m.pending, ack: () => source.ack(m.seq), nak: (ms) => source.nak(m.seq, ms) }),
                () => resolve(got),
              );
            }),
          position: async () => source.position(),
        },
      };
    },
  };
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeContract(
  "partition consumer contract",
  [
    ["JetStream durable pull consumer", natsSubject],
    ["in-memory consumer", memorySubject],
  ],
  (subject) => {
    it("delivers its partition's messages once each in stream order, counting what is left, and says how far it delivered", async () => {
      const { partition, publish, consumer } = await subject.fresh();
      const a = await publish("a");
      await publish("elsewhere", partition + 100);
      const b = await publish("b");
      const c = await publish("a");
      expect(await consumer.position()).toMatchObject({ pending: 3, ackPending: 0, deliveredThrough: 0 });
      const first = await consumer.fetch(2, 1000);
      expect(first.map((m) => [m.seq, m.pending])).toEqual([
        [a, 2],
        [b, 1],
      ]);
      expect(await consumer.position()).toEqual({ pending: 1, ackPending: 2, deliveredThrough: b });
      for (const m of first) m.ack();
      const second = await consumer.fetch(5, 1000);
      expect(second.map((m) => m.seq)).toEqual([c]);
      second[0]!.ack();
      await sleep(100);
      expect(await consumer.position()).toEqual({ pending: 0, ackPending: 0, deliveredThrough: c });
    });

    it("delivers a message nak'ed without a delay again before new ones, and one nak'ed with a delay after it", async () => {
      const { publish, consumer } = await subject.fresh();
      const a = await publish("a");
      const b = await publish("b");
      const [ma] = await consumer.fetch(1, 1000);
      ma!.nak();
      // The nak is a message of its own on the way to the server: the next pull goes after it has arrived.
      await sleep(100);
      const again = await consumer.fetch(1, 1000);
      expect(again.map((m) => m.seq)).toEqual([a]);
      again[0]!.nak(600);
      await sleep(100);
      const started = Date.now();
      const next = await consumer.fetch(1, 1000);
      expect(next.map((m) => m.seq)).toEqual([b]);
      next[0]!.ack();
      const later = await consumer.fetch(1, 2000);
      expect(later.map((m) => m.seq)).toEqual([a]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      later[0]!.ack();
    });

    it("delivers a message left unacknowledged again once ack_wait passed", async () => {
      const { publish, consumer } = await subject.fresh();
      const a = await publish("a");
      const started = Date.now();
      expect((await consumer.fetch(1, 1000)).map((m) => m.seq)).toEqual([a]);
      const again = await consumer.fetch(1, 4000);
      expect(again.map((m) => m.seq)).toEqual([a]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(ACK_WAIT_MS - 100);
      again[0]!.ack();
    });

    it("stops delivering new messages while max_ack_pending are unacknowledged, and goes on once one is acked", async () => {
      const { publish, consumer } = await subject.fresh();
      const seqs = [];
      for (let i = 0; i < MAX_ACK_PENDING + 2; i += 1) seqs.push(await publish(`c${i}`));
      const held = await consumer.fetch(MAX_ACK_PENDING, 1000);
      expect(held.map((m) => m.seq)).toEqual(seqs.slice(0, MAX_ACK_PENDING));
      expect(await consumer.fetch(10, 1000)).toEqual([]);
      held[0]!.ack();
      await sleep(100);
      const more = await consumer.fetch(1, 1000);
      expect(more.map((m) => m.seq)).toEqual(seqs.slice(MAX_ACK_PENDING, MAX_ACK_PENDING + 1));
      for (const m of [...held.slice(1), ...more]) m.ack();
    });

    it("ends a pull at its expiry with what it got, nothing when nothing came", async () => {
      const { consumer } = await subject.fresh();
      const started = Date.now();
      expect(await consumer.fetch(5, 1000)).toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });
  },
);
