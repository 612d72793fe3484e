// The port the ownership protocol (ownership.ts) keeps its leases and member
// keys through: a key-value bucket with compare-and-set writes, writes that
// expire, reads of the latest entry, and a watch over every key.
// internal/nats/lease-bucket.ts implements it on a JetStream KV bucket;
// internal/testing/memory-lease-store.ts in memory, for unit tests. One
// contract test (lease-store.contract.test.ts) holds both to the same rules.
//
// The rules:
// - Revisions grow across the whole bucket, and every write (a delete
//   included) gets a new one.
// - `create` succeeds only while the key is absent or deleted; `update` and
//   `delete` only while the key is still at the revision named. A refused
//   conditional write throws LeaseConflictError and changes nothing. Any other
//   failure is rethrown as is: the write may or may not have happened.
// - A key put with a TTL is deleted by the store unless written again in time;
//   watchers see that as a deletion.
// - A watch delivers every key's latest entry, then every change, in revision
//   order; a deleted key comes as value null.

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

export interface LeaseStore {
  /** Writes `key` only if it is absent or deleted; returns the new revision. */
  create(key: string, value: string): Promise<number>;
  /** Writes `key` only if it is still at `revision`. */
  update(key: string, value: string, revision: number): Promise<number>;
  /** Unconditional; with `ttlMs` the store deletes the key unless it is written again in time. */
  put(key: string, value: string, ttlMs?: number): Promise<number>;
  /** Deletes `key` only if it is still at `revision`. */
  delete(key: string, revision: number): Promise<void>;
  /** The key's latest entry as the authority has it (never a lagging copy): value null when deleted or absent, revision 0 when never written. */
  read(key: string): Promise<BucketEntry>;
  /** Calls `onEntry` for every key's latest entry, then for every change, in revision order. */
  watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch>;
}
