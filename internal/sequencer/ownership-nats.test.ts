// Partition ownership against a real lease bucket on a real nats-server: the
// behaviour that depends on the server (a crash is a vanished connection,
// leases re-read from the stream leader). The protocol's other cases run in
// ownership.test.ts on the in-memory bucket, which the contract test
// (lease-store.contract.test.ts) holds to the real bucket's rules.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LeaseBucket } from "../nats/lease-bucket.js";
import { openBucket } from "../nats/topology.js";
import { NatsServer } from "../testing/nats-server.js";
import type { LeaseStore } from "./lease-store.js";
import { balanced as balancedIn, StaleWatch, startMember, type Member } from "./ownership.fixture.js";
import { encodeLease, leaseKey, leaseOwner } from "./partition-leases.js";

const PARTITIONS = 8;
const TTL_MS = 1500;
const HEARTBEAT_MS = 200;
const TIMING = { partitions: PARTITIONS, leaseTtlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS };

let server: NatsServer;
let bucketCount = 0;
let bucket = "";
const connections: NatsConnection[] = [];
const members: NatsMember[] = [];

interface NatsMember extends Member {
  nc: NatsConnection;
}

async function join(id: string, wrap: (b: LeaseBucket) => LeaseStore = (b) => b): Promise<NatsMember> {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  await openBucket(new Kvm(jetstream(nc)), bucket, 1, { markerTtlMs: 60_000 });
  const member = { ...(await startMember(wrap(await LeaseBucket.open(nc, bucket, 1000)), id, TIMING)), nc };
  members.push(member);
  return member;
}

const balanced = (group: Member[], timeoutMs: number) => balancedIn(group, PARTITIONS, timeoutMs);

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
    const a = await join("seq-a", (b) => new StaleWatch(b, new Set([leaseKey(3)])));
    await kv.update(leaseKey(3), encodeLease("ghost"), first);
    // Claims at the revision the watch showed are refused; only a read from the leader gets the real one.
    await balanced([a], TTL_MS * 4 + 3000);
    expect(a.events).toContain("acquired 3");
    expect(leaseOwner((await kv.get(leaseKey(3)))!.string())).toBe("seq-a");
  });

});
