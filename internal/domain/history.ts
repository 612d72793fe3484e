// A channel's history as the events stream holds it, and what each stored
// message did, computed by the domain's own sequencing (`sequenceBatch`),
// taking the messages one at a time in the order the stream received them.
//
// Guarantees:
// - With every message the channel applied still stored (`complete`), the
//   state after any prefix of the history is exactly the state the sequencer
//   holds after those messages: sequencing depends only on which numbers were
//   received, never on their order or repeats, and `sequenceBatch` is the
//   sequencer's own function.
// - With a stored history that lacks some applied number (the stream's
//   retention removed it, or someone purged it), nothing that depends on the
//   missing message is computed: outcomes and speeds are unknown (null) and
//   every state query says which numbers are missing instead of answering.
// - Numbers the rocket gave up (its `skipped` ranges, as its state records
//   them) are not missing: the fold gives them up at the moment the state
//   says they were (its messages received after that are `skipped`, any
//   received before never applied), so a rocket that skipped keeps a
//   complete history and answers `?at=` and `?asOf=` past the skip.
//
// Receive times are RFC 3339 in UTC with nine fraction digits, so that
// comparing them as text compares the instants.

import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";
import { sequenceBatch, type BatchOptions } from "./sequence-batch.js";
import { emptyChannelState, SequenceOutcome, type ChannelState, type SkippedRange } from "./sequencing.js";

/** One message as the events stream holds it. */
export interface StoredMessage {
  /** Stream sequence: the order the stream received messages in. */
  seq: number;
  /** When the stream stored it: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. */
  receivedAt: string;
  message: RocketMessage;
}

/** Reads a channel's stored messages (the port the events stream's adapter implements). */
export interface ChannelHistorySource {
  read(channel: string): Promise<StoredHistory>;
}

/** The channel holds more messages than one read may return. */
export class HistoryTooLongError extends Error {
  override name = "HistoryTooLongError";
  constructor(
    readonly channel: string,
    readonly stored: number,
    readonly limit: number,
  ) {
    super(`the stream holds ${stored} messages for channel ${channel}, more than the ${limit} one read may return`);
  }
}

export interface StoredHistory {
  /** Every message the stream holds for the channel, in stream order. */
  messages: StoredMessage[];
  /** Stored messages on the channel's subject that are not valid rocket messages (the sequencer rejected them). */
  rejected: number;
  /** Receive time of the oldest message the stream holds for any channel (what retention has kept); null when empty. */
  heldSince: string | null;
}

/** What a stored message did when the sequencer met it: never `overflow`, which only delays a message; `skipped` when its number was given up. */
export type HistoryOutcome = Exclude<SequenceOutcome, typeof SequenceOutcome.Overflow> | "skipped";

/** The history is folded without a bound on what waits behind a gap, so no message overflows. */
const UNBOUNDED: BatchOptions = { maxPending: Number.POSITIVE_INFINITY };

