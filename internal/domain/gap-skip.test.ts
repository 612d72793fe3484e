import { describe, expect, it } from "vitest";
import { skipGap } from "./gap-skip.js";
import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";
import { MAX_SKIPPED_RECORDED, type ChannelState } from "./sequencing.js";
import { numberedMessage } from "./channel-steps.fixture.js";

const CHANNEL = "c0ffee00-0000-4000-8000-0000000000bb";
const AT = "2026-01-01T00:00:00.000Z";

const message = (n: number): RocketMessage => numberedMessage(n, CHANNEL);

const fold = (ns: number[]) => ns.reduce<Rocket | null>((r, n) => apply(r, message(n)), null);

describe("skipGap", () => {
  it("gives up exactly the missing numbers, applies the first waiting message and every one it makes contiguous", () => {
    const state: ChannelState = { rocket: fold([1, 2]), lastApplied: 2, pending: [message(5), message(6), message(9)] };
    const result = skipGap(state, AT)!;
    expect(result.skipped).toEqual({ from: 3, to: 4, at: AT });
    expect(result.applied).toBe(2);
    expect(result.state).toEqual({ rocket: fold([1, 2, 5, 6]), lastApplied: 6, pending: [message(9)], skipped: [{ from: 3, to: 4, at: AT }] });
    expect(result.state.rocket?.lastMessageNumber).toBe(6);
  });

  it("skips nothing for a rocket that never launched, nor without a message waiting", () => {
    expect(skipGap({ rocket: null, lastApplied: 0, pending: [message(3)] }, AT)).toBeUndefined();
    expect(skipGap({ rocket: fold([1]), lastApplied: 1, pending: [] }, AT)).toBeUndefined();
  });

  it("keeps the most recent MAX_SKIPPED_RECORDED ranges", () => {
    const earlier = Array.from({ length: MAX_SKIPPED_RECORDED }, (_, i) => ({ from: i + 1, to: i + 1, at: AT }));
    const result = skipGap({ rocket: fold([1]), lastApplied: 20, pending: [message(30)], skipped: earlier }, AT)!;
    expect(result.state.skipped).toHaveLength(MAX_SKIPPED_RECORDED);
    expect(result.state.skipped!.at(-1)).toEqual({ from: 21, to: 29, at: AT });
    expect(result.state.skipped![0]).toEqual(earlier[1]);
  });
});
