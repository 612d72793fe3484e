// Gathers the moments idle actors start their KV writes into one per
// `lingerMs`.
//
// Why: on this kind of machine a socket write costs tens of microseconds of
// system time, and at a low message rate every message would otherwise be
// its own write to NATS for the state update, then another for its ack, and
// its own read on the server and on every API watching the bucket. Started
// together, the writes of every channel that received something within the
// window leave in one socket write, their replies come back together, and
// their acks leave together too.
//
// Guarantees:
// - Only the start of an idle actor's run waits, and at most `lingerMs`: an
//   actor already writing keeps taking what arrived meanwhile as its next
//   batch, as before, so under load nothing waits longer than it did.
// - Nothing is acked sooner than before: acks still follow the commit of the
//   write that holds their message.
// - `flush()` starts everything waiting at once (draining, stopping).
// - lingerMs <= 0 starts every run at once, as if there were no linger.

export class WriteLinger {
  private waiting: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly lingerMs: number) {}

  /** Runs `start` at the end of the current window (at once when lingerMs <= 0). */
  start(start: () => void): void {
    if (this.lingerMs <= 0) {
      start();
      return;
    }
    this.waiting.push(start);
    this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
  }

  /** Starts every run waiting for the window now. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    for (const start of waiting) start();
  }
}
