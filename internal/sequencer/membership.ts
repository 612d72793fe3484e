// Which sequencer instances are alive, as this instance observes it.
//
// Each instance rewrites its `members.<id>` key in the lease bucket every
// heartbeat. A member is alive while this instance keeps seeing its key's
// revision change: liveness is judged by local observation over a local
// monotonic clock, never by comparing timestamps written by other machines,
// so clock skew cannot make a dead member look alive or a live one dead.
// The keys carry a server-side TTL of a few lease TTLs: a dead member's key
// vanishes by itself, which only tidies the bucket (liveness never waits for it).

export const MEMBER_PREFIX = "members.";

/** Instance ids are one KV key token. */
export const INSTANCE_ID_PATTERN = /^[-_=A-Za-z0-9]{1,64}$/;

export function memberKey(instanceId: string): string {
  return MEMBER_PREFIX + instanceId;
}

/** The instance id in a member key, or undefined for any other key. */
export function memberOfKey(key: string): string | undefined {
  return key.startsWith(MEMBER_PREFIX) ? key.slice(MEMBER_PREFIX.length) : undefined;
}

interface Observed {
  revision: number;
  /** Local monotonic time the revision was first seen. */
  changedAt: number;
}

export class MemberView {
  private readonly seen = new Map<string, Observed>();

  constructor(private readonly ttlMs: number) {}

  /** Records a member key's revision (null once deleted). */
  observe(instanceId: string, revision: number | null, now: number): void {
    if (revision === null) {
      this.seen.delete(instanceId);
      return;
    }
    const before = this.seen.get(instanceId);
    if (before?.revision !== revision) this.seen.set(instanceId, { revision, changedAt: now });
  }

  /** Members whose key changed within the TTL, sorted. */
  live(now: number): string[] {
    const alive: string[] = [];
    for (const [id, o] of this.seen) if (now - o.changedAt < this.ttlMs) alive.push(id);
    return alive.sort();
  }
}
