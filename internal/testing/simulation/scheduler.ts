// The simulator's event loop: virtual time, one event at a time, every
// timer of the code under test on it, so that one seed replays one history
// exactly.
//
// Guarantees:
// - While installed, the process's timers (setTimeout, setInterval,
//   setImmediate and their clears), `Date` and `performance.now()` are this
//   scheduler's: nothing the code under test schedules runs on the real
//   clock, and no real I/O happens, so the order of everything is decided by
//   the events' virtual times (ties: the order they were scheduled in).
// - Each event runs alone: after its callback, every microtask it caused (a
//   whole chain of awaits) runs before the next event is taken, so an event's
//   consequences are attributed to the event's owner. Timers set meanwhile
//   belong to that owner (`current`), which is what lets a simulated instance
//   crash (its pending events dropped: memory gone, nothing more runs) or
//   pause (its events held until it resumes) while the rest of the world goes
//   on. Code of one owner must only be called back from the world through an
//   event of that owner (the simulated network does so).
// - Clocks are per owner: a paused owner's monotonic clock may stand still
//   (a VM suspended: CLOCK_MONOTONIC does not count it) while the world's
//   wall clock goes on.

/** Who an event belongs to: "world" (the simulated NATS, the load) or a simulated instance's id. */
export type Owner = string;

export const WORLD: Owner = "world";

interface SimEvent {
  at: number;
  order: number;
  owner: Owner;
  run: () => void;
  cancelled: boolean;
  /** The delay it was scheduled with. */
  delay: number;
  /** Set for intervals: rescheduled this long after each run. */
  every?: number;
}

/** A handle shaped like Node's Timeout, so code that calls unref() or refresh() works unchanged. */
class SimTimer {
  constructor(
    public event: SimEvent,
    private readonly scheduler: Scheduler,
  ) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): this {
    this.event = this.scheduler.refresh(this.event);
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.event.order;
  }
}

/** Per owner: how its clocks relate to the world's. */
interface OwnerClock {
  /** Milliseconds its monotonic clock lost while suspended. */
  frozen: number;
  /** Its wall clock's offset from the world's. */
  skew: number;
  /** While paused: until when, and whether the monotonic clock stands still. */
  pause?: { until: number; suspend: boolean; since: number };
}

const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
  clearImmediate: globalThis.clearImmediate,
  Date: globalThis.Date,
};

/** The world's wall clock at virtual time 0. */
export const EPOCH_MS = Date.UTC(2026, 0, 1);

/** A binary heap of events by (at, order). */
class EventQueue {
  private readonly heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

export class Scheduler {
  /** The world's virtual time, in milliseconds since the run began. */
  now = 0;
  /** Whose code is running now. */
  current: Owner = WORLD;
  /** Events run so far. */
  steps = 0;
  private order = 0;
  private readonly queue = new EventQueue();
  private readonly clocks = new Map<Owner, OwnerClock>();
  private readonly dead = new Set<Owner>();
  private installed = false;

  /** Runs `run` as `owner` after `delayMs` of virtual time. */
  schedule(owner: Owner, delayMs: number, run: () => void): SimEvent {
    const delay = Math.max(0, delayMs);
    const event: SimEvent = { at: this.now + delay, order: this.order++, owner, run, cancelled: false, delay };
    this.queue.push(event);
    return event;
  }

  cancel(event: SimEvent | undefined): void {
    if (event) event.cancelled = true;
  }

  /** Restarts a timer's countdown from now (Node's timeout.refresh()); returns the event that replaces it. */
  refresh(event: SimEvent): SimEvent {
    event.cancelled = true;
    const fresh = this.schedule(event.owner, event.delay, event.run);
    if (event.every !== undefined) fresh.every = event.every;
    return fresh;
  }

  /** The owner's monotonic clock (what performance.now() returns to its code). */
  monotonic(owner: Owner): number {
    const clock = this.clocks.get(owner);
    if (!clock) return this.now;
    let frozen = clock.frozen;
    if (clock.pause?.suspend) frozen += this.now - clock.pause.since;
    return this.now - frozen;
  }

  /** The owner's wall clock (Date.now()). */
  wall(owner: Owner): number {
    return EPOCH_MS + this.now + (this.clocks.get(owner)?.skew ?? 0);
  }

  setSkew(owner: Owner, skewMs: number): void {
    this.clockOf(owner).skew = skewMs;
  }

