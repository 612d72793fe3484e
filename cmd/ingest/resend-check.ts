// Recognises a resend the stream cannot: one that comes after the stream's
// duplicate window, which the stream would store again under a new sequence
// as if it were new (and the sequencer would then ignore).
//
// Guarantees (given that a stored message is applied within half the
// duplicate window, which the sequencer's lag alerts watch far tighter):
// - Before a message is published, `priorCopy` says whether its number was
//   already applied, and if so returns the message first stored under it
//   (what the sequencer applied): the caller answers duplicate or conflict
//   and publishes nothing. Otherwise (undefined) the message is published,
//   and a resend inside the window is the stream's to deduplicate.
// - Why half the window is enough: a copy stored more than a window ago was
//   applied before half of it had passed, and a channel's applied number read
//   less than half a window ago therefore covers it.
// - Costs: a map lookup for a channel seen within half a window; one state
//   read when it was not (one in flight per channel); a read of the channel's
//   stored messages only for a number at or below the applied one (a late
//   resend, or a retry right after a refresh), at most `maxScans` at once and
//   remembered for the next retry. Channels and copies remembered are
//   bounded (least recently used forgotten first).
// - When it cannot say (NATS unreachable, scans saturated, a channel too long
//   to read) it says nothing: the message is published as before, counted.
//
// A number still waiting behind a gap (stored, not applied) is not covered:
// its resend after the window is stored again, and the sequencer keeps the
// first (README, "What a 2xx means").

import type { RocketMessage } from "../../internal/domain/message.js";

/** What is stored under a number: its stream sequence and the message. */
export interface StoredUnder {
  seq: number;
  message: RocketMessage;
}

/** The port ingest reads stored numbers through (internal/nats/stored-numbers.ts implements it on NATS). */
export interface StoredNumbers {
  /** Highest number the channel has applied; every number at or below it is stored. 0 when none. */
  appliedThrough(channel: string): Promise<number>;
  /** The first message stored under `messageNumber`, if the stream still holds one. */
  firstStored(channel: string, messageNumber: number): Promise<StoredUnder | undefined>;
}

export interface ResendCheckSettings {
  /** Most channels whose applied number is remembered. */
  maxChannels: number;
  /** Most reads of stored messages at once; past it a message is published unchecked. */
  maxScans: number;
  now?: () => number;
}

/** Where stored numbers are read, attached once NATS is reachable (nothing is stored before). */
export interface ResendSource {
  numbers: StoredNumbers;
  /** The stream's duplicate window; a channel's applied number is re-read once older than half of it. */
  duplicateWindowMs: number;
}

export const DEFAULT_RESEND_SETTINGS: ResendCheckSettings = { maxChannels: 100_000, maxScans: 4 };

/** Copies found by a scan, remembered for the client's next retry. */
const MAX_REMEMBERED_COPIES = 1024;

export type PriorCopy =
  /** The number was applied, and this is what is stored under it. */
  | { kind: "stored"; stored: StoredUnder }
  /** The number was applied but the stream no longer holds its message (retention). */
  | { kind: "expired" };

/** Why a message went out unchecked. */
export type UncheckedReason = "unavailable" | "busy";

export class ResendUncheckedError extends Error {
  override name = "ResendUncheckedError";
  constructor(
    readonly reason: UncheckedReason,
    options?: ErrorOptions,
  ) {
    super(reason === "busy" ? "too many stored-message reads at once" : "stored numbers could not be read", options);
  }
}

interface Known {
  through: number;
  readAt: number;
}

export class ResendCheck {
  private readonly known = new Map<string, Known>();
  private readonly reading = new Map<string, Promise<number>>();
  private readonly copies = new Map<string, StoredUnder>();
  private readonly now: () => number;
  private source: ResendSource | undefined;
  private scans = 0;

  constructor(private readonly settings: ResendCheckSettings = DEFAULT_RESEND_SETTINGS) {
    this.now = settings.now ?? Date.now;
  }

  attach(source: ResendSource): void {
    this.source = source;
  }

  /**
   * Whether the message's number was applied, and what is stored under it;
   * undefined when it was not (publish it). Rejects with ResendUncheckedError
   * when it cannot say.
   */
  async priorCopy(message: RocketMessage): Promise<PriorCopy | undefined> {
    const { channel, messageNumber } = message.metadata;
    const source = this.source;
    if (source === undefined) throw new ResendUncheckedError("unavailable");
    let through: number;
    try {
      through = await this.readThrough(source, channel);
    } catch (err) {
      throw new ResendUncheckedError("unavailable", { cause: err });
    }
    if (messageNumber > through) return undefined;
    const key = `${channel}\n${messageNumber}`;
    const remembered = this.copies.get(key);
    if (remembered !== undefined) return { kind: "stored", stored: remembered };
    if (this.scans >= this.settings.maxScans) throw new ResendUncheckedError("busy");
    this.scans += 1;
    let stored: StoredUnder | undefined;
    try {
      stored = await source.numbers.firstStored(channel, messageNumber);
    } catch (err) {
      throw new ResendUncheckedError("unavailable", { cause: err });
    } finally {
      this.scans -= 1;
    }
    if (stored === undefined) return { kind: "expired" };
    remember(this.copies, key, stored, MAX_REMEMBERED_COPIES);
    return { kind: "stored", stored };
  }

  /**
   * The channel's applied number as last read (by priorCopy), without a
   * request; undefined when not read, or read too long ago.
   */
  appliedThrough(channel: string): number | undefined {
    const known = this.known.get(channel);
    const source = this.source;
    if (known === undefined || source === undefined || this.now() - known.readAt >= source.duplicateWindowMs / 2) return undefined;
    return known.through;
  }

  /** How many channels are remembered (tests). */
  get size(): number {
    return this.known.size;
  }

  private async readThrough(source: ResendSource, channel: string): Promise<number> {
    const now = this.now();
    const known = this.known.get(channel);
    if (known !== undefined && now - known.readAt < source.duplicateWindowMs / 2) {
      remember(this.known, channel, known, this.settings.maxChannels);
      return known.through;
    }
    let read = this.reading.get(channel);
    if (read === undefined) {
      read = source.numbers.appliedThrough(channel).finally(() => this.reading.delete(channel));
      this.reading.set(channel, read);
    }
    const through = await read;
    remember(this.known, channel, { through, readAt: now }, this.settings.maxChannels);
    return through;
  }
}

/** Sets `key` as the most recently used entry, forgetting the least recently used past `max`. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}
