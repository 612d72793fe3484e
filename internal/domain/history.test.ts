import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { foldHistory, gapOf, rangesOf, stateAsOf, stateAtMessage, type StoredMessage } from "./history.js";
import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";
import { sequenceBatch } from "./sequence-batch.js";
import { emptyChannelState, type ChannelState } from "./sequencing.js";
import { channelMessages, stepArb, type Step } from "./channel-steps.fixture.js";

const CHANNEL = "5e1f0000-0000-4000-8000-00000000abcd";

const messagesOf = (steps: Step[]) => channelMessages(steps, { channel: CHANNEL, launch: { type: "Atlas-H", launchSpeed: 700, mission: "ARTEMIS" } });

/** Receive time of stream sequence `seq`, in the canonical form (one millisecond apart). */
const receivedAt = (seq: number) => new Date(Date.UTC(2025, 3, 2, 7, 0, 0) + seq).toISOString().replace("Z", "000000Z").replace(/(\.\d{9})\d*Z$/, "$1Z");

function stored(arrivals: RocketMessage[]): StoredMessage[] {
  return arrivals.map((message, i) => ({ seq: 10 + i, receivedAt: receivedAt(10 + i), message }));
}

/**
 * What the sequencer holds after `arrivals`, worked out from which numbers
 * arrived alone (no sequencing code): the contiguous run from 1 applied in
 * order, the first copy of every later number waiting.
 */
function reference(arrivals: RocketMessage[]): ChannelState {
  const first = new Map<number, RocketMessage>();
  for (const m of arrivals) if (!first.has(m.metadata.messageNumber)) first.set(m.metadata.messageNumber, m);
  let c = 0;
  while (first.has(c + 1)) c += 1;
  let rocket: Rocket | null = null;
  for (let n = 1; n <= c; n += 1) rocket = apply(rocket, first.get(n)!);
  const pending = [...first.entries()].filter(([n]) => n > c).sort(([a], [b]) => a - b).map(([, m]) => m);
  return { rocket, lastApplied: c, pending };
}

/** A channel's messages and an arrival order with duplicates, as the stream may hold them. */
const historyArb = fc.array(stepArb, { maxLength: 40 }).chain((steps) => {
  const messages = messagesOf(steps);
  return fc.tuple(
    fc.constant(messages),
    fc
      .array(fc.nat({ max: messages.length - 1 }), { maxLength: messages.length })
      .chain((dups) => fc.shuffledSubarray([...messages, ...dups.map((i) => messages[i]!)], { minLength: messages.length + dups.length })),
  );
});

const inOrder = (messages: RocketMessage[], n: number): Rocket =>
  messages.slice(0, n).reduce<Rocket | null>((rocket, m) => apply(rocket, m), null)!;

