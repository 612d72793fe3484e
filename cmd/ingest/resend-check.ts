// Recognises a resend the stream could not: one that comes after the
// stream's duplicate window, which the stream stores again under a new
// sequence as if it were new.
//
// Guarantees (given that a stored message is applied within half the
// duplicate window, which the sequencer's lag alerts watch by far tighter):
// - A message the stream just stored as new, whose number the channel had
//   already applied before it was published (`appliedThrough`, read first),
//   is found out: `earlierCopy` returns the first message stored under that
//   number (what the sequencer applied), so the caller can answer duplicate
//   or conflict instead of `accepted`. The applied number must be read
//   before publishing: read after, it may already count the message itself.
// - Why half the window is enough: the stream did not deduplicate, so no
//   copy was stored within the window; an earlier copy was stored before it
//   and applied before half of it had passed. A channel's applied number read
//   less than half a window ago therefore already covers that copy.
// - Costs: a map lookup for a channel seen within half a window; one state
//   read when it was not (at most one in flight per channel); a scan of the
//   channel's stored messages only for a real resend of an applied number.
//   Channels remembered are bounded (least recently used forgotten first).
//
// A number still waiting behind a gap (stored, not applied) is not covered:
// its resend after the window is stored again, and the sequencer keeps the
// first (README, "What a 2xx means").

/** What is stored under a number: its stream sequence and the message as stored (parsed JSON). */
export interface StoredUnder {
  seq: number;
  message: unknown;
}

/** The port ingest reads stored numbers through (internal/nats/stored-numbers.ts implements it on NATS). */
export interface StoredNumbers {
  /** Highest number the channel has applied; every number at or below it is stored. 0 when none. */
  appliedThrough(channel: string): Promise<number>;
  /** The first message stored under `messageNumber` at a sequence below `beforeSeq`, if the stream still holds one. */
  firstStored(channel: string, messageNumber: number, beforeSeq: number): Promise<StoredUnder | undefined>;
  /** Removes the copy at `seq` (one the caller stored and will not let count). */
  dropCopy(seq: number): Promise<void>;
}

export interface ResendCheckSettings {
  /** Most channels remembered. */
  maxChannels: number;
  now?: () => number;
}

/** Where stored numbers are read, attached once NATS is reachable (nothing is stored before). */
export interface ResendSource {
  numbers: StoredNumbers;
  /** The stream's duplicate window; a channel's applied number is re-read once older than half of it. */
  duplicateWindowMs: number;
}

export const DEFAULT_MAX_CHANNELS = 100_000;

interface Known {
  through: number;
  readAt: number;
}

export type EarlierCopy =
  /** The number was applied, and this is what is stored under it. */
  | { kind: "stored"; stored: StoredUnder }
  /** The number was applied but the stream no longer holds its message (retention). */
  | { kind: "expired" };

export class ResendCheck {
  private readonly known = new Map<string, Known>();
  private readonly reading = new Map<string, Promise<number>>();
  private readonly now: () => number;
  private source: ResendSource | undefined;

  constructor(private readonly settings: ResendCheckSettings = { maxChannels: DEFAULT_MAX_CHANNELS }) {
    this.now = settings.now ?? Date.now;
  }

  attach(source: ResendSource): void {
    this.source = source;
  }

  /**
   * The channel's applied number, to be read BEFORE a message is published:
   * a value read after could already count that very message. Rejects when
   * NATS cannot answer.
   */
  async appliedThrough(channel: string): Promise<number> {
    return await this.readThrough(this.attached(), channel);
  }

  /**
   * For a message the stream stored as new at `seq` whose number was applied
   * before it was published (`appliedThrough`, read before): what was stored
   * under that number first.
   */
  async earlierCopy(channel: string, messageNumber: number, seq: number): Promise<EarlierCopy> {
    const stored = await this.attached().numbers.firstStored(channel, messageNumber, seq);
    return stored === undefined ? { kind: "expired" } : { kind: "stored", stored };
  }

  dropCopy(seq: number): Promise<void> {
    return this.attached().numbers.dropCopy(seq);
  }

  /** How many channels are remembered (for tests and a gauge). */
  get size(): number {
    return this.known.size;
  }

  private attached(): ResendSource {
    if (this.source === undefined) throw new Error("stored numbers are not readable yet (not connected to NATS)");
    return this.source;
  }

  private async readThrough(source: ResendSource, channel: string): Promise<number> {
    const now = this.now();
    const known = this.known.get(channel);
    if (known !== undefined && now - known.readAt < source.duplicateWindowMs / 2) {
      // Most recently used last: re-insert.
      this.known.delete(channel);
      this.known.set(channel, known);
      return known.through;
    }
    let read = this.reading.get(channel);
    if (read === undefined) {
      read = source.numbers.appliedThrough(channel).finally(() => this.reading.delete(channel));
      this.reading.set(channel, read);
    }
    const through = await read;
    this.remember(channel, { through, readAt: now });
    return through;
  }

  private remember(channel: string, known: Known): void {
    this.known.delete(channel);
    this.known.set(channel, known);
    if (this.known.size > this.settings.maxChannels) {
      const oldest = this.known.keys().next().value as string;
      this.known.delete(oldest);
    }
  }
}
