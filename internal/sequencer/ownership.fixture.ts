// What the ownership tests share, on either lease store (the in-memory
// bucket in ownership.test.ts, the JetStream bucket in ownership-nats.test.ts):
// a member that records what its hooks were told, a store whose watch hides
// some keys' changes, and the wait for an even split.

import { pino } from "pino";
import type { BucketEntry, BucketWatch, LeaseStore } from "./lease-store.js";
import { Ownership } from "./ownership.js";

export const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

export interface Timing {
  partitions: number;
  leaseTtlMs: number;
  heartbeatMs: number;
}

/** One instance's ownership and what its hooks were told, in order. */
export interface Member {
  id: string;
  ownership: Ownership;
  owned: Set<number>;
  events: string[];
}

/** Starts an instance on `store`; its release hook takes `releaseDelayMs` (in-flight work finishing). */
export async function startMember(
  store: LeaseStore,
  id: string,
  timing: Timing,
  releaseDelayMs = 0,
  now: () => number = () => performance.now(),
): Promise<Member> {
  const owned = new Set<number>();
  const events: string[] = [];
  const ownership = new Ownership(
    store,
    { instanceId: id, partitions: timing.partitions, leaseTtlMs: timing.leaseTtlMs, heartbeatMs: timing.heartbeatMs },
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
    now,
  );
  await ownership.start();
  return { id, ownership, owned, events };
}

/** A store whose watch never shows the listed keys' changes after it caught up: the stale view a lagging watch or replica gives. */
export class StaleWatch implements LeaseStore {
  constructor(
    private readonly inner: LeaseStore,
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

/** Waits until the members own every partition between them, each exactly once, shares within one; resolves with how long that took. */
export async function balanced(group: Member[], partitions: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const all = group.flatMap((m) => [...m.owned]);
    const shares = group.map((m) => m.owned.size);
    if (all.length === partitions && new Set(all).size === partitions && Math.max(...shares) - Math.min(...shares) <= 1) {
      return Date.now() - started;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(`not balanced after ${timeoutMs} ms: ${group.map((m) => `${m.id}=${[...m.owned].sort()}`).join(" ")}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
