// The lease bucket (rockets_leases) as the sequencer's ownership protocol
// needs it: compare-and-set writes and a watch over every key, nothing else.
//
// Every conditional write names the revision it expects (create: the key must
// be absent or deleted), so two instances can never both believe they took
// the same lease: the loser gets LeaseConflictError. Any other failure (NATS
// unreachable, a timeout) is rethrown as is; the write may or may not have
// happened, and the caller must find out from the watch.

import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { isWriteConflict } from "./jetstream-codes.js";

export class LeaseConflictError extends Error {
  override name = "LeaseConflictError";
  constructor(
    readonly key: string,
    readonly expectedRevision: number,
  ) {
    super(`key ${key} is no longer at revision ${expectedRevision}`);
  }
}

/** One key's latest value as the watch sees it; `value` is null once deleted. */
export interface BucketEntry {
  key: string;
  value: string | null;
  revision: number;
}

export interface BucketWatch {
  /** Resolves once the watch has delivered the bucket's contents as they were when it started. */
  readonly caughtUp: Promise<void>;
  /** Resolves when the watch ends (stopped, or the connection closed). */
  readonly ended: Promise<void>;
  stop(): void;
}

function conflictOr(err: unknown, key: string, revision: number): unknown {
  return isWriteConflict(err) ? new LeaseConflictError(key, revision) : err;
}

export class LeaseBucket {
  constructor(private readonly kv: KV) {}

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

  /** Writes `key` unconditionally (heartbeats, where only the change matters). */
  async put(key: string, value: string): Promise<number> {
    return this.kv.put(key, value);
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
