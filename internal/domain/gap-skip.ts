// Giving up a gap: the operator's policy (GAP_POLICY=skip) decided that the
// numbers between the last applied message and the first one waiting will
// not come. Pure, like sequencing.
//
// Guarantees:
// - Only numbers that were never applied and are not waiting are given up:
//   lastApplied + 1 .. (lowest waiting number - 1), recorded with the time,
//   so the rocket says what it misses instead of silently jumping.
// - The first waiting message is applied at once, and every one it makes
//   contiguous after it, so the rocket's lastMessageNumber equals lastApplied
//   as in every other state.
// - A channel without a launched rocket cannot skip (no message but the
//   launch can start a rocket): skipGap returns undefined and the caller
//   gives the channel up as a whole instead.

import { sequenceBatch } from "./sequence-batch.js";
import { MAX_SKIPPED_RECORDED, SequenceOutcome, type ChannelState, type SkippedRange } from "./sequencing.js";

export interface SkipResult {
  state: ChannelState;
  skipped: SkippedRange;
  /** Messages applied after the skip, in order. */
  applied: number;
}

/**
 * `state.pending` must hold every waiting message known (sorted, unique, all
 * above lastApplied + 1); `at` is the time recorded with the skipped range.
 */
export function skipGap(state: ChannelState, at: string): SkipResult | undefined {
  const lowest = state.pending[0];
  if (lowest === undefined || state.rocket === null) return undefined;
  const n = lowest.metadata.messageNumber;
  if (n <= state.lastApplied + 1) return undefined;
  const skipped: SkippedRange = { from: state.lastApplied + 1, to: n - 1, at };
  const from: ChannelState = { rocket: state.rocket, lastApplied: n - 1, pending: [] };
  const result = sequenceBatch(from, state.pending, { maxPending: Number.POSITIVE_INFINITY });
  const applied = result.outcomes.filter((o) => o === SequenceOutcome.Applied).length;
  const history = [...(state.skipped ?? []), skipped].slice(-MAX_SKIPPED_RECORDED);
  // The rocket's lastMessageNumber already follows the applied messages; the rest stay waiting.
  const next: ChannelState = { ...result.state, skipped: history };
  if (state.gap !== undefined) next.gap = state.gap;
  return { state: next, skipped, applied };
}
