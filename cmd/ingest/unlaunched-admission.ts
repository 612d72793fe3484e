// Bounds, at the door, how many channels that have not launched one ingest
// process takes messages for.
//
// Why: a message of a channel with no launched rocket costs the sequencer a
// state entry (every acknowledgement has a write behind it), and its
// rockets nothing. A flood of such channels (never launching, each sending
// a later number only) would cost a write per channel and hold real rockets'
// updates behind it. A real rocket sends its launch first, or within a few
// messages of it.
//
// Guarantees:
// - A channel whose launch (message 1) came through this process, or which
//   was admitted once, is never refused again (remembered, least recently
//   used forgotten first past `maxRemembered`).
// - Other channels that have not launched (as the late-resend check read
//   their state) are admitted while a token bucket has tokens: `burst` at
//   once, refilled at `perSecond`. Past it their messages are answered 503
//   with Retry-After (nothing stored; the client retries, and its launch, when
//   it comes, admits the channel), and counted.
// - A channel whose state could not be read is admitted: the bound never
//   refuses what it cannot judge.

export interface AdmissionSettings {
  /** Channels admitted at once. 0 turns the bound off. */
  burst: number;
  /** Channels admitted per second once the burst is spent. */
  perSecond: number;
  /** Admitted channels remembered. */
  maxRemembered: number;
  now?: () => number;
}

export const DEFAULT_ADMISSION: AdmissionSettings = { burst: 5000, perSecond: 200, maxRemembered: 100_000 };

export class UnlaunchedAdmission {
  private readonly admitted = new Map<string, true>();
  private tokens: number;
  private refilledAt: number;
  private readonly now: () => number;

  constructor(private readonly settings: AdmissionSettings = DEFAULT_ADMISSION) {
    this.now = settings.now ?? Date.now;
    this.tokens = settings.burst;
    this.refilledAt = this.now();
  }

  /** The channel's launch came through: its messages are never refused. */
  launched(channel: string): void {
    this.remember(channel);
  }

  /** May a message of `channel`, which has not launched, be stored? */
  admit(channel: string): boolean {
    if (this.settings.burst <= 0 || this.admitted.has(channel)) {
      if (this.settings.burst > 0) this.remember(channel);
      return true;
    }
    const now = this.now();
    this.tokens = Math.min(this.settings.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.settings.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    this.remember(channel);
    return true;
  }

  private remember(channel: string): void {
    this.admitted.delete(channel);
    this.admitted.set(channel, true);
    if (this.admitted.size > this.settings.maxRemembered) this.admitted.delete(this.admitted.keys().next().value as string);
  }
}
