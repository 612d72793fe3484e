// What per-channel sequencing works on and says: a channel's state, and what
// sequencing did with one message. The sequencing itself, the one function
// the sequencer (and the history, and a skipped gap) runs, is `sequenceBatch`
// in sequence-batch.ts; reference-sequencing.fixture.ts holds the
// message-by-message model the tests hold it to.
//
// A channel's state is its rocket, the last applied message number, the
// messages that arrived ahead of a gap, and the record of a gap: where its
// messages wait in the events stream (`gap`) and which numbers an operator's
// policy gave up (`skipped`). Persisting exactly this value (and nothing
// else) is what makes the sequencer crash-safe: whatever was written holds
// or locates every message that was acknowledged, applied or waiting.

import type { RocketMessage } from "./message.js";
import type { Rocket } from "./rocket.js";

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

/** Why numbers were given up. */
export const SkipReason = {
  /** GAP_POLICY=skip: they had not arrived by the gap's deadline. */
  Deadline: "deadline",
  /** The stream's retention removed messages the gap held before they could be applied. */
  Retention: "retention",
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

/** Numbers from..to (inclusive) given up at `at` (RFC 3339, UTC), and why (absent in older states: deadline). */
export interface SkippedRange {
  from: number;
  to: number;
  at: string;
  reason?: SkipReason;
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
