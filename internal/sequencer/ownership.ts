// Decides which partitions this instance consumes.
//
// Every heartbeat the instance rewrites its member key (with a server-side
// TTL, so the keys of dead instances vanish by themselves), renews the leases
// it holds (compare-and-set), and reconciles: from the members it sees alive
// it computes the same assignment as every other instance, releases the
// leases it should no longer hold (after its in-flight work finished) and
// takes the ones assigned to it that are free or expired. Joining, leaving or
// dying therefore rebalances within about one lease TTL plus a heartbeat, and
// a graceful stop releases everything at once.
//
// Guarantees:
// - A lease is held by at most one instance: every write to it is a
//   compare-and-set. An instance that cannot renew a lease within the TTL, or
//   sees someone else write it, treats the partition as lost and stops
//   consuming it at once.
// - The hooks are called in order per partition: acquired, then release or
//   lost, never both.
// - Ownership converges: a refused claim means our view of the key was
//   stale, so the key is re-read from the stream leader (never a replica) and
//   the claim retried with backoff; a partition assigned here but not
//   acquired within a lease TTL is logged, counted (a gauge that alerts) and
//   keeps being retried. Nothing waits on the watch alone.

import { LeaseConflictError, type BucketEntry, type BucketWatch, type LeaseStore } from "./lease-store.js";
import type { Logger } from "../observability/logger.js";
import { INSTANCE_ID_PATTERN, memberKey, memberOfKey, MemberView } from "./membership.js";
import { PartitionEvent } from "./metrics.js";
import { partitionsFor } from "./partition-assignment.js";
import { encodeLease, HeldState, leaseKey, LeaseView, partitionOfLeaseKey, type HeldLease } from "./partition-leases.js";

/** One partition's lease as this instance sees it, for operators (GET /partitions). */
export interface LeaseRecord {
  partition: number;
  /** Null when free. */
  owner: string | null;
  revision: number;
  /** Unchanged for a TTL: its owner stopped renewing it. */
  expired: boolean;
}

export interface ClusterOwnership {
  instanceId: string;
  /** The members this instance sees alive (every instance computes the same assignment from them). */
  members: string[];
  /** Held and consumed (or finishing) here. */
  owned: number[];
  /** Assigned here by the members above, not acquired for longer than a lease TTL. */
  unacquired: number[];
  leases: LeaseRecord[];
}

export interface OwnershipSettings {
  instanceId: string;
  partitions: number;
  leaseTtlMs: number;
  heartbeatMs: number;
}

export interface OwnershipHooks {
  /** Start consuming the partition. */
  acquired(partition: number): void;
  /** Stop consuming and finish in-flight work; the lease is deleted once this resolves. */
  release(partition: number): Promise<void>;
  /** Stop at once: someone else owns the partition now. */
  lost(partition: number): void;
  /** For metrics. */
  event(event: PartitionEvent): void;
}

/** A member key not rewritten for this many TTLs is deleted by the server, so the bucket does not collect dead instances. */
const MEMBER_KEY_TTLS = 3;
const WARN_INTERVAL_MS = 5000;
/** How long start() waits for the lease bucket's watch to deliver what the bucket holds. */
const WATCH_CATCH_UP_MS = 10_000;

export class Ownership {
  private readonly members: MemberView;
  private readonly leases = new LeaseView();
  private readonly held = new Map<number, HeldLease>();
  private watch: BucketWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatAt = Number.NEGATIVE_INFINITY;
  private heartbeatRevision = 0;
  private readonly startedAt = new Date().toISOString();
  private cycle: Promise<void> | undefined;
  /** Resolved after the next reconcile pass ends. */
  private afterPass: Array<() => void> = [];
  private again = false;
  private againHeartbeat = false;
  private stopping = false;
  private lastMembers = "";
  private lastWarn = Number.NEGATIVE_INFINITY;
  /** Per partition: when a claim may next be tried, and how many were refused or failed in a row. */
  private readonly claimBackoff = new Map<number, { until: number; failures: number }>();
  /** Per partition assigned here and not held: since when. */
  private readonly wantedSince = new Map<number, number>();
  private unacquiredKey = "";
  private unacquiredLoggedAt = Number.NEGATIVE_INFINITY;
  /** Ownership changes of one cycle, logged as one line each kind. */
  private changes: { acquired: number[]; releasing: number[]; released: number[] } = { acquired: [], releasing: [], released: [] };

