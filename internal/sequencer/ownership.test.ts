// Partition ownership against a real lease bucket: even splits, graceful
// hand-over, takeover after a crash, and an owner fenced off by a takeover.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { LeaseBucket } from "../nats/lease-bucket.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
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

async function join(id: string, releaseDelayMs = 0): Promise<Member> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  const kv = await openBucket(new Kvm(jetstream(nc)), bucket, 1);
  const owned = new Set<number>();
  const events: string[] = [];
  const ownership = new Ownership(
    new LeaseBucket(kv),
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
});
