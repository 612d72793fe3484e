// Per-channel sequencing as a pure function.
//
// A channel's state is its rocket, the last applied message number, the
// messages that arrived ahead of a gap, and the record of a gap: where its
// messages wait in the events stream (`gap`) and which numbers an operator's
// policy gave up (`skipped`). Persisting exactly this value (and nothing
// else) is what makes the sequencer crash-safe: whatever was written holds
// or locates every message that was acknowledged, applied or waiting.

import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";

export interface ChannelState {
  rocket: Rocket | null;
  /** Highest messageNumber applied; 0 before the launch. */
  lastApplied: number;
  /**
   * Messages numbered above lastApplied + 1, sorted by number, no two alike.
   * Held inline only by states written before gaps were parked in the stream
   * (format 1); the sequencer never adds to it, it only drains it.
   */
  pending: RocketMessage[];
  /** Where the messages waiting behind this channel's gap are parked; absent when it has none. */
  gap?: ParkedGap;
  /** The most recent ranges given up by the gap policy, oldest first (at most MAX_SKIPPED_RECORDED). */
  skipped?: SkippedRange[];
}

/**
 * Messages waiting behind a gap stay in the events stream, on the channel's
 * subject: the state only says from where to read them back.
 */
export interface ParkedGap {
  /**
   * Every message of this channel with a stream sequence below this one that
   * was ever acknowledged is applied (or a duplicate): the unapplied ones
   * are re-read from here. Null when nothing is parked in the stream (the
   * waiting messages are all inline in `pending`).
   */
  fromSeq: number | null;
  /** Deliveries parked since the gap opened; an upper bound (a redelivered message may count twice). */
  parked: number;
  /** When the gap was first recorded (RFC 3339, UTC). */
  since: string;
}

/** Numbers from..to (inclusive) that never arrived and were given up at `at` (RFC 3339, UTC). */
export interface SkippedRange {
  from: number;
  to: number;
  at: string;
}

/** A rocket keeps the record of this many skipped ranges (the most recent). */
export const MAX_SKIPPED_RECORDED = 10;

export const emptyChannelState = (): ChannelState => ({ rocket: null, lastApplied: 0, pending: [] });

/** What sequencing did with one message of a channel. */
export const SequenceOutcome = {
  Applied: "applied",
  Buffered: "buffered",
  Duplicate: "duplicate",
  /** Not taken into the buffer (full, or refused by the caller): the caller must keep it recoverable another way (the sequencer leaves it parked in the stream), never drop it. */
  Overflow: "overflow",
} as const;
export type SequenceOutcome = (typeof SequenceOutcome)[keyof typeof SequenceOutcome];

export type SequenceResult =
  | { outcome: typeof SequenceOutcome.Applied; state: ChannelState; applied: RocketMessage[] }
  | { outcome: typeof SequenceOutcome.Buffered | typeof SequenceOutcome.Duplicate | typeof SequenceOutcome.Overflow; state: ChannelState };

export interface SequenceOptions {
  /** Most messages a channel may hold ahead of a gap. */
  maxPending: number;
}

const unbounded: SequenceOptions = { maxPending: Number.POSITIVE_INFINITY };

/** Index of the first message in pending[from..] numbered >= n (binary search). */
export function lowerBound(pending: readonly RocketMessage[], n: number, from = 0): number {
  let lo = from;
  let hi = pending.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pending[mid]!.metadata.messageNumber < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Takes one incoming message for this channel. Never mutates `state`.
 * - numbered at or below lastApplied, or already pending: duplicate, state unchanged;
 * - numbered lastApplied + 1: applied, followed by every pending message it
 *   makes contiguous (all returned in `applied`, in order);
 * - numbered higher: buffered, unless the buffer is full (overflow).
 */
export function sequence(state: ChannelState, msg: RocketMessage, options: SequenceOptions = unbounded): SequenceResult {
  const n = msg.metadata.messageNumber;
  if (n <= state.lastApplied) return { outcome: SequenceOutcome.Duplicate, state };
  const at = lowerBound(state.pending, n);
  if (state.pending[at]?.metadata.messageNumber === n) return { outcome: SequenceOutcome.Duplicate, state };

  if (n > state.lastApplied + 1) {
    if (state.pending.length >= options.maxPending) return { outcome: SequenceOutcome.Overflow, state };
    const pending = state.pending.slice();
    pending.splice(at, 0, msg);
    return { outcome: SequenceOutcome.Buffered, state: { ...state, pending } };
  }

  const applied: RocketMessage[] = [msg];
  let rocket = apply(state.rocket, msg);
  let lastApplied = n;
  let released = 0;
  for (const next of state.pending) {
    if (next.metadata.messageNumber !== lastApplied + 1) break;
    rocket = apply(rocket, next);
    lastApplied += 1;
    applied.push(next);
    released += 1;
  }
  return {
    outcome: SequenceOutcome.Applied,
    applied,
    state: { rocket, lastApplied, pending: released === 0 ? state.pending : state.pending.slice(released) },
  };
}
