// Partition ownership against a real lease bucket on a real nats-server: the
// behaviour that depends on the server (a crash is a vanished connection,
// leases re-read from the stream leader). The protocol's other cases run in
// ownership.test.ts on the in-memory bucket, which the contract test
// (lease-store.contract.test.ts) holds to the real bucket's rules.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { LeaseBucket } from "../nats/lease-bucket.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
import type { BucketEntry, BucketWatch, LeaseStore } from "./lease-store.js";
import { Ownership } from "./ownership.js";
import { encodeLease, leaseKey, leaseOwner } from "./partition-leases.js";

const PARTITIONS = 8;
const TTL_MS = 1500;
const HEARTBEAT_MS = 200;
const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

let server: NatsServer;
let bucketCount = 0;
let bucket = "";
const connections: NatsConnection[] = [];
const members: Member[] = [];

interface Member {
  id: string;
  nc: NatsConnection;
  ownership: Ownership;
  owned: Set<number>;
  events: string[];
}

/**
 * The real lease bucket, with a watch that never shows the listed keys'
 * changes after start: the stale view a lagging watch or replica gives.
 */
class StaleWatchBucket implements LeaseStore {
  constructor(
    private readonly inner: LeaseBucket,
    private readonly hidden: Set<string>,
  ) {}
  create = (key: string, value: string) => this.inner.create(key, value);
  update = (key: string, value: string, revision: number) => this.inner.update(key, value, revision);
  put = (key: string, value: string, ttlMs?: number) => this.inner.put(key, value, ttlMs);
  delete = (key: string, revision: number) => this.inner.delete(key, revision);
  read = (key: string) => this.inner.read(key);
  async watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch> {
    let caughtUp = false;
    const watch = await this.inner.watch((e) => {
      if (!caughtUp || !this.hidden.has(e.key)) onEntry(e);
    });
    void watch.caughtUp.then(() => (caughtUp = true));
    return watch;
  }
}

async function join(id: string, releaseDelayMs = 0, wrap: (b: LeaseBucket) => LeaseStore = (b) => b): Promise<Member> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  await openBucket(new Kvm(jetstream(nc)), bucket, 1, { markerTtlMs: 60_000 });
  const owned = new Set<number>();
  const events: string[] = [];
  const ownership = new Ownership(
    wrap(await LeaseBucket.open(nc, bucket, 1000)),
    { instanceId: id, partitions: PARTITIONS, leaseTtlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS },
    {
      acquired: (p) => {
        owned.add(p);
        events.push(`acquired ${p}`);
      },
      release: async (p) => {
        events.push(`releasing ${p}`);
        await new Promise((r) => setTimeout(r, releaseDelayMs));
        owned.delete(p);
        events.push(`released ${p}`);
      },
      lost: (p) => {
        owned.delete(p);
        events.push(`lost ${p}`);
      },
      event: () => undefined,
    },
    log,
  );
  await ownership.start();
  const member = { id, nc, ownership, owned, events };
  members.push(member);
  return member;
}

/** Waits until the given members own every partition between them, each exactly once, shares within one. */
async function balanced(group: Member[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const all = group.flatMap((m) => [...m.owned]);
    const shares = group.map((m) => m.owned.size);
    if (all.length === PARTITIONS && new Set(all).size === PARTITIONS && Math.max(...shares) - Math.min(...shares) <= 1) {
      return Date.now() - started;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(`not balanced after ${timeoutMs} ms: ${group.map((m) => `${m.id}=${[...m.owned].sort()}`).join(" ")}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  server = await NatsServer.start();
});

afterEach(async () => {
  await Promise.all(members.splice(0).map((m) => m.ownership.stop().catch(() => undefined)));
  await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => undefined)));
});

afterAll(async () => {
  await server?.dispose();
});

async function freshBucket(): Promise<void> {
  bucketCount += 1;
  bucket = `leases_test_${bucketCount}`;
}

describe("partition ownership", () => {
  it("splits the partitions evenly between two and then three members, one lease holder each", async () => {
    await freshBucket();
    const a = await join("seq-a");
    const b = await join("seq-b");
    await balanced([a, b], 5000);
    const c = await join("seq-c");
    await balanced([a, b, c], 5000);
    expect([a, b, c].map((m) => m.owned.size).sort()).toEqual([2, 3, 3]);

    // The bucket agrees: every lease names the member that consumes the partition.
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const kv = await new Kvm(jetstream(nc)).open(bucket);
    for (let p = 0; p < PARTITIONS; p += 1) {
      const entry = await kv.get(leaseKey(p));
      const holder = [a, b, c].find((m) => m.owned.has(p))!;
      expect(leaseOwner(entry!.string())).toBe(holder.id);
    }
  });

  it("takes over a crashed member's partitions once its leases expire", async () => {
    await freshBucket();
    const a = await join("seq-a");
    const b = await join("seq-b");
    await balanced([a, b], 5000);
    // A crash: the connection vanishes without releasing anything.
    members.splice(members.indexOf(b), 1);
    await b.nc.close();
    const took = await balanced([a], TTL_MS * 2 + 2000);
    expect(took).toBeGreaterThanOrEqual(TTL_MS - 2 * HEARTBEAT_MS);
    await b.ownership.stop();
  });

  it("re-reads a refused claim's lease from the stream leader and retries until it holds, when its view of the key is stale", async () => {
    await freshBucket();
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const kv = await openBucket(new Kvm(jetstream(nc)), bucket, 1, { markerTtlMs: 60_000 });
    // A dead owner's lease, renewed once more after the newcomer started watching, which its watch never shows.
    const first = await kv.create(leaseKey(3), encodeLease("ghost"));
    const a = await join("seq-a", 0, (b) => new StaleWatchBucket(b, new Set([leaseKey(3)])));
    await kv.update(leaseKey(3), encodeLease("ghost"), first);
    // Claims at the revision the watch showed are refused; only a read from the leader gets the real one.
    await balanced([a], TTL_MS * 4 + 3000);
    expect(a.events).toContain("acquired 3");
    expect(leaseOwner((await kv.get(leaseKey(3)))!.string())).toBe("seq-a");
  });

});
