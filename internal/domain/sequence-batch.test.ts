import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { validateMessage, type RocketMessage } from "./message.js";
import { sequenceBatch } from "./sequence-batch.js";
import { referenceStep } from "./reference-sequencing.fixture.js";
import { emptyChannelState, SequenceOutcome, type ChannelState } from "./sequencing.js";

/** `count` valid messages of one channel, in order, with speeds drawn from `seed`. */
function rocketMessages(channel: string, count: number, seed: number): RocketMessage[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    const metadata = { channel, messageNumber: n, messageTime: "2025-04-02T09:21:50.458989221+02:00" };
    const raw =
      n === 1
        ? { metadata: { ...metadata, messageType: "RocketLaunched" }, message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } }
        : { metadata: { ...metadata, messageType: "RocketSpeedIncreased" }, message: { by: Math.abs((seed * 31 + n * 17) % 1000) } };
    const v = validateMessage(raw);
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    return v.value;
  });
}

/** The reference model (`referenceStep`) folded message by message, with `admit` applied to what it buffers. */
function fold(state: ChannelState, messages: RocketMessage[], maxPending: number, admit: (m: RocketMessage) => boolean) {
  const outcomes: SequenceOutcome[] = [];
  for (const m of messages) {
    const r = referenceStep(state, m, { maxPending });
    if (r.outcome === SequenceOutcome.Buffered && !admit(m)) {
      outcomes.push(SequenceOutcome.Overflow);
      continue;
    }
    outcomes.push(r.outcome);
    state = r.state;
  }
  return { state, outcomes };
}

const scenario = fc.record({
  count: fc.integer({ min: 1, max: 40 }),
  seed: fc.integer(),
  order: fc.array(fc.nat(), { maxLength: 120 }),
  cuts: fc.array(fc.nat(), { maxLength: 10 }),
  maxPending: fc.integer({ min: 1, max: 50 }),
  rejectEvery: fc.integer({ min: 0, max: 7 }),
});

describe("sequenceBatch", () => {
  it("gives exactly the state and outcomes of folding the reference model over the same messages, however the batches are cut", () => {
    fc.assert(
      fc.property(scenario, ({ count, seed, order, cuts, maxPending, rejectEvery }) => {
        const messages = rocketMessages("batch-channel", count, seed);
        // Arrivals: every message at least once, plus picks (duplicates), in a scrambled order.
        const arrivals = [...messages, ...order.map((i) => messages[i % count]!)];
        order.forEach((o, i) => {
          const j = o % arrivals.length;
          const k = i % arrivals.length;
          [arrivals[j], arrivals[k]] = [arrivals[k]!, arrivals[j]!];
        });
        const admit = (m: RocketMessage) => rejectEvery === 0 || m.metadata.messageNumber % rejectEvery !== 0;
        const expected = fold(emptyChannelState(), arrivals, maxPending, admit);

        const bounds = [...new Set([0, ...cuts.map((c) => c % (arrivals.length + 1)), arrivals.length])].sort((a, b) => a - b);
        let state = emptyChannelState();
        const outcomes: SequenceOutcome[] = [];
        for (let i = 0; i + 1 < bounds.length; i += 1) {
          const before = JSON.stringify(state);
          const r = sequenceBatch(state, arrivals.slice(bounds[i], bounds[i + 1]), { maxPending, admit });
          expect(JSON.stringify(state)).toBe(before);
          expect(r.changed).toBe(r.outcomes.some((o) => o === SequenceOutcome.Applied || o === SequenceOutcome.Buffered));
          outcomes.push(...r.outcomes);
          state = r.state;
        }
        expect(outcomes).toEqual(expected.outcomes);
        expect(state).toEqual(expected.state);
      }),
      { numRuns: 300 },
    );
  });

  it("returns the very same state object when nothing changes", () => {
    const [first] = rocketMessages("same", 1, 1);
    const state = sequenceBatch(emptyChannelState(), [first!], { maxPending: 10 }).state;
    const again = sequenceBatch(state, [first!, first!], { maxPending: 10 });
    expect(again.state).toBe(state);
    expect(again.outcomes).toEqual([SequenceOutcome.Duplicate, SequenceOutcome.Duplicate]);
  });
});
