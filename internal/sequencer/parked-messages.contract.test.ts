// The parked-message reads the channel actor relies on (ParkedMessages in
// channel-actor.ts, through decodedParked), held against both sources: the
// JetStream events stream on a real nats-server (StreamParkedMessages,
// without a partition consumer, as in the actor tests) and the in-memory
// stream the actor and registry unit tests run on.

import { expect, it } from "vitest";
import { pino } from "pino";
import type { RocketMessage } from "../domain/message.js";
import { eventSubject } from "../domain/partition.js";
import { StreamParkedMessages } from "../nats/parked-messages.js";
import { provisionTopology, STREAM_NAME, type Provisioned } from "../nats/topology.js";
import { MemoryEventStream } from "../testing/memory-event-stream.js";
import { describeContract, NatsContractServer, type ContractSubject } from "../testing/contract.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import type { ParkedMessages } from "./channel-actor.js";
import { decodedParked } from "./partition-worker.js";

interface Subject extends ContractSubject {
  /** Stores `data` on `subject`; returns its stream sequence. */
  append(subject: string, data: string): Promise<number>;
  parked(): ParkedMessages;
  /** Removes every message below `seq`, as retention does (a purge up to it, on JetStream). */
  trimBefore(seq: number): Promise<void>;
}

const natsSubject: Subject = (() => {
  const server = new NatsContractServer();
  let p: Provisioned;
  return {
    async setUp() {
      p = await provisionTopology(await server.start(), { partitions: 2, replicas: 1, duplicateWindowSeconds: 120 }, pino({ level: "silent" }));
    },
    tearDown: () => server.stop(),
    async append(subject, data) {
      return (await p.js.publish(subject, data)).seq;
    },
    parked: () => decodedParked(new StreamParkedMessages(p.js, p.jsm, 2000)),
    async trimBefore(seq) {
      await p.jsm.streams.purge(STREAM_NAME, { seq });
    },
  };
})();

const memorySubject: Subject = (() => {
  const stream = new MemoryEventStream();
  return {
    async append(subject, data) {
      return stream.append(subject, data);
    },
    parked: () => stream.parked(),
    async trimBefore(seq) {
      stream.trimBefore(seq);
    },
  };
})();

describeContract(
  "parked messages contract",
  [
    ["JetStream events stream", natsSubject],
    ["in-memory stream", memorySubject],
  ],
  (subject) => {
    const store = async (partition: number, m: RocketMessage) => subject.append(eventSubject(partition, m.metadata.channel), JSON.stringify(m));

    it("reads the channel's valid messages of its partition from a sequence on, in stream order, with their sequences", async () => {
      const a = rocketMessages("parked-a", 4, new Rng(1));
      const b = rocketMessages("parked-b", 2, new Rng(2));
      const s1 = await store(1, a[0]!);
      await store(1, b[0]!);
      const s2 = await store(1, a[2]!);
      // Not JSON, and another channel's message on this channel's subject: what the worker would terminate.
      await subject.append(eventSubject(1, "parked-a"), "{nope");
      await subject.append(eventSubject(1, "parked-a"), JSON.stringify(b[1]));
      // The same channel on another partition's subject.
      await store(0, a[3]!);
      const s3 = await store(1, a[1]!);
      const read = async (fromSeq: number, throughSeq?: number) => {
        const seen: Array<[number, number]> = [];
        await subject.parked().read(1, "parked-a", fromSeq, (seq, m) => seen.push([seq, m.metadata.messageNumber]), throughSeq);
        return seen;
      };
      expect(await read(1)).toEqual([
        [s1, 1],
        [s2, 3],
        [s3, 2],
      ]);
      expect(await read(s1 + 1)).toEqual([
        [s2, 3],
        [s3, 2],
      ]);
      expect(await read(s3 + 1)).toEqual([]);
      // Bounded above, inclusive.
      expect(await read(1, s2)).toEqual([
        [s1, 1],
        [s2, 3],
      ]);
      expect(await read(s1 + 1, s2 - 1)).toEqual([]);
      expect(await read(s3, s3)).toEqual([[s3, 2]]);
      // The message itself, as it was stored.
      const got: RocketMessage[] = [];
      await subject.parked().read(1, "parked-a", s3, (_seq, message) => got.push(message));
      expect(got).toEqual([a[1]]);
    });

    it("finds the first message on the channel's subject at or after a sequence, valid or not, or none", async () => {
      const f = rocketMessages("first-f", 2, new Rng(4));
      expect(await subject.parked().firstSeq(0, "first-f", 1)).toBe(Number.POSITIVE_INFINITY);
      await store(1, f[0]!);
      const invalid = await subject.append(eventSubject(0, "first-f"), "{nope");
      const valid = await store(0, f[1]!);
      expect(await subject.parked().firstSeq(0, "first-f", 1)).toBe(invalid);
      expect(await subject.parked().firstSeq(0, "first-f", invalid + 1)).toBe(valid);
      expect(await subject.parked().firstSeq(0, "first-f", valid + 1)).toBe(Number.POSITIVE_INFINITY);
    });

    it("counts every message on the channel's subject, valid or not, and gives the stream's first sequence", async () => {
      const c = rocketMessages("census-c", 2, new Rng(3));
      expect(await subject.parked().census(0, "census-c")).toMatchObject({ count: 0 });
      const first = await store(0, c[0]!);
      await subject.append(eventSubject(0, "census-c"), "{nope");
      await store(1, c[1]!);
      const census = await subject.parked().census(0, "census-c");
      expect(census.count).toBe(2);
      expect(census.firstSeq).toBeGreaterThanOrEqual(1);
      expect(census.firstSeq).toBeLessThanOrEqual(first);
    });
  
    // Last: it removes what the other cases stored.
    it("after retention removed the oldest messages, reads, counts and finds only what is held, from the new first sequence", async () => {
      const t = rocketMessages("trimmed-t", 3, new Rng(5));
      const s1 = await store(0, t[0]!);
      const s2 = await store(0, t[1]!);
      const s3 = await store(0, t[2]!);
      await subject.trimBefore(s2 + 1);
      expect((await subject.parked().held()).firstSeq).toBe(s2 + 1);
      const read: number[] = [];
      await subject.parked().read(0, "trimmed-t", s1, (seq) => read.push(seq));
      expect(read).toEqual([s3]);
      expect(await subject.parked().census(0, "trimmed-t")).toEqual({ count: 1, firstSeq: s2 + 1 });
      expect(await subject.parked().firstSeq(0, "trimmed-t", 1)).toBe(s3);
    });
  },
);