export interface HistoryEntry extends StoredMessage {
  /** Null when the history is incomplete: what a message did depends on the ones that are gone. */
  outcome: HistoryOutcome | null;
  /** The rocket's speed right after this message number was applied; null while it waits, or when unknown. */
  speedAfter: number | null;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The instant an RFC 3339 time denotes, written `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
 * in UTC with every nanosecond digit kept: two such strings compare like
 * their instants. Undefined for text that is not an RFC 3339 time. (A leap
 * second 60 counts as second 59 with its own fraction.)
 */
export function utcInstant(time: string): string | undefined {
  const m = RFC3339.exec(time);
  if (!m) return undefined;
  const offset = m[4] === "z" ? "Z" : m[4]!;
  const seconds = m[2]!.endsWith(":60") ? `${m[2]!.slice(0, 6)}59` : m[2]!;
  const ms = Date.parse(`${m[1]}T${seconds}${offset}`);
  if (Number.isNaN(ms)) return undefined;
  const iso = new Date(ms).toISOString();
  if (iso.length !== 24) return undefined;
  return `${iso.slice(0, 19)}.${(m[3] ?? "").padEnd(9, "0")}Z`;
}

/** An inclusive run of message numbers. */
export interface NumberRange {
  from: number;
  to: number;
}

export interface FoldedHistory {
  /** In stream order. */
  entries: HistoryEntry[];
  /** True when the stream holds every number the channel applied. */
  complete: boolean;
  /** Applied numbers the stream no longer holds. */
  missing: NumberRange[];
  /** The gap the channel waits on: numbers not received between the last applied and the highest received. */
  waitingFor: NumberRange[];
  /** The state after the whole stored history (meaningful only when complete). */
  state: ChannelState;
}

/** Runs of consecutive numbers in `sorted` (ascending, distinct). */
export function rangesOf(sorted: readonly number[]): NumberRange[] {
  const out: NumberRange[] = [];
  for (const n of sorted) {
    const last = out[out.length - 1];
    if (last && last.to === n - 1) last.to = n;
    else out.push({ from: n, to: n });
  }
  return out;
}

/** Numbers 1..through that `held` lacks and `givenUp` does not excuse, as ranges. */
function missingUpTo(through: number, held: ReadonlySet<number>, givenUp: ReadonlySet<number>): NumberRange[] {
  const out: NumberRange[] = [];
  let open: NumberRange | undefined;
  for (let n = 1; n <= through; n += 1) {
    if (held.has(n) || givenUp.has(n)) {
      open = undefined;
    } else if (open) {
      open.to = n;
    } else {
      open = { from: n, to: n };
      out.push(open);
    }
  }
  return out;
}

/**
 * Folds the stored history. `appliedThrough` is the highest number the
 * channel is known to have applied (the live state's lastMessageNumber, 0 when
 * unknown): every number up to it must be stored, or given up in `skipped`
 * (the live state's ranges), for the history to be complete.
 */
export function foldHistory(messages: readonly StoredMessage[], appliedThrough: number, skipped: readonly SkippedRange[] = []): FoldedHistory {
  const held = new Set<number>();
  for (const m of messages) held.add(m.message.metadata.messageNumber);
  const givenUp = givenUpNumbers(skipped);
  const missing = missingUpTo(appliedThrough, held, givenUp);
  const complete = missing.length === 0;
  const entries: HistoryEntry[] = [];
  const speedAfter = new Map<number, number>();
  const fold = new SkippingFold(skipped, (m, rocket) => speedAfter.set(m.metadata.messageNumber, rocket.speed));
  for (const stored of messages) {
    const outcome = fold.take(stored);
    entries.push({ ...stored, outcome: complete ? outcome : null, speedAfter: null });
  }
  // Every range the state records was given up by now (a clock's skew can put its time after the last message's).
  fold.skipThrough();
  const state = fold.state;
  if (complete) {
    for (const e of entries) e.speedAfter = e.outcome === "skipped" ? null : (speedAfter.get(e.message.metadata.messageNumber) ?? null);
    return { entries, complete, missing, waitingFor: gapOf(state), state };
  }
  // The fold's own state lacks what the stream lost; above appliedThrough the stored numbers tell the gap.
  const above = [...held].filter((n) => n > appliedThrough).sort((a, b) => a - b);
  const waitingFor = gapBetween(appliedThrough, above);
  return { entries, complete, missing, waitingFor, state };
}

function givenUpNumbers(skipped: readonly SkippedRange[]): Set<number> {
  const out = new Set<number>();
  for (const r of skipped) for (let n = r.from; n <= r.to; n += 1) out.add(n);
  return out;
}

/**
 * Sequencing in stream order with the rocket's skips taken where they
 * happened: a range is given up before the first message received after its
 * time (its waiting messages then applied), and a number it gave up is never
 * applied, whenever its message arrived.
 */
class SkippingFold {
  state: ChannelState = emptyChannelState();
  private readonly pendingSkips: SkippedRange[];
  private readonly givenUp: Set<number>;

  constructor(
    skipped: readonly SkippedRange[],
    private readonly onApplied: (message: RocketMessage, rocket: Rocket) => void = () => undefined,
  ) {
    this.pendingSkips = [...skipped].sort((a, b) => a.from - b.from);
    this.givenUp = givenUpNumbers(skipped);
  }

  take(stored: StoredMessage): HistoryOutcome {
    this.skipThrough(stored.receivedAt);
    const n = stored.message.metadata.messageNumber;
    if (this.givenUp.has(n)) return "skipped";
    const r = sequenceBatch(this.state, [stored.message], UNBOUNDED);
    const outcome = r.outcomes[0]!;
    if (outcome === SequenceOutcome.Overflow) throw new Error("sequencing without a bound overflowed");
    if (outcome === SequenceOutcome.Applied) this.applied([stored.message, ...this.state.pending.slice(0, r.state.lastApplied - n)]);
    this.state = r.state;
    return outcome;
  }

  /** Gives up every range recorded at or before `receivedAt` (all of them when undefined) that the fold has reached. */
  skipThrough(receivedAt?: string): void {
    while (this.pendingSkips.length > 0) {
      const range = this.pendingSkips[0]!;
      const at = utcInstant(range.at) ?? range.at;
      if (receivedAt !== undefined && at > receivedAt) return;
      if (range.from > this.state.lastApplied + 1) return;
      this.pendingSkips.shift();
      if (range.to <= this.state.lastApplied) continue;
      const from: ChannelState = { rocket: this.state.rocket, lastApplied: range.to, pending: [] };
      const waiting = this.state.pending.filter((m) => m.metadata.messageNumber > range.to);
      const r = sequenceBatch(from, waiting, UNBOUNDED);
      this.applied(waiting.slice(0, r.state.lastApplied - range.to));
      this.state = r.state;
    }
  }

  private applied(messages: readonly RocketMessage[]): void {
    let rocket = this.state.rocket;
    for (const m of messages) {
      rocket = apply(rocket, m);
      this.onApplied(m, rocket);
    }
  }
}

/** The numbers a channel waits for: between its last applied number and its highest buffered one. */
export function gapOf(state: ChannelState): NumberRange[] {
  return gapBetween(state.lastApplied, state.pending.map((m) => m.metadata.messageNumber));
}

/** Numbers above `lastApplied` and below the highest of `buffered` (ascending) that `buffered` lacks. */
function gapBetween(lastApplied: number, buffered: readonly number[]): NumberRange[] {
  const out: NumberRange[] = [];
  let expected = lastApplied + 1;
  for (const n of buffered) {
    if (n > expected) out.push({ from: expected, to: n - 1 });
    expected = Math.max(expected, n + 1);
  }
  return out;
}

export type PointInTime =
  | { ok: true; state: ChannelState }
  /** The stream no longer holds these applied numbers, and the answer depends on them. */
  | { ok: false; reason: "truncated"; missing: NumberRange[] }
  /** The channel has not received these numbers (yet): the rocket never reached that point. */
  | { ok: false; reason: "not-received"; missing: NumberRange[] };

/**
 * The rocket right after message `n`: messages 1..n applied in number order
 * (their first stored copies, the ones the sequencer kept). Pending is empty:
 * as of a message, nothing after it exists yet.
 */
export function stateAtMessage(folded: FoldedHistory, n: number, skipped: readonly SkippedRange[] = []): PointInTime {
  const givenUp = givenUpNumbers(skipped);
  const firstCopy = new Map<number, RocketMessage>();
  for (const e of folded.entries) {
    const k = e.message.metadata.messageNumber;
    if (k <= n && !firstCopy.has(k)) firstCopy.set(k, e.message);
  }
  const absent: number[] = [];
  for (let k = 1; k <= n; k += 1) if (!firstCopy.has(k) && !givenUp.has(k)) absent.push(k);
  if (absent.length > 0) {
    const truncated = folded.missing.some((r) => r.from <= n);
    return { ok: false, reason: truncated ? "truncated" : "not-received", missing: rangesOf(absent) };
  }
  // A given-up number is no message: the rocket right after it is the one before it.
  if (givenUp.has(n)) return { ok: false, reason: "not-received", missing: [{ from: n, to: n }] };
  let rocket: Rocket | null = null;
  for (let k = 1; k <= n; k += 1) if (!givenUp.has(k)) rocket = apply(rocket, firstCopy.get(k)!);
  return { ok: true, state: { rocket, lastApplied: n, pending: [] } };
}

/**
 * The state the sequencer held once it had every message the stream had
 * received by `receivedAt` (same text form as StoredMessage.receivedAt):
 * the fold of that prefix of the history. Refused when the history is
 * incomplete, since every prefix then lacks what the stream lost.
 */
export function stateAsOf(folded: FoldedHistory, receivedAt: string, skipped: readonly SkippedRange[] = []): PointInTime {
  if (!folded.complete) return { ok: false, reason: "truncated", missing: folded.missing };
  // Filtered rather than cut at the first later message: receive times follow
  // stream order, but nothing here needs to rely on it.
  const fold = new SkippingFold(skipped.filter((r) => (utcInstant(r.at) ?? r.at) <= receivedAt));
  for (const e of folded.entries) if (e.receivedAt <= receivedAt) fold.take(e);
  fold.skipThrough(receivedAt);
  return { ok: true, state: fold.state };
}
