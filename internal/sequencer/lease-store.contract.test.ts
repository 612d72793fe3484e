// The LeaseStore rules (lease-store.ts), held against both implementations:
// the JetStream KV bucket on a real nats-server, and the in-memory bucket the
// ownership unit tests run on. A rule the memory bucket broke would let those
// unit tests pass against a protocol that fails on NATS.

import { expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { LeaseBucket } from "../nats/lease-bucket.js";
import { openBucket } from "../nats/topology.js";
import { MemoryLeaseBucket } from "../testing/memory-lease-store.js";
import { describeContract, NatsContractServer, type ContractSubject } from "../testing/contract.js";
import { LeaseConflictError, type BucketEntry, type LeaseStore } from "./lease-store.js";

interface Subject extends ContractSubject {
  /** A fresh, empty bucket. */
  fresh(): Promise<LeaseStore>;
}

const natsSubject: Subject = (() => {
  const server = new NatsContractServer();
  let nc: NatsConnection;
  let n = 0;
  return {
    async setUp() {
      nc = await server.start();
    },
    tearDown: () => server.stop(),
    async fresh() {
      const bucket = `contract_${++n}`;
      await openBucket(new Kvm(jetstream(nc)), bucket, 1, { markerTtlMs: 60_000 });
      return LeaseBucket.open(nc, bucket, 2000);
    },
  };
})();

const memorySubject: Subject = {
  async fresh() {
    return new MemoryLeaseBucket().connect();
  },
};

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeContract(
  "LeaseStore contract",
  [
    ["JetStream KV bucket", natsSubject],
    ["in-memory bucket", memorySubject],
  ],
  (subject) => {
    it("creates only an absent or deleted key, updates and deletes only at the named revision", async () => {
      const store = await subject.fresh();
      expect(await store.read("k")).toEqual({ key: "k", value: null, revision: 0 });
      const r1 = await store.create("k", "a");
      expect(r1).toBeGreaterThan(0);
      await expect(store.create("k", "b")).rejects.toBeInstanceOf(LeaseConflictError);
      await expect(store.update("k", "b", r1 + 100)).rejects.toBeInstanceOf(LeaseConflictError);
      const r2 = await store.update("k", "b", r1);
      expect(r2).toBeGreaterThan(r1);
      expect(await store.read("k")).toEqual({ key: "k", value: "b", revision: r2 });
      await expect(store.delete("k", r1)).rejects.toBeInstanceOf(LeaseConflictError);
      expect((await store.read("k")).value).toBe("b");
      await store.delete("k", r2);
      const deleted = await store.read("k");
      expect(deleted.value).toBeNull();
      expect(deleted.revision).toBeGreaterThan(r2);
      const r3 = await store.create("k", "c");
      expect(r3).toBeGreaterThan(deleted.revision);
    });

    it("numbers revisions across the whole bucket, and an unconditional put always lands", async () => {
      const store = await subject.fresh();
      const a = await store.put("a", "1");
      const b = await store.put("b", "1");
      const a2 = await store.put("a", "2");
      expect(b).toBeGreaterThan(a);
      expect(a2).toBeGreaterThan(b);
    });

    it("deletes a key put with a TTL unless it is written again in time", async () => {
      const store = await subject.fresh();
      await store.put("kept", "x");
      await store.put("ttl", "x", 1000);
      expect((await store.read("ttl")).value).toBe("x");
      const deadline = Date.now() + 5000;
      while ((await store.read("ttl")).value !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect((await store.read("ttl")).value).toBeNull();
      expect((await store.read("kept")).value).toBe("x");
    }, 10_000);

    it("watches every key's latest entry, then each change in revision order, deletions as null", async () => {
      const store = await subject.fresh();
      const r1 = await store.put("a", "1");
      await store.put("a", "2");
      await store.put("b", "1");
      const seen: BucketEntry[] = [];
      const watch = await store.watch((e) => seen.push(e));
      await watch.caughtUp;
      expect(seen.map((e) => [e.key, e.value])).toEqual([
        ["a", "2"],
        ["b", "1"],
      ]);
      const before = seen.length;
      const c = await store.create("c", "1");
      await store.delete("c", c);
      await expect(store.update("a", "3", r1)).rejects.toBeInstanceOf(LeaseConflictError);
      await until(() => seen.length >= before + 2, 3000);
      const changes = seen.slice(before);
      expect(changes.map((e) => [e.key, e.value])).toEqual([
        ["c", "1"],
        ["c", null],
      ]);
      expect(changes[1]!.revision).toBeGreaterThan(changes[0]!.revision);
      watch.stop();
      await watch.ended;
      await store.put("d", "1");
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.some((e) => e.key === "d")).toBe(false);
    });
  },
);