  /**
   * Nothing of `owner` runs for `ms`: its events come due are held until it
   * resumes. `suspend`: its monotonic clock stands still meanwhile (a VM
   * suspended); otherwise it keeps counting (SIGSTOP).
   */
  pause(owner: Owner, ms: number, suspend: boolean): void {
    const clock = this.clockOf(owner);
    if (clock.pause) return;
    clock.pause = { until: this.now + ms, suspend, since: this.now };
    this.schedule(WORLD, ms, () => this.resume(owner));
  }

  isPaused(owner: Owner): boolean {
    return this.clocks.get(owner)?.pause !== undefined;
  }

  /** The owner is gone for good: its pending events are dropped and none of its code runs again. */
  kill(owner: Owner): void {
    this.dead.add(owner);
  }

  isDead(owner: Owner): boolean {
    return this.dead.has(owner);
  }

  get pending(): number {
    return this.queue.size;
  }

  /** The virtual time of the next live event, or undefined when none is left. */
  nextAt(): number | undefined {
    return this.queue.peek()?.at;
  }

  /**
   * Runs events in order until virtual time passes `until`, nothing is left,
   * or `stop()` says so (checked between events).
   */
  async runUntil(until: number, stop: () => boolean = () => false): Promise<void> {
    for (;;) {
      if (stop()) return;
      const next = this.queue.peek();
      if (next === undefined || next.at > until) {
        if (next === undefined || this.now < until) this.now = Math.max(this.now, Math.min(until, next?.at ?? until));
        return;
      }
      this.queue.pop();
      if (next.cancelled || this.dead.has(next.owner)) continue;
      this.now = Math.max(this.now, next.at);
      const clock = this.clocks.get(next.owner);
      if (clock?.pause && clock.pause.until <= this.now) this.resume(next.owner);
      if (clock?.pause) {
        // Held until the owner resumes, keeping its place among the owner's own events.
        next.at = clock.pause.until;
        this.queue.push(next);
        continue;
      }
      if (next.every !== undefined) {
        next.at = this.now + next.every;
        next.order = this.order++;
        this.queue.push(next);
      }
      this.current = next.owner;
      this.steps += 1;
      try {
        next.run();
        // Every microtask the event caused runs before the next event.
        await new Promise<void>((resolve) => real.setImmediate(resolve));
      } finally {
        this.current = WORLD;
      }
    }
  }

  /** Makes the process's timers and clocks this scheduler's, until `uninstall`. */
  install(): void {
    if (this.installed) return;
    this.installed = true;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const scheduler = this;
    const g = globalThis as unknown as Record<string, unknown>;
    const timeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      new SimTimer(scheduler.schedule(scheduler.current, Math.max(1, ms ?? 1), () => fn(...args)), scheduler);
    const clear = (t: unknown) => {
      if (t instanceof SimTimer) scheduler.cancel(t.event);
    };
    g["setTimeout"] = timeout;
    g["clearTimeout"] = clear;
    g["setInterval"] = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const every = Math.max(1, ms ?? 1);
      const event = scheduler.schedule(scheduler.current, every, () => fn(...args));
      event.every = every;
      return new SimTimer(event, scheduler);
    };
    g["clearInterval"] = clear;
    g["setImmediate"] = (fn: (...args: unknown[]) => void, ...args: unknown[]) =>
      new SimTimer(scheduler.schedule(scheduler.current, 0, () => fn(...args)), scheduler);
    g["clearImmediate"] = clear;
    const RealDate = real.Date;
    class SimDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(scheduler.wall(scheduler.current));
        else super(...(args as [number]));
      }
      static override now(): number {
        return scheduler.wall(scheduler.current);
      }
    }
    g["Date"] = SimDate;
    Object.defineProperty(performance, "now", { value: () => scheduler.monotonic(scheduler.current), configurable: true, writable: true });
  }

  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    const g = globalThis as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(real)) g[name] = value;
    delete (performance as unknown as Record<string, unknown>)["now"];
  }

  private resume(owner: Owner): void {
    const clock = this.clocks.get(owner);
    if (!clock?.pause) return;
    if (clock.pause.suspend) clock.frozen += this.now - clock.pause.since;
    clock.pause = undefined;
  }

  private clockOf(owner: Owner): OwnerClock {
    let clock = this.clocks.get(owner);
    if (!clock) {
      clock = { frozen: 0, skew: 0 };
      this.clocks.set(owner, clock);
    }
    return clock;
  }
}
