// Per-channel sequencing as a pure function: the one production runs (the
// sequencer's actors, a skipped gap, the API's history), on a batch of one
// channel's messages at once. Never mutates `state`.
//
// For each message in batch order:
// - numbered at or below lastApplied, or already pending: duplicate, nothing changes;
// - numbered lastApplied + 1: applied, followed by every pending message it
//   makes contiguous;
// - numbered higher: buffered, unless the buffer is full or `admit` refuses
//   it (overflow: the caller must keep it recoverable another way).
//
// The result is exactly that of taking the messages one at a time in order
// (same final state, same outcome per message, however a run of messages is
// cut into batches): sequence-batch.test.ts holds it to the message-by-message
// model in reference-sequencing.fixture.ts, whose own property tests say any
// arrival order with any duplicates gives the state of applying in order. The
// pending buffer is copied once per batch instead of once per buffered
// message: a channel with thousands of messages behind a gap stays linear in
// the batch, not quadratic.

import type { RocketMessage } from "./message.js";
import { apply } from "./rocket.js";
import { SequenceOutcome, type ChannelState } from "./sequencing.js";

export interface BatchOptions {
  /** Most messages a channel may hold ahead of a gap. */
  maxPending: number;
  /**
   * Asked before a message is buffered, after the count limit passed; false
   * makes it overflow instead (a caller's extra limit, such as bytes).
   */
  admit?: (message: RocketMessage) => boolean;
}

export interface BatchResult {
  state: ChannelState;
  /** One per message, in batch order. */
  outcomes: SequenceOutcome[];
  /** True when `state` differs from the input (something applied or buffered). */
  changed: boolean;
}

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

export function sequenceBatch(state: ChannelState, messages: readonly RocketMessage[], options: BatchOptions): BatchResult {
  const { maxPending, admit } = options;
  let rocket = state.rocket;
  let lastApplied = state.lastApplied;
  // Working copy of pending, made on the first change; `start` skips the released front.
  let pending = state.pending;
  let copied = false;
  let start = 0;
  let changed = false;
  const outcomes = new Array<SequenceOutcome>(messages.length);

  for (let i = 0; i < messages.length; i += 1) {
    const message = messages[i]!;
    const n = message.metadata.messageNumber;
    if (n <= lastApplied) {
      outcomes[i] = SequenceOutcome.Duplicate;
      continue;
    }
    const at = lowerBound(pending, n, start);
    if (pending[at]?.metadata.messageNumber === n) {
      outcomes[i] = SequenceOutcome.Duplicate;
      continue;
    }
    if (n > lastApplied + 1) {
      if (pending.length - start >= maxPending || (admit !== undefined && !admit(message))) {
        outcomes[i] = SequenceOutcome.Overflow;
        continue;
      }
      if (!copied) {
        pending = pending.slice();
        copied = true;
      }
      pending.splice(at, 0, message);
      outcomes[i] = SequenceOutcome.Buffered;
      changed = true;
      continue;
    }
    rocket = apply(rocket, message);
    lastApplied = n;
    while (start < pending.length && pending[start]!.metadata.messageNumber === lastApplied + 1) {
      rocket = apply(rocket, pending[start]!);
      lastApplied += 1;
      start += 1;
    }
    outcomes[i] = SequenceOutcome.Applied;
    changed = true;
  }

  if (!changed) return { state, outcomes, changed };
  return { state: { rocket, lastApplied, pending: start === 0 ? pending : pending.slice(start) }, outcomes, changed };
}
