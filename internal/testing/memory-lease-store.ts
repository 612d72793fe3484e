// An in-memory lease bucket, faithful to the LeaseStore rules
// (internal/sequencer/lease-store.ts) that the JetStream KV bucket follows,
// so the ownership protocol can be unit-tested without a nats-server. The
// contract test (internal/sequencer/lease-store.contract.test.ts) runs the
// same cases against this and the real bucket.
//
// One MemoryLeaseBucket is the shared bucket; each member talks to it through
// its own client (`connect()`), which can be closed to play a crash: every
// later call rejects, its watches end, and nothing is released.
//
// What it does not model: lag (every read and watch is current), and network
// delay beyond delivering watch entries asynchronously, in revision order.

import { LeaseConflictError, type BucketEntry, type BucketWatch, type LeaseStore } from "../sequencer/lease-store.js";

interface Stored {
  value: string | null;
  revision: number;
}

type Listener = (entry: BucketEntry) => void;

export class MemoryLeaseBucket {
  private readonly entries = new Map<string, Stored>();
  private readonly listeners = new Set<Listener>();
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  private lastRevision = 0;

  /** A member's connection to the bucket. */
  connect(): MemoryLeaseClient {
    return new MemoryLeaseClient(this);
  }

  /** Stops every pending TTL timer (end of a test). */
  dispose(): void {
    for (const timer of this.expiries.values()) clearTimeout(timer);
    this.expiries.clear();
    this.listeners.clear();
  }

  /** @internal The client's operations; each is atomic (no await inside). */
  write(key: string, value: string | null, condition: { revision: number } | "absent" | "none", ttlMs?: number): number {
    const current = this.entries.get(key);
    if (condition === "absent" && current !== undefined && current.value !== null) throw new LeaseConflictError(key, 0);
    if (typeof condition === "object" && (current?.revision ?? 0) !== condition.revision) {
      throw new LeaseConflictError(key, condition.revision);
    }
    const revision = ++this.lastRevision;
    this.entries.set(key, { value, revision });
    clearTimeout(this.expiries.get(key));
    this.expiries.delete(key);
    if (ttlMs !== undefined && value !== null) {
      const timer = setTimeout(() => {
        this.expiries.delete(key);
        // Expired unless written again meanwhile (which would have cleared this timer).
        if (this.entries.get(key)?.revision === revision) this.write(key, null, "none");
      }, ttlMs);
      timer.unref();
      this.expiries.set(key, timer);
    }
    const entry = { key, value, revision };
    for (const listener of this.listeners) listener(entry);
    return revision;
  }

  /** @internal */
  read(key: string): BucketEntry {
    const current = this.entries.get(key);
    return { key, value: current?.value ?? null, revision: current?.revision ?? 0 };
  }

  /** @internal Every key's latest entry in revision order, then each change, through `listener`. */
  subscribe(listener: Listener): { snapshot: BucketEntry[]; unsubscribe: () => void } {
    const snapshot = [...this.entries].map(([key, s]) => ({ key, ...s })).sort((a, b) => a.revision - b.revision);
    this.listeners.add(listener);
    return { snapshot, unsubscribe: () => this.listeners.delete(listener) };
  }
}

export class ConnectionClosedError extends Error {
  override name = "ConnectionClosedError";
}

export class MemoryLeaseClient implements LeaseStore {
  private closed = false;
  private readonly watches = new Set<() => void>();

  constructor(private readonly bucket: MemoryLeaseBucket) {}

  /** Plays a crash: every later call rejects and every watch ends. */
  close(): void {
    this.closed = true;
    for (const stop of [...this.watches]) stop();
  }

  async create(key: string, value: string): Promise<number> {
    await this.roundTrip();
    return this.bucket.write(key, value, "absent");
  }

  async update(key: string, value: string, revision: number): Promise<number> {
    await this.roundTrip();
    return this.bucket.write(key, value, { revision });
  }

  async put(key: string, value: string, ttlMs?: number): Promise<number> {
    await this.roundTrip();
    return this.bucket.write(key, value, "none", ttlMs);
  }

  async delete(key: string, revision: number): Promise<void> {
    await this.roundTrip();
    this.bucket.write(key, null, { revision });
  }

  async read(key: string): Promise<BucketEntry> {
    await this.roundTrip();
    return this.bucket.read(key);
  }

  async watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch> {
    await this.roundTrip();
    // Entries are delivered in order, each in a later turn of the event loop than the write that made it.
    let queue = Promise.resolve();
    let stopped = false;
    const deliver = (entry: BucketEntry) => {
      queue = queue.then(() => {
        if (!stopped) onEntry(entry);
      });
    };
    const { snapshot, unsubscribe } = this.bucket.subscribe(deliver);
    snapshot.forEach(deliver);
    const caughtUp = queue;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const stop = () => {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      this.watches.delete(stop);
      end();
    };
    this.watches.add(stop);
    return { caughtUp, ended, stop };
  }

  private async roundTrip(): Promise<void> {
    if (this.closed) throw new ConnectionClosedError("connection closed");
    await new Promise((resolve) => setImmediate(resolve));
    if (this.closed) throw new ConnectionClosedError("connection closed");
  }
}
