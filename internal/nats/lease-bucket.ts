// The lease bucket (rockets_leases) as the sequencer's ownership protocol
// needs it (the LeaseStore port, internal/sequencer/lease-store.ts): compare-and-set writes, writes that expire on the server, reads
// from the stream leader, and a watch over every key.
//
// Every conditional write names the revision it expects (create: the key must
// be absent or deleted), so two instances can never both believe they took
// the same lease: the loser gets LeaseConflictError. Any other failure (NATS
// unreachable, a timeout) is rethrown as is; the write may or may not have
// happened, and the caller must find out from the watch or a read.
//
// Reads go to the stream leader through the JetStream API, never through a
// direct get that any replica may answer: a replica can lag, and a claim
// based on a lagging revision would be refused again and again.
//
// Keys written with a TTL vanish on the server unless rewritten in time (the
// bucket allows per-message TTLs, nats-server >= 2.11): watchers see the
// server's delete marker as a deletion.

import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import { LeaseConflictError, type BucketEntry, type BucketWatch, type LeaseStore } from "../sequencer/lease-store.js";
import { isWriteConflict } from "./jetstream-codes.js";
import { readFromLeader } from "./kv-leader-read.js";

function conflictOr(err: unknown, key: string, revision: number): unknown {
  return isWriteConflict(err) ? new LeaseConflictError(key, revision) : err;
}

/** A TTL as the Nats-TTL header takes it: whole seconds, at least one. */
function ttlText(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

/** The sequencer's LeaseStore (internal/sequencer/lease-store.ts) on a JetStream KV bucket. */
export class LeaseBucket implements LeaseStore {
  private constructor(
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
  ) {}

  /**
   * Opens the (provisioned) bucket. Every request gives up after
   * `timeoutMs`: one stuck request must not hold back the renewals of every
   * lease until they expire.
   */
  static async open(nc: NatsConnection, bucket: string, timeoutMs: number): Promise<LeaseBucket> {
    const js = jetstream(nc, { timeout: timeoutMs });
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    return new LeaseBucket(await new Kvm(js).open(bucket), js, jsm, bucket);
  }

  /** Writes `key` only if it is absent or deleted; returns the new revision. */
  async create(key: string, value: string): Promise<number> {
    try {
      return await this.kv.create(key, value);
    } catch (err) {
      throw conflictOr(err, key, 0);
    }
  }

  /** Writes `key` only if it is still at `revision`. */
  async update(key: string, value: string, revision: number): Promise<number> {
    try {
      return await this.kv.update(key, value, revision);
    } catch (err) {
      throw conflictOr(err, key, revision);
    }
  }

  /**
   * Writes `key` unconditionally (heartbeats, where only the change matters);
   * with `ttlMs` the server deletes it unless it is written again in time.
   */
  async put(key: string, value: string, ttlMs?: number): Promise<number> {
    if (ttlMs === undefined) return this.kv.put(key, value);
    const ack = await this.js.publish(`$KV.${this.bucket}.${key}`, value, { ttl: ttlText(ttlMs) });
    return ack.seq;
  }

  /** The key's latest entry as the stream leader has it; value null when deleted, revision 0 when never written. */
  async read(key: string): Promise<BucketEntry> {
    const { value, revision } = await readFromLeader(this.jsm, this.bucket, key);
    return { key, value, revision };
  }

  /** Deletes `key` only if it is still at `revision`. */
  async delete(key: string, revision: number): Promise<void> {
    try {
      await this.kv.delete(key, { previousSeq: revision });
    } catch (err) {
      throw conflictOr(err, key, revision);
    }
  }

  /**
   * Calls `onEntry` for every key's latest value, then for every change, in
   * revision order. `caughtUp` needs at least one key in the bucket to
   * resolve (write your own key before watching).
   */
  async watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch> {
    const iterator: QueuedIterator<KvWatchEntry> = await this.kv.watch({ key: ">" });
    let markCaughtUp!: () => void;
    const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
    const ended = (async () => {
      for await (const e of iterator) {
        onEntry({ key: e.key, value: e.operation === "PUT" ? e.string() : null, revision: e.revision });
        if (e.delta === 0) markCaughtUp();
      }
    })();
    return { caughtUp, ended, stop: () => iterator.stop() };
  }
}
