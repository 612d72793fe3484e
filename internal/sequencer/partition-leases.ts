// Partition leases as this instance observes them (`leases.<p>` in the lease
// bucket) and the ones it holds.
//
// A lease is taken only with a compare-and-set: create when the key is
// absent or deleted, or update at the exact revision observed when it has
// expired (its revision unchanged for the TTL, by the local clock) or is our
// own from a previous run. It is renewed with the revision we last wrote, so a
// renewal fails the moment anyone else has written: that is how an owner
// learns it lost a partition. Leases decide who pulls a partition; they are
// not what keeps state exact (every state write is itself a compare-and-set),
// so a stale owner can waste work but never corrupt a channel.

export const LEASE_PREFIX = "leases.";

export function leaseKey(partition: number): string {
  return `${LEASE_PREFIX}${partition}`;
}

/** The partition in a lease key, or undefined for any other key. */
export function partitionOfLeaseKey(key: string): number | undefined {
  if (!key.startsWith(LEASE_PREFIX)) return undefined;
  const text = key.slice(LEASE_PREFIX.length);
  const p = Number(text);
  return /^\d+$/.test(text) && Number.isSafeInteger(p) ? p : undefined;
}

export function encodeLease(owner: string): string {
  return JSON.stringify({ owner, renewedAt: new Date().toISOString() });
}

/** The owner named in a lease value; undefined when unreadable (treated as someone else's). */
export function leaseOwner(value: string): string | undefined {
  try {
    const parsed = JSON.parse(value) as { owner?: unknown };
    return typeof parsed.owner === "string" ? parsed.owner : undefined;
  } catch {
    return undefined;
  }
}

export interface ObservedLease {
  /** Null once deleted (free); "" when unreadable. */
  owner: string | null;
  revision: number;
  /** Local monotonic time the revision was first seen. */
  changedAt: number;
}

export class LeaseView {
  private readonly seen = new Map<number, ObservedLease>();

  /**
   * Records what the watch or a read from the leader says. Revisions only
   * grow, so an older one (a watch delivering what a read already showed)
   * changes nothing.
   */
  observe(partition: number, value: string | null, revision: number, now: number): ObservedLease {
    const before = this.seen.get(partition);
    if (before && revision <= before.revision) return before;
    const observed = { owner: value === null ? null : (leaseOwner(value) ?? ""), revision, changedAt: now };
    this.seen.set(partition, observed);
    return observed;
  }

  get(partition: number): ObservedLease | undefined {
    return this.seen.get(partition);
  }

  /**
   * How this instance may take the partition now: create it (free), update it
   * at a revision (expired or ours), or not at all (someone else's, alive).
   */
  claim(partition: number, self: string, now: number, ttlMs: number): { create: true } | { revision: number } | undefined {
    const seen = this.seen.get(partition);
    if (!seen || seen.owner === null) return { create: true };
    if (seen.owner === self || now - seen.changedAt >= ttlMs) return { revision: seen.revision };
    return undefined;
  }
}

export const HeldState = {
  /** Owned and consumed. */
  Active: "active",
  /** No longer assigned here: consumption stopping, in-flight work finishing; still renewed. */
  Releasing: "releasing",
  /** Work finished; the lease is to be deleted. */
  Released: "released",
} as const;
export type HeldState = (typeof HeldState)[keyof typeof HeldState];

export interface HeldLease {
  state: HeldState;
  /** The revision we last wrote. */
  revision: number;
  /** Local time the last successful write was sent: others cannot see it expire before renewedAt + TTL. */
  renewedAt: number;
  /** Set while releasing. */
  releasing?: Promise<void>;
}
