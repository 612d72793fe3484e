// Sequencing a whole batch of one channel's messages at once.
//
// The result is exactly that of folding `sequence` over the batch in order
// (same final state, same outcome per message), but the pending buffer is
// copied once per batch instead of once per buffered message: a channel with
// thousands of messages behind a gap stays linear in the batch, not
// quadratic. Never mutates `state`.

import type { RocketMessage } from "./message.js";
import { apply } from "./rocket.js";
import { lowerBound, SequenceOutcome, type ChannelState, type SequenceOptions } from "./sequencing.js";

export interface BatchOptions extends SequenceOptions {
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
