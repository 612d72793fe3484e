// Decides which partitions this instance consumes, with only NATS 2.9 KV
// features (no consumer priority groups, no per-key TTL).
//
// Every heartbeat the instance rewrites its member key, renews the leases it
// holds (compare-and-set), and reconciles: from the members it sees alive it
// computes the same assignment as every other instance, releases the leases
// it should no longer hold (after its in-flight work finished) and takes the
// ones assigned to it that are free or expired. Joining, leaving or dying
// therefore rebalances within about one lease TTL plus a heartbeat, and a
// graceful stop releases everything at once.
//
// Guarantees:
// - A lease is held by at most one instance: every write to it is a
//   compare-and-set. An instance that cannot renew a lease within the TTL, or
//   sees someone else write it, treats the partition as lost and stops
//   consuming it at once.
// - The hooks are called in order per partition: acquired, then release or
//   lost, never both.

import type { BucketEntry, BucketWatch } from "../nats/lease-bucket.js";
import { LeaseConflictError } from "../nats/lease-bucket.js";
import type { Logger } from "../observability/logger.js";
import { INSTANCE_ID_PATTERN, memberKey, memberOfKey, MemberView } from "./membership.js";
import { PartitionEvent } from "./metrics.js";
import { partitionsFor } from "./partition-assignment.js";
import { encodeLease, HeldState, leaseKey, LeaseView, partitionOfLeaseKey, type HeldLease } from "./partition-leases.js";

/** The lease bucket (LeaseBucket); conditional writes throw LeaseConflictError. */
export interface LeaseStore {
  create(key: string, value: string): Promise<number>;
  update(key: string, value: string, revision: number): Promise<number>;
  put(key: string, value: string): Promise<number>;
  delete(key: string, revision: number): Promise<void>;
  watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch>;
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

/** Member keys silent this many TTLs are deleted (best effort) so the bucket does not collect dead instances. */
const MEMBER_CLEANUP_TTLS = 3;
const WARN_INTERVAL_MS = 5000;

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
  private again = false;
  private againHeartbeat = false;
  private stopping = false;
  private lastMembers = "";
  private lastWarn = Number.NEGATIVE_INFINITY;

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

  /** Joins: announces this member, loads everyone's keys, takes the first partitions. */
  async start(): Promise<void> {
    // Our own key first: the watch then has at least one key and can report that it caught up.
    await this.heartbeat(true);
    await this.startWatch();
    this.timer = setInterval(() => this.kick(true), this.settings.heartbeatMs);
    this.kick(false);
    await this.cycle;
  }

  /** Partitions held and still consumed or finishing (for the gauge). */
  get owned(): number {
    return this.held.size;
  }

  ownedPartitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
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
    const held = [...this.held.entries()];
    await Promise.all(held.map(([p, lease]) => this.finishRelease(p, lease)));
    await Promise.all(held.map(([p, lease]) => this.deleteLease(p, lease)));
    try {
      await this.store.delete(memberKey(this.settings.instanceId), this.heartbeatRevision);
    } catch (err) {
      if (!(err instanceof LeaseConflictError)) this.log.warn({ err }, "could not delete the member key");
    }
    this.watch?.stop();
  }

  private async startWatch(): Promise<void> {
    const watch = await this.store.watch((entry) => this.onEntry(entry));
    this.watch = watch;
    void watch.ended.then(() => this.rewatch(watch));
    await watch.caughtUp;
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
        if (withHeartbeat) {
          await Promise.all([this.heartbeat(false), this.renewAll()]);
          await this.cleanupMembers();
        }
        await this.reconcile();
      } catch (err) {
        this.log.error({ err }, "partition ownership cycle failed");
      }
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
      this.heartbeatRevision = await this.store.put(memberKey(this.settings.instanceId), value);
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

  private async cleanupMembers(): Promise<void> {
    const silent = this.members.silent(this.now(), this.settings.leaseTtlMs * MEMBER_CLEANUP_TTLS);
    await Promise.all(
      silent
        .filter((m) => m.instanceId !== this.settings.instanceId)
        .map(async ({ instanceId, revision }) => {
          try {
            await this.store.delete(memberKey(instanceId), revision);
            this.log.info({ member: instanceId }, "silent sequencer member removed");
          } catch {
            // Someone else removed it, or it came back: either is fine.
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
    const live = [...this.members.live(now).filter((m) => m !== self), self].sort();
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
    await Promise.all(wanted.map((p) => this.acquire(p, now)));
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
      this.held.set(partition, { state: HeldState.Active, revision, renewedAt: sent });
      this.log.info({ partition, previousOwner }, "partition acquired");
      this.hooks.event(PartitionEvent.Acquired);
      this.hooks.acquired(partition);
    } catch (err) {
      // A conflict means someone else took or renewed it first; the watch shows who.
      if (!(err instanceof LeaseConflictError)) this.warn({ err, partition }, "could not take a partition lease");
    }
  }

  private beginRelease(partition: number, lease: HeldLease): void {
    lease.state = HeldState.Releasing;
    this.log.info({ partition }, "releasing partition: assigned to another member");
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
    this.log.info({ partition }, "partition released");
    this.hooks.event(PartitionEvent.Released);
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
