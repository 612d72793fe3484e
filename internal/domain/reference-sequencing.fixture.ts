// The reference model of sequencing, for tests only: one message at a time,
// written for plain obviousness rather than speed (it copies the pending
// buffer on every buffered message). Production runs `sequenceBatch`
// (sequence-batch.ts); sequence-batch.test.ts holds it to exactly this
// model's state and outcomes, and sequencing.test.ts holds this model to the
// property that matters (any arrival order with any duplicates gives the
// state of applying the messages in order). Never built: tsconfig.build.json
// leaves *.fixture.ts out.

import type { RocketMessage } from "./message.js";
import { apply } from "./rocket.js";
import { lowerBound, type BatchOptions } from "./sequence-batch.js";
import { SequenceOutcome, type ChannelState } from "./sequencing.js";

export type ReferenceStep =
  | { outcome: typeof SequenceOutcome.Applied; state: ChannelState; applied: RocketMessage[] }
  | { outcome: typeof SequenceOutcome.Buffered | typeof SequenceOutcome.Duplicate | typeof SequenceOutcome.Overflow; state: ChannelState };

const unbounded: Pick<BatchOptions, "maxPending"> = { maxPending: Number.POSITIVE_INFINITY };

/**
 * Takes one incoming message for this channel. Never mutates `state`.
 * - numbered at or below lastApplied, or already pending: duplicate, state unchanged;
 * - numbered lastApplied + 1: applied, followed by every pending message it
 *   makes contiguous (all returned in `applied`, in order);
 * - numbered higher: buffered, unless the buffer is full (overflow).
 */
export function referenceStep(state: ChannelState, msg: RocketMessage, options: Pick<BatchOptions, "maxPending"> = unbounded): ReferenceStep {
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
