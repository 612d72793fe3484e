// Bounds how many KV operations run at once across all channel actors, so a
// burst over many channels queues in memory instead of flooding NATS with
// requests that would time out. Waiters are served in arrival order, those
// marked urgent first: a launched rocket's write goes ahead of the loads and
// writes of channels that never launched, so a flood of new channels (tens
// of thousands, each needing a read) cannot hold the fleet's updates behind
// it.

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly urgent: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }

  /** Runs `task` once fewer than `limit` tasks are running (an urgent one before every waiting task that is not). */
  async run<T>(task: () => Promise<T>, urgent = false): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => (urgent ? this.urgent : this.waiting).push(resolve));
    else this.active += 1;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so `active` never drops and rises again.
      const next = this.urgent.shift() ?? this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length + this.urgent.length;
  }
}