describe("foldHistory", () => {
  it("gives, for every prefix of the stored history, the state the sequencer stores after that prefix", () => {
    fc.assert(
      fc.property(historyArb, ([, arrivals]) => {
        const history = stored(arrivals);
        for (let k = 0; k <= arrivals.length; k += 1) {
          const prefix = arrivals.slice(0, k);
          const expected = reference(prefix);
          const folded = foldHistory(history.slice(0, k), expected.lastApplied);
          const sequencer = sequenceBatch(emptyChannelState(), prefix, { maxPending: Number.POSITIVE_INFINITY });
          expect(folded.complete).toBe(true);
          expect(folded.state).toEqual(expected);
          expect(folded.waitingFor).toEqual(gapOf(expected));
          expect(folded.state).toEqual(sequencer.state);
          expect(folded.entries.map((e) => e.outcome)).toEqual(sequencer.outcomes);
          // The same point reached by time: everything received up to the k-th message.
          if (k > 0) {
            const asOf = stateAsOf(foldHistory(history, reference(arrivals).lastApplied), history[k - 1]!.receivedAt);
            expect(asOf).toEqual({ ok: true, state: expected });
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("records each message's speed once applied in number order, and none while it waits", () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), ([messages, arrivals], cut) => {
        const prefix = arrivals.slice(0, cut % (arrivals.length + 1));
        const expected = reference(prefix);
        const folded = foldHistory(stored(prefix), expected.lastApplied);
        for (const e of folded.entries) {
          const n = e.message.metadata.messageNumber;
          expect(e.speedAfter, `message ${n}`).toBe(n <= expected.lastApplied ? inOrder(messages, n).speed : null);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("answers the rocket as of any received message with messages 1..n applied in order, and refuses an unreceived one", () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), ([messages, arrivals], cut) => {
        const prefix = arrivals.slice(0, cut % (arrivals.length + 1));
        const expected = reference(prefix);
        const folded = foldHistory(stored(prefix), expected.lastApplied);
        const received = new Set(prefix.map((m) => m.metadata.messageNumber));
        for (let n = 1; n <= messages.length; n += 1) {
          const at = stateAtMessage(folded, n);
          const all = Array.from({ length: n }, (_, i) => i + 1).every((k) => received.has(k));
          if (all) expect(at).toEqual({ ok: true, state: { rocket: inOrder(messages, n), lastApplied: n, pending: [] } });
          else expect(at).toMatchObject({ ok: false, reason: "not-received" });
        }
      }),
      { numRuns: 150 },
    );
  });

  it("says which applied numbers the stream lost, computes nothing that depends on them, and answers points before them", () => {
    const messages = messagesOf([{ kind: "up", by: 10 }, { kind: "up", by: 20 }, { kind: "down", by: 5 }, { kind: "up", by: 1 }]);
    // Retention removed every copy of 3 and 4 (received first); 1, 2 and 5 are held.
    const history = stored([messages[0]!, messages[1]!, messages[4]!, messages[1]!]);
    const folded = foldHistory(history, 5);
    expect(folded.complete).toBe(false);
    expect(folded.missing).toEqual([{ from: 3, to: 4 }]);
    expect(folded.waitingFor).toEqual([]);
    // Message 8 arrived too: 6 and 7 are what the channel waits on.
    expect(foldHistory([...history, ...stored([messagesOf(Array.from({ length: 7 }, () => ({ kind: "up" as const, by: 1 })))[7]!])], 5).waitingFor).toEqual([
      { from: 6, to: 7 },
    ]);
    expect(folded.entries.map((e) => [e.outcome, e.speedAfter])).toEqual([
      [null, null],
      [null, null],
      [null, null],
      [null, null],
    ]);
    expect(stateAsOf(folded, history[3]!.receivedAt)).toEqual({ ok: false, reason: "truncated", missing: [{ from: 3, to: 4 }] });
    expect(stateAtMessage(folded, 5)).toEqual({ ok: false, reason: "truncated", missing: [{ from: 3, to: 4 }] });
    expect(stateAtMessage(folded, 2)).toEqual({ ok: true, state: { rocket: inOrder(messages, 2), lastApplied: 2, pending: [] } });
    // The launch itself gone: nothing can be answered from message 1 on.
    const noStart = foldHistory(stored([messages[1]!, messages[2]!]), 3);
    expect(noStart.missing).toEqual([{ from: 1, to: 1 }]);
    expect(stateAtMessage(noStart, 1)).toMatchObject({ ok: false, reason: "truncated" });
  });

  it("takes a rocket's skipped ranges where they happened: complete, the given-up number skipped, points past the skip answered", () => {
    const messages = messagesOf([{ kind: "up", by: 10 }, { kind: "up", by: 20 }, { kind: "down", by: 5 }, { kind: "up", by: 1 }, { kind: "up", by: 7 }]);
    // 4 never arrived; 5 and 6 waited until the gap policy gave 4 up, then 4 came after all (a duplicate of nothing).
    const history = stored([messages[0]!, messages[1]!, messages[2]!, messages[4]!, messages[5]!, messages[3]!]);
    const skipped = [{ from: 4, to: 4, at: history[5]!.receivedAt.replace(/\.(\d{3})\d{6}Z$/, ".$1Z"), reason: "deadline" as const }];
    const folded = foldHistory(history, 6, skipped);
    expect(folded.complete).toBe(true);
    expect(folded.missing).toEqual([]);
    expect(folded.entries.map((e) => e.outcome)).toEqual(["applied", "applied", "applied", "buffered", "buffered", "skipped"]);
    const without4 = [messages[0]!, messages[1]!, messages[2]!, messages[4]!, messages[5]!].reduce<Rocket | null>((r, m) => apply(r, m), null);
    expect(folded.state).toEqual({ rocket: without4, lastApplied: 6, pending: [] });
    // 4 (down 5) never counts: 700, 710, 730, then 5 (+1) and 6 (+7) once 4 was given up.
    expect(folded.entries.map((e) => e.speedAfter)).toEqual([700, 710, 730, 731, 738, null]);
    expect(stateAtMessage(folded, 6, skipped)).toEqual({ ok: true, state: { rocket: without4, lastApplied: 6, pending: [] } });
    expect(stateAtMessage(folded, 4, skipped)).toEqual({ ok: false, reason: "not-received", missing: [{ from: 4, to: 4 }] });
    // Before the skip the rocket waited at 3; once every message up to 6 was in, it had given 4 up.
    expect(stateAsOf(folded, history[3]!.receivedAt, skipped)).toMatchObject({ ok: true, state: { lastApplied: 3 } });
    expect(stateAsOf(folded, history[5]!.receivedAt, skipped)).toEqual({ ok: true, state: { rocket: without4, lastApplied: 6, pending: [] } });
  });
});

describe("gapOf and rangesOf", () => {
  it("lists the numbers a channel waits for between its last applied and its highest buffered message", () => {
    const messages = messagesOf(Array.from({ length: 9 }, () => ({ kind: "up" as const, by: 1 })));
    const state = reference([messages[0]!, messages[1]!, messages[4]!, messages[5]!, messages[8]!]);
    expect(state.lastApplied).toBe(2);
    expect(gapOf(state)).toEqual([
      { from: 3, to: 4 },
      { from: 7, to: 8 },
    ]);
    expect(gapOf(reference(messages))).toEqual([]);
    expect(rangesOf([1, 2, 3, 7, 9, 10])).toEqual([
      { from: 1, to: 3 },
      { from: 7, to: 7 },
      { from: 9, to: 10 },
    ]);
  });
});
