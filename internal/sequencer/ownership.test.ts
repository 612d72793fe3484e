// The partition ownership protocol on the in-memory lease bucket (no
// nats-server): even splits, graceful hand-over, takeover after a crash, an
// owner fenced off by another writer, convergence from a stale view, the
// unacquired gauge, and member keys that expire. The bucket is held to the
// JetStream KV bucket's rules by lease-store.contract.test.ts; what depends
// on the server itself runs in ownership-nats.test.ts.

import { afterEach, describe, expect, it } from "vitest";
import { MemoryLeaseBucket, type MemoryLeaseClient } from "../testing/memory-lease-store.js";
import type { LeaseStore } from "./lease-store.js";
import { memberKey } from "./membership.js";
import { balanced as balancedIn, StaleWatch, startMember, type Member } from "./ownership.fixture.js";
import { encodeLease, leaseKey, leaseOwner } from "./partition-leases.js";

const PARTITIONS = 8;
const TTL_MS = 600;
const HEARTBEAT_MS = 80;
const TIMING = { partitions: PARTITIONS, leaseTtlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS };

const members: MemoryMember[] = [];
const buckets: MemoryLeaseBucket[] = [];

function freshBucket(): MemoryLeaseBucket {
  const bucket = new MemoryLeaseBucket();
  buckets.push(bucket);
  return bucket;
}

interface MemoryMember extends Member {
  client: MemoryLeaseClient;
}

async function join(
  bucket: MemoryLeaseBucket,
  id: string,
  releaseDelayMs = 0,
  wrap: (store: LeaseStore) => LeaseStore = (store) => store,
  now?: () => number,
): Promise<MemoryMember> {
  const client = bucket.connect();
  const member = { ...(await startMember(wrap(client), id, TIMING, releaseDelayMs, now)), client };
  members.push(member);
  return member;
}

async function leave(member: MemoryMember): Promise<void> {
  members.splice(members.indexOf(member), 1);
  await member.ownership.stop();
}

/** A crash: the member's connection vanishes without releasing anything. */
async function crash(member: MemoryMember): Promise<void> {
  members.splice(members.indexOf(member), 1);
  member.client.close();
  await member.ownership.stop().catch(() => undefined);
}

const balanced = (group: Member[], timeoutMs: number) => balancedIn(group, PARTITIONS, timeoutMs);

afterEach(async () => {
  await Promise.all(members.splice(0).map((m) => m.ownership.stop().catch(() => undefined)));
  for (const b of buckets.splice(0)) b.dispose();
});

describe("partition ownership (in-memory lease bucket)", () => {
  it("splits the partitions evenly between two and then three members, one lease holder each", async () => {
    const bucket = freshBucket();
    const a = await join(bucket, "seq-a");
    const b = await join(bucket, "seq-b");
    await balanced([a, b], 3000);
    const c = await join(bucket, "seq-c");
    await balanced([a, b, c], 3000);
    expect([a, b, c].map((m) => m.owned.size).sort()).toEqual([2, 3, 3]);
    // The bucket agrees: every lease names the member that consumes the partition.
    const reader = bucket.connect();
    for (let p = 0; p < PARTITIONS; p += 1) {
      const holder = [a, b, c].find((m) => m.owned.has(p))!;
      expect(leaseOwner((await reader.read(leaseKey(p))).value!)).toBe(holder.id);
    }
  });

  it("hands a leaving member's partitions over at once, after its in-flight work finished", async () => {
    const bucket = freshBucket();
    const a = await join(bucket, "seq-a");
    const b = await join(bucket, "seq-b", 50);
    await balanced([a, b], 3000);
    const hadB = [...b.owned];
    await leave(b);
    // Well under the TTL: the leases were deleted, not left to expire.
    expect(await balanced([a], TTL_MS)).toBeLessThan(TTL_MS);
    for (const p of hadB) {
      expect(b.events.indexOf(`released ${p}`)).toBeGreaterThan(b.events.indexOf(`releasing ${p}`));
      expect(a.events).toContain(`acquired ${p}`);
    }
  });

  it("takes over a crashed member's partitions once its leases expire, not before", async () => {
    const bucket = freshBucket();
    const a = await join(bucket, "seq-a");
    const b = await join(bucket, "seq-b");
    await balanced([a, b], 3000);
    await crash(b);
    const took = await balanced([a], TTL_MS * 2 + 1000);
    expect(took).toBeGreaterThanOrEqual(TTL_MS - 2 * HEARTBEAT_MS);
  });

  it("tells an owner it lost a partition as soon as another writer took the lease", async () => {
    const bucket = freshBucket();
    const a = await join(bucket, "seq-a");
    await balanced([a], 3000);
    const intruder = bucket.connect();
    const current = await intruder.read(leaseKey(3));
    await intruder.update(leaseKey(3), encodeLease("intruder"), current.revision);
    const deadline = Date.now() + 1000;
    while (!a.events.includes("lost 3") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.events).toContain("lost 3");
    expect(a.owned.has(3)).toBe(false);
    // The intruder never renews, so the partition comes back to its assigned owner after the TTL.
    await balanced([a], TTL_MS * 2 + 1000);
  });

  it("re-reads a refused claim's lease and retries until it holds, when its view of the key is stale", async () => {
    const bucket = freshBucket();
    const other = bucket.connect();
    // A dead owner's lease, renewed once more after the newcomer started watching, which its watch never shows.
    const first = await other.create(leaseKey(3), encodeLease("ghost"));
    const a = await join(bucket, "seq-a", 0, (store) => new StaleWatch(store, new Set([leaseKey(3)])));
    await other.update(leaseKey(3), encodeLease("ghost"), first);
    await balanced([a], TTL_MS * 4 + 2000);
    expect(a.events).toContain("acquired 3");
    expect(leaseOwner((await other.read(leaseKey(3))).value!)).toBe("seq-a");
  });

  it("counts a partition assigned here but held elsewhere past a lease TTL as unacquired, and takes it once free", async () => {
    const bucket = freshBucket();
    const squatter = bucket.connect();
    // An owner that keeps renewing but is no member: the partition stays out of reach.
    let revision = await squatter.create(leaseKey(5), encodeLease("squatter"));
    const renew = setInterval(() => {
      void squatter.update(leaseKey(5), encodeLease("squatter"), revision).then((r) => (revision = r), () => undefined);
    }, HEARTBEAT_MS);
    try {
      const a = await join(bucket, "seq-a");
      const deadline = Date.now() + TTL_MS * 3;
      while (!a.ownership.unacquired().includes(5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
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
    await balanced([a], TTL_MS * 3 + 1000);
    expect(a.ownership.unacquired()).toEqual([]);
  });

  it("leaves no member key behind: a crashed member's key is deleted by its TTL", async () => {
    const bucket = freshBucket();
    const b = await join(bucket, "seq-b");
    const reader = bucket.connect();
    expect((await reader.read(memberKey("seq-b"))).value).not.toBeNull();
    await crash(b);
    // Written with a TTL of three lease TTLs, then gone with no one deleting it.
    const deadline = Date.now() + TTL_MS * 3 + 1000;
    while ((await reader.read(memberKey("seq-b"))).value !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await reader.read(memberKey("seq-b"))).value).toBeNull();
  });
});
