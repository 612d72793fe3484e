// Partition ownership against a real lease bucket: even splits, graceful
// hand-over, takeover after a crash, and an owner fenced off by a takeover.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { LeaseBucket, type BucketEntry, type BucketWatch } from "../nats/lease-bucket.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
import { Ownership, type LeaseStore } from "./ownership.js";
import { memberKey } from "./membership.js";
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

async function leave(member: Member): Promise<void> {
  members.splice(members.indexOf(member), 1);
  await member.ownership.stop();
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

  it("hands a leaving member's partitions over at once, after its in-flight work finished", async () => {
    await freshBucket();
    const a = await join("seq-a");
    const b = await join("seq-b", 100);
    await balanced([a, b], 5000);
    const hadB = [...b.owned];
    await leave(b);
    // Well under the TTL: the leases were deleted, not left to expire.
    expect(await balanced([a], 1000)).toBeLessThan(TTL_MS);
    for (const p of hadB) {
      expect(b.events.indexOf(`released ${p}`)).toBeGreaterThan(b.events.indexOf(`releasing ${p}`));
      expect(a.events).toContain(`acquired ${p}`);
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

  it("tells an owner it lost a partition as soon as another writer took the lease", async () => {
    await freshBucket();
    const a = await join("seq-a");
    await balanced([a], 5000);
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const kv = await new Kvm(jetstream(nc)).open(bucket);
    const current = await kv.get(leaseKey(3));
    await kv.update(leaseKey(3), encodeLease("intruder"), current!.revision);
    const deadline = Date.now() + 2000;
    while (!a.events.includes("lost 3") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(a.events).toContain("lost 3");
    expect(a.owned.has(3)).toBe(false);
    // The intruder never renews, so the partition comes back to its assigned owner after the TTL.
    await balanced([a], TTL_MS * 2 + 2000);
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

  it("counts a partition assigned here but held elsewhere past a lease TTL as unacquired, and takes it once free", async () => {
    await freshBucket();
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const kv = await openBucket(new Kvm(jetstream(nc)), bucket, 1, { markerTtlMs: 60_000 });
    // An owner that keeps renewing but is no member: the partition stays out of reach.
    let revision = await kv.create(leaseKey(5), encodeLease("squatter"));
    const renew = setInterval(() => {
      void kv.update(leaseKey(5), encodeLease("squatter"), revision).then((r) => (revision = r), () => undefined);
    }, HEARTBEAT_MS);
    try {
      const a = await join("seq-a");
      const deadline = Date.now() + TTL_MS * 3;
      while (!a.ownership.unacquired().includes(5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(a.ownership.unacquired()).toEqual([5]);
      const view = a.ownership.clusterView();
      expect(view.members).toEqual(["seq-a"]);
      expect(view.leases).toHaveLength(PARTITIONS);
      expect(view.leases[5]).toMatchObject({ partition: 5, owner: "squatter", expired: false });
      expect(view.leases.filter((l) => l.owner === "seq-a").map((l) => l.partition)).toEqual(view.owned);
    } finally {
      clearInterval(renew);
    }
    const a = members[0]!;
    await balanced([a], TTL_MS * 3 + 2000);
    expect(a.ownership.unacquired()).toEqual([]);
  });

  it("leaves no member key behind: the server deletes a crashed member's key after its TTL", async () => {
    await freshBucket();
    const b = await join("seq-b");
    members.splice(members.indexOf(b), 1);
    await b.nc.close();
    await b.ownership.stop();
    const nc = await connect({ servers: server.url });
    connections.push(nc);
    const kv = await new Kvm(jetstream(nc)).open(bucket);
    // Written with a TTL of three lease TTLs (whole seconds), then gone with no one deleting it.
    expect((await kv.get(memberKey("seq-b")))?.operation).toBe("PUT");
    const deadline = Date.now() + TTL_MS * 3 + 5000;
    let entry = await kv.get(memberKey("seq-b"));
    while (entry?.operation === "PUT" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      entry = await kv.get(memberKey("seq-b"));
    }
    expect(entry === null || entry.operation !== "PUT").toBe(true);
  });
});
