import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";
import { referenceStep } from "./reference-sequencing.fixture.js";
import { emptyChannelState, SequenceOutcome, type ChannelState } from "./sequencing.js";
import { channelMessages as channelMessagesOf, stepArb, stepTime, type Step } from "./channel-steps.fixture.js";

const CHANNEL = "c0ffee00-0000-4000-8000-000000000001";

const time = stepTime;
const channelMessages = (steps: Step[]) =>
  channelMessagesOf(steps, { channel: CHANNEL, launch: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } });

function inOrder(messages: RocketMessage[]): Rocket {
  return messages.reduce<Rocket | null>((rocket, m) => apply(rocket, m), null)!;
}

/** An arrival order: every message at least once, some several times, shuffled. */
const arrivalArb = fc
  .array(stepArb, { maxLength: 60 })
  .chain((steps) => {
    const messages = channelMessages(steps);
    return fc
      .tuple(
        fc.constant(messages),
        fc.array(fc.nat({ max: messages.length - 1 }), { maxLength: messages.length * 2 }),
      )
      .chain(([msgs, dupIdx]) => fc.tuple(fc.constant(msgs), fc.shuffledSubarray([...msgs, ...dupIdx.map((i) => msgs[i]!)], { minLength: msgs.length + dupIdx.length })));
  });

describe("the reference model of sequencing (referenceStep, one message at a time)", () => {
  it("any permutation with any duplicates yields the state of applying in order", () => {
    fc.assert(
      fc.property(arrivalArb, ([messages, arrivals]) => {
        let state = emptyChannelState();
        const applied: number[] = [];
        for (const m of arrivals) {
          const r = referenceStep(state, m);
          if (r.outcome === SequenceOutcome.Applied) applied.push(...r.applied.map((a) => a.metadata.messageNumber));
          state = r.state;
        }
        expect(state.rocket).toEqual(inOrder(messages));
        expect(state.lastApplied).toBe(messages.length);
        expect(state.pending).toEqual([]);
        // Each message applied exactly once, in order.
        expect(applied).toEqual(messages.map((m) => m.metadata.messageNumber));
      }),
      { numRuns: 300 },
    );
  });

  it("never loses a message: every distinct number seen is applied or pending, pending sorted and unique", () => {
    fc.assert(
      fc.property(arrivalArb, ([, arrivals]) => {
        let state: ChannelState = emptyChannelState();
        const seen = new Set<number>();
        for (const m of arrivals) {
          seen.add(m.metadata.messageNumber);
          state = referenceStep(state, m).state;
          const pending = state.pending.map((p) => p.metadata.messageNumber);
          for (const n of seen) expect(n <= state.lastApplied || pending.includes(n)).toBe(true);
          expect(pending).toEqual([...new Set(pending)].sort((a, b) => a - b));
          if (pending.length > 0) expect(pending[0]).toBeGreaterThan(state.lastApplied + 1);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("with a bounded buffer, overflowed messages redelivered later still give the exact state", () => {
    fc.assert(
      fc.property(arrivalArb, fc.integer({ min: 1, max: 5 }), ([messages, arrivals], maxPending) => {
        let state = emptyChannelState();
        let queue = arrivals;
        // Redeliver what overflowed, as a nak does, until nothing does.
        for (let round = 0; queue.length > 0; round++) {
          expect(round).toBeLessThan(messages.length + 2);
          const handedBack: RocketMessage[] = [];
          for (const m of queue) {
            const r = referenceStep(state, m, { maxPending });
            if (r.outcome === SequenceOutcome.Overflow) handedBack.push(m);
            expect(r.state.pending.length).toBeLessThanOrEqual(maxPending);
            state = r.state;
          }
          queue = handedBack;
        }
        expect(state.rocket).toEqual(inOrder(messages));
        expect(state.pending).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("buffers a message ahead of a gap and releases it when the gap fills", () => {
    const [m1, m2, m3] = channelMessages([{ kind: "up", by: 10 }, { kind: "down", by: 5 }]);
    let r = referenceStep(emptyChannelState(), m3!);
    expect(r.outcome).toBe(SequenceOutcome.Buffered);
    r = referenceStep(r.state, m2!);
    expect(r.outcome).toBe(SequenceOutcome.Buffered);
    expect(r.state.rocket).toBeNull();
    r = referenceStep(r.state, m1!);
    expect(r.outcome).toBe(SequenceOutcome.Applied);
    if (r.outcome === SequenceOutcome.Applied) expect(r.applied.map((m) => m.metadata.messageNumber)).toEqual([1, 2, 3]);
    expect(r.state.rocket?.speed).toBe(505);
  });

  it("drops a duplicate that arrives after the gap closed, and one already buffered", () => {
    const [m1, m2, m3] = channelMessages([{ kind: "up", by: 10 }, { kind: "up", by: 1 }]);
    let state = referenceStep(emptyChannelState(), m1!).state;
    state = referenceStep(state, m3!).state;
    expect(referenceStep(state, m3!).outcome).toBe(SequenceOutcome.Duplicate);
    state = referenceStep(state, m2!).state;
    expect(referenceStep(state, m2!).outcome).toBe(SequenceOutcome.Duplicate);
    expect(referenceStep(state, m1!).outcome).toBe(SequenceOutcome.Duplicate);
  });

  it("never mutates the state it is given", () => {
    const [m1, , m3] = channelMessages([{ kind: "up", by: 10 }, { kind: "up", by: 1 }]);
    const before = referenceStep(emptyChannelState(), m1!).state;
    const snapshot = structuredClone(before);
    referenceStep(before, m3!);
    expect(before).toEqual(snapshot);
  });
});

describe("apply", () => {
  it("keeps an exploded rocket exploded, still recording later message numbers", () => {
    const msgs = channelMessages([{ kind: "explode", reason: "FROZEN_O_RINGS" }, { kind: "up", by: 100 }, { kind: "mission", mission: "APOLLO" }]);
    const rocket = inOrder(msgs);
    expect(rocket).toMatchObject({ status: "exploded", explosionReason: "FROZEN_O_RINGS", speed: 500, mission: "ARTEMIS", lastMessageNumber: 4 });
    expect(rocket.updatedAt).toBe(time(4));
    expect(rocket.launchedAt).toBe(time(1));
  });

  it("never lets speed go below zero", () => {
    expect(inOrder(channelMessages([{ kind: "down", by: 900 }])).speed).toBe(0);
  });

  it("keeps speed a safe integer: exact up to 2^53 - 1, saturating there", () => {
    const [launch, up] = channelMessages([{ kind: "up", by: 1_000_000_000_000 }]);
    const rocket = apply(null, launch!);
    const nearTop = { ...rocket, speed: Number.MAX_SAFE_INTEGER - 1_000_000_000_000 };
    expect(apply(nearTop, up!).speed).toBe(Number.MAX_SAFE_INTEGER);
    const over = apply({ ...rocket, speed: Number.MAX_SAFE_INTEGER - 1 }, up!).speed;
    expect(over).toBe(Number.MAX_SAFE_INTEGER);
    expect(apply({ ...rocket, speed: over }, up!).speed).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("refuses a message before the launch, since sequencing must prevent it", () => {
    const [, m2] = channelMessages([{ kind: "up", by: 1 }]);
    expect(() => apply(null, m2!)).toThrow(/before its launch/);
  });
});