  constructor(
    private readonly store: LeaseStore,
    private readonly settings: OwnershipSettings,
    private readonly hooks: OwnershipHooks,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!INSTANCE_ID_PATTERN.test(settings.instanceId)) {
      throw new RangeError(`instance id "${settings.instanceId}" must match ${INSTANCE_ID_PATTERN}`);
    }
    this.members = new MemberView(settings.leaseTtlMs);
  }

  /**
   * Joins: announces this member, loads everyone's keys, takes the first
   * partitions. Throws when NATS does not answer (during a failover, say)
   * with nothing left running, so the caller may simply try again.
   */
  async start(): Promise<void> {
    // Our own key first: the watch then has at least one key and can report that it caught up.
    await this.heartbeat(true);
    await this.startWatch();
    this.timer = setInterval(() => this.kick(true), this.settings.heartbeatMs);
    // One pass, not the chain: on a slow cluster a cycle can outlast the heartbeat interval, and cycles then follow each other for good.
    const firstPass = new Promise<void>((resolve) => this.afterPass.push(resolve));
    this.kick(false);
    await firstPass;
  }

  /** Partitions held and still consumed or finishing (for the gauge). */
  get owned(): number {
    return this.held.size;
  }

  ownedPartitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Partitions assigned here and not acquired within a lease TTL (for the gauge and the alert). */
  unacquired(now = this.now()): number[] {
    const late: number[] = [];
    for (const [p, since] of this.wantedSince) if (now - since >= this.settings.leaseTtlMs) late.push(p);
    return late.sort((a, b) => a - b);
  }

  /** The whole cluster's ownership as this instance observes it. */
  clusterView(): ClusterOwnership {
    const now = this.now();
    const leases: LeaseRecord[] = [];
    for (let p = 0; p < this.settings.partitions; p += 1) {
      const seen = this.leases.get(p);
      const owner = seen?.owner ?? null;
      leases.push({
        partition: p,
        owner,
        revision: seen?.revision ?? 0,
        expired: owner !== null && now - seen!.changedAt >= this.settings.leaseTtlMs,
      });
    }
    return {
      instanceId: this.settings.instanceId,
      members: this.liveMembers(now),
      owned: this.ownedPartitions(),
      unacquired: this.unacquired(now),
      leases,
    };
  }

  /** Undefined while this member's heartbeat is current, else why not. */
  health(): string | undefined {
    if (this.stopping) return "stopping";
    if (this.now() - this.heartbeatAt >= this.settings.leaseTtlMs) return "membership heartbeat failing";
    return undefined;
  }

  /** Leaves: releases every partition (finishing in-flight work), deletes the leases and the member key. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.cycle;
    for (const resolve of this.afterPass.splice(0)) resolve();
    const held = [...this.held.entries()];
    await Promise.all(held.map(([p, lease]) => this.finishRelease(p, lease)));
    await Promise.all(held.map(([p, lease]) => this.deleteLease(p, lease)));
    this.flushChanges();
    try {
      await this.store.delete(memberKey(this.settings.instanceId), this.heartbeatRevision);
    } catch (err) {
      // The server deletes it after its TTL anyway.
      if (!(err instanceof LeaseConflictError)) this.log.info({ err }, "could not delete the member key; it expires by itself");
    }
    this.watch?.stop();
  }

  private async startWatch(): Promise<void> {
    const watch = await this.store.watch((entry) => this.onEntry(entry));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), WATCH_CATCH_UP_MS);
    });
    const late = await Promise.race([watch.caughtUp.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      watch.stop();
      throw new Error(`the lease bucket's watch did not catch up within ${WATCH_CATCH_UP_MS} ms`);
    }
    this.watch = watch;
    void watch.ended.then(() => this.rewatch(watch));
  }

  /**
   * The watch ended while we are running (the client gave up on it): a new
   * one replays every key's latest value, so the views catch up with
   * whatever was missed meanwhile.
   */
  private async rewatch(ended: BucketWatch): Promise<void> {
    if (this.stopping || this.watch !== ended) return;
    this.log.warn("lease bucket watch ended; starting a new one");
    while (!this.stopping) {
      await new Promise((r) => setTimeout(r, this.settings.heartbeatMs));
      try {
        await this.startWatch();
        return;
      } catch (err) {
        this.warn({ err }, "could not watch the lease bucket; retrying");
      }
    }
  }

  private kick(heartbeat: boolean): void {
    if (this.stopping) return;
    if (this.cycle) {
      this.again = true;
      this.againHeartbeat ||= heartbeat;
      return;
    }
    this.cycle = this.runCycles(heartbeat).finally(() => {
      this.cycle = undefined;
    });
  }

  private async runCycles(heartbeat: boolean): Promise<void> {
    let withHeartbeat = heartbeat;
    for (;;) {
      try {
        if (withHeartbeat) await Promise.all([this.heartbeat(false), this.renewAll()]);
        await this.reconcile();
      } catch (err) {
        this.log.error({ err }, "partition ownership cycle failed");
      }
      this.flushChanges();
      for (const resolve of this.afterPass.splice(0)) resolve();
      if (!this.again || this.stopping) return;
      withHeartbeat = this.againHeartbeat;
      this.again = false;
      this.againHeartbeat = false;
    }
  }

  private onEntry(entry: BucketEntry): void {
    const now = this.now();
    const member = memberOfKey(entry.key);
    if (member !== undefined) {
      const wasLive = this.members.live(now).includes(member);
      this.members.observe(member, entry.value === null ? null : entry.revision, now);
      if (wasLive !== (entry.value !== null)) this.kick(false);
      return;
    }
    const partition = partitionOfLeaseKey(entry.key);
    if (partition === undefined || partition >= this.settings.partitions) return;
    const observed = this.leases.observe(partition, entry.value, entry.revision, now);
    const held = this.held.get(partition);
    // A released lease is being deleted by us: its delete marker is ours, not a takeover.
    const ours = this.stopping || held?.state === HeldState.Released;
    if (held && !ours && observed.revision > held.revision && observed.owner !== this.settings.instanceId) {
      this.lose(partition, "another instance wrote the lease");
    }
    // A freed lease may be ours to take now.
    if (observed.owner === null && !held) this.kick(false);
  }

  private async heartbeat(rethrow: boolean): Promise<void> {
    const sent = this.now();
    const value = JSON.stringify({ instanceId: this.settings.instanceId, startedAt: this.startedAt });
    try {
      this.heartbeatRevision = await this.store.put(memberKey(this.settings.instanceId), value, this.settings.leaseTtlMs * MEMBER_KEY_TTLS);
      this.heartbeatAt = sent;
    } catch (err) {
      if (rethrow) throw err;
      this.warn({ err }, "membership heartbeat failed");
    }
  }

  private async renewAll(): Promise<void> {
    await Promise.all(
      [...this.held.entries()].map(async ([p, lease]) => {
        if (lease.state === HeldState.Released) return;
        const sent = this.now();
        try {
          const revision = await this.store.update(leaseKey(p), encodeLease(this.settings.instanceId), lease.revision);
          if (this.held.get(p) !== lease) return;
          lease.revision = revision;
          lease.renewedAt = sent;
        } catch (err) {
          if (this.held.get(p) !== lease) return;
          if (err instanceof LeaseConflictError) {
            // An earlier renewal that timed out on our side may have landed: then the newer revision is ours.
            const seen = this.leases.get(p);
            if (seen && seen.owner === this.settings.instanceId && seen.revision > lease.revision) {
              lease.revision = seen.revision;
              return;
            }
            this.lose(p, "lease renewal refused: another instance wrote it");
          } else if (this.now() - lease.renewedAt >= this.settings.leaseTtlMs) {
            this.lose(p, "lease not renewed within its TTL");
          } else {
            this.warn({ err, partition: p }, "lease renewal failed; retrying");
          }
        }
      }),
    );
  }

  private async reconcile(): Promise<void> {
    if (this.stopping) return;
    const now = this.now();
    const self = this.settings.instanceId;
    // While our own heartbeat is failing, the others may already count us out:
    // take nothing new and give nothing up; renewals decide what we lose.
    if (now - this.heartbeatAt >= this.settings.leaseTtlMs) return;
    const live = this.liveMembers(now);
    const membersKey = live.join(",");
    if (membersKey !== this.lastMembers) {
      this.lastMembers = membersKey;
      this.log.info({ members: live }, "sequencer members changed");
    }
    const mine = new Set(partitionsFor(self, live, this.settings.partitions));

    for (const [p, lease] of this.held) {
      if (lease.state === HeldState.Released) await this.deleteLease(p, lease);
      else if (lease.state === HeldState.Active && !mine.has(p)) this.beginRelease(p, lease);
    }
    const wanted = [...mine].filter((p) => !this.held.has(p));
    for (const p of this.wantedSince.keys()) if (!mine.has(p) || this.held.has(p)) this.wantedSince.delete(p);
    for (const p of wanted) if (!this.wantedSince.has(p)) this.wantedSince.set(p, now);
    for (const p of this.claimBackoff.keys()) if (!mine.has(p)) this.claimBackoff.delete(p);
    const due = wanted.filter((p) => (this.claimBackoff.get(p)?.until ?? 0) <= now);
    await Promise.all(due.map((p) => this.acquire(p, now)));
    this.reportUnacquired();
  }

  /** Everyone alive as we see it, ourselves included while our own heartbeat is current. */
  private liveMembers(now: number): string[] {
    const self = this.settings.instanceId;
    return [...this.members.live(now).filter((m) => m !== self), self].sort();
  }

  /** One line when the set of partitions stuck unacquired changes, and again every WARN_INTERVAL_MS while it lasts. */
  private reportUnacquired(): void {
    const late = this.unacquired();
    const key = late.join(",");
    const now = this.now();
    if (key === this.unacquiredKey && (late.length === 0 || now - this.unacquiredLoggedAt < WARN_INTERVAL_MS)) return;
    this.unacquiredKey = key;
    this.unacquiredLoggedAt = now;
    if (late.length === 0) {
      this.log.info("every partition assigned here is acquired");
      return;
    }
    const owners = late.map((p) => ({ partition: p, lease: this.leases.get(p) ?? null, failures: this.claimBackoff.get(p)?.failures ?? 0 }));
    this.log.warn({ partitions: late, owners }, "partitions assigned here are still not acquired after a lease TTL; retrying");
  }

  private async acquire(partition: number, now: number): Promise<void> {
    const self = this.settings.instanceId;
    const claim = this.leases.claim(partition, self, now, this.settings.leaseTtlMs);
    if (!claim) return;
    const previousOwner = this.leases.get(partition)?.owner ?? null;
    const sent = this.now();
    const key = leaseKey(partition);
    try {
      const revision =
        "create" in claim
          ? await this.store.create(key, encodeLease(self))
          : await this.store.update(key, encodeLease(self), claim.revision);
      if (this.stopping) {
        await this.store.delete(key, revision).catch(() => undefined);
        return;
      }
      this.claimBackoff.delete(partition);
      this.wantedSince.delete(partition);
      this.held.set(partition, { state: HeldState.Active, revision, renewedAt: sent });
      this.changes.acquired.push(partition);
      if (previousOwner !== null && previousOwner !== self) this.log.info({ partition, previousOwner }, "partition taken over");
      this.hooks.event(PartitionEvent.Acquired);
      this.hooks.acquired(partition);
    } catch (err) {
      await this.claimFailed(partition, err);
    }
  }

  /**
   * A refused claim means our view of the key was stale (the watch lagging,
   * or a replica's view): re-read it from the stream leader so that the next
   * claim names the revision the key really has, and back off. Any other
   * failure backs off the same way.
   */
  private async claimFailed(partition: number, err: unknown): Promise<void> {
    const failures = (this.claimBackoff.get(partition)?.failures ?? 0) + 1;
    const delay = Math.min(this.settings.heartbeatMs * 2 ** (failures - 1), this.settings.leaseTtlMs);
    this.claimBackoff.set(partition, { until: this.now() + delay, failures });
    const refused = err instanceof LeaseConflictError;
    try {
      const entry = await this.store.read(leaseKey(partition));
      this.leases.observe(partition, entry.value, entry.revision, this.now());
      this.log.info(
        { partition, refused, failures, retryInMs: Math.round(delay), owner: this.leases.get(partition)?.owner ?? null, revision: entry.revision, ...(refused ? {} : { err }) },
        refused ? "partition claim refused; re-read the lease from the stream leader" : "partition claim failed; re-read the lease",
      );
    } catch (readErr) {
      this.warn({ err: readErr, partition, claimErr: refused ? undefined : err }, "could not claim or re-read a partition lease; retrying");
    }
    const timer = setTimeout(() => this.kick(false), delay);
    timer.unref();
  }

  private beginRelease(partition: number, lease: HeldLease): void {
    lease.state = HeldState.Releasing;
    this.changes.releasing.push(partition);
    lease.releasing = this.runRelease(partition).then(() => {
      if (this.held.get(partition) !== lease) return;
      lease.state = HeldState.Released;
      this.kick(false);
    });
  }

  private async runRelease(partition: number): Promise<void> {
    try {
      await this.hooks.release(partition);
    } catch (err) {
      this.log.error({ err, partition }, "releasing a partition failed; deleting its lease anyway");
    }
  }

  private async finishRelease(partition: number, lease: HeldLease): Promise<void> {
    if (lease.state === HeldState.Active) {
      lease.state = HeldState.Releasing;
      lease.releasing = this.runRelease(partition);
    }
    await lease.releasing;
    lease.state = HeldState.Released;
  }

  private async deleteLease(partition: number, lease: HeldLease): Promise<void> {
    try {
      await this.store.delete(leaseKey(partition), lease.revision);
    } catch (err) {
      if (!(err instanceof LeaseConflictError) && this.now() - lease.renewedAt < this.settings.leaseTtlMs) {
        this.warn({ err, partition }, "could not delete a released lease; retrying");
        return;
      }
    }
    if (this.held.get(partition) !== lease) return;
    this.held.delete(partition);
    this.changes.released.push(partition);
    this.hooks.event(PartitionEvent.Released);
  }

  /** One log line per kind of change in a cycle, not one per partition. */
  private flushChanges(): void {
    const { acquired, releasing, released } = this.changes;
    const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
    if (acquired.length) this.log.info({ partitions: sorted(acquired), owned: this.held.size }, "partitions acquired");
    if (releasing.length) this.log.info({ partitions: sorted(releasing) }, "releasing partitions assigned to another member");
    if (released.length) this.log.info({ partitions: sorted(released), owned: this.held.size }, "partitions released");
    this.changes = { acquired: [], releasing: [], released: [] };
  }

  private lose(partition: number, reason: string): void {
    const lease = this.held.get(partition);
    if (!lease) return;
    this.held.delete(partition);
    this.log.warn({ partition, reason }, "partition lost");
    this.hooks.event(PartitionEvent.Lost);
    // A partition lost while releasing has already stopped pulling; lost() stops its actors at once.
    this.hooks.lost(partition);
  }

  private warn(fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.lastWarn < WARN_INTERVAL_MS) return;
    this.lastWarn = now;
    this.log.warn(fields, message);
  }
}
