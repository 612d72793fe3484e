import { describe, expect, it } from "vitest";
import { validateChannelState } from "./channel-state.js";
import type { RocketMessage } from "./message.js";
import { apply, type Rocket } from "./rocket.js";
import type { ChannelState } from "./sequencing.js";
import { numberedMessage } from "./channel-steps.fixture.js";

const CHANNEL = "c0ffee00-0000-4000-8000-0000000000aa";

const message = (n: number, channel = CHANNEL): RocketMessage => numberedMessage(n, channel);

function rocketAt(n: number): Rocket {
  let rocket: Rocket | null = null;
  for (let i = 1; i <= n; i++) rocket = apply(rocket, message(i));
  return rocket!;
}

/** The state as it comes back from JSON: plain data, open to anything. */
const stored = (state: ChannelState) => JSON.parse(JSON.stringify(state)) as Record<string, unknown>;

function problemPaths(input: Record<string, unknown>, channel = CHANNEL): string[] {
  const v = validateChannelState(input, channel);
  if (v.ok) throw new Error("expected invalid");
  return v.problems.map((p) => p.path);
}

describe("validateChannelState", () => {
  it("accepts the states sequencing produces: empty, buffered before the launch, launched with a gap", () => {
    const states: ChannelState[] = [
      { rocket: null, lastApplied: 0, pending: [] },
      { rocket: null, lastApplied: 0, pending: [message(2), message(5)] },
      { rocket: rocketAt(3), lastApplied: 3, pending: [message(5), message(9)] },
    ];
    for (const state of states) expect(validateChannelState(stored(state), CHANNEL)).toEqual({ ok: true, value: state });
  });

  it("accepts an exploded rocket with its reason", () => {
    const rocket = { ...rocketAt(2), status: "exploded", explosionReason: "FROZEN_O_RINGS" };
    expect(validateChannelState({ rocket, lastApplied: 2, pending: [] }, CHANNEL).ok).toBe(true);
  });

  it("refuses a buffered message that ingest would refuse, naming it by position", () => {
    const bad = stored({ rocket: rocketAt(1), lastApplied: 1, pending: [message(3), message(4)] });
    const pending = bad["pending"] as { metadata: { channel: string }; message: { by: number } }[];
    pending[1]!.message.by = 2 ** 53;
    expect(problemPaths(bad)).toEqual(["pending.1.message.by"]);
    pending[1]!.message.by = 4;
    pending[0]!.metadata.channel = `${CHANNEL}\u200b`;
    expect(problemPaths(bad)).toEqual(["pending.0.metadata.channel"]);
  });

  it("refuses buffered messages of another channel, not past the gap, or out of order", () => {
    const other = stored({ rocket: rocketAt(1), lastApplied: 1, pending: [message(3, "someone-else")] });
    expect(problemPaths(other)).toEqual(["pending.0.metadata.channel"]);
    const notPastGap = stored({ rocket: rocketAt(3), lastApplied: 3, pending: [message(4)] });
    expect(problemPaths(notPastGap)).toEqual(["pending.0.metadata.messageNumber"]);
    const applied = stored({ rocket: rocketAt(3), lastApplied: 3, pending: [message(2)] });
    expect(problemPaths(applied)).toEqual(["pending.0.metadata.messageNumber"]);
    const unordered = stored({ rocket: rocketAt(1), lastApplied: 1, pending: [message(6), message(4)] });
    expect(problemPaths(unordered)).toEqual(["pending.1.metadata.messageNumber"]);
    const twice = stored({ rocket: rocketAt(1), lastApplied: 1, pending: [message(4), message(4)] });
    expect(problemPaths(twice)).toEqual(["pending.1.metadata.messageNumber"]);
  });

  it("refuses a rocket inconsistent with lastApplied or its channel", () => {
    expect(problemPaths({ rocket: rocketAt(2), lastApplied: 0, pending: [] })).toEqual(["rocket"]);
    expect(problemPaths({ rocket: null, lastApplied: 2, pending: [] })).toEqual(["rocket"]);
    expect(problemPaths({ rocket: rocketAt(2), lastApplied: 3, pending: [] })).toEqual(["rocket.lastMessageNumber"]);
    expect(problemPaths({ rocket: rocketAt(2), lastApplied: 2, pending: [] }, "c0ffee00-other")).toEqual(["rocket.channel"]);
  });

  it("refuses rocket fields no message could have produced", () => {
    const cases: [Partial<Record<keyof Rocket, unknown>>, string][] = [
      [{ speed: -1 }, "rocket.speed"],
      [{ speed: 2 ** 53 }, "rocket.speed"],
      [{ speed: "500" }, "rocket.speed"],
      [{ mission: "ART\u202eEMIS" }, "rocket.mission"],
      [{ type: "" }, "rocket.type"],
      [{ status: "landed" }, "rocket.status"],
      [{ explosionReason: "FROZEN_O_RINGS" }, "rocket.explosionReason"],
      [{ launchedAt: "2025-02-31T00:00:00Z" }, "rocket.launchedAt"],
      [{ updatedAt: 17 }, "rocket.updatedAt"],
    ];
    for (const [change, path] of cases) {
      expect(problemPaths({ rocket: { ...rocketAt(2), ...change }, lastApplied: 2, pending: [] }), path).toEqual([path]);
    }
    const exploded = { ...rocketAt(2), status: "exploded", explosionReason: null };
    expect(problemPaths({ rocket: exploded, lastApplied: 2, pending: [] })).toEqual(["rocket.explosionReason"]);
  });

  it("refuses a malformed envelope", () => {
    expect(problemPaths({ rocket: null, lastApplied: -1, pending: [] })).toEqual(["lastApplied"]);
    expect(problemPaths({ rocket: null, lastApplied: 1.5, pending: [] })).toEqual(["lastApplied"]);
    expect(problemPaths({ rocket: null, lastApplied: 0, pending: {} })).toEqual(["pending"]);
    expect(problemPaths({ rocket: null, lastApplied: 0, pending: [null] })).toEqual(["pending.0"]);
    expect(problemPaths({ rocket: null, lastApplied: 0, pending: [] }, "a.b")).toEqual([""]);
  });

  it("accepts a parked gap and skipped ranges, and refuses them malformed", () => {
    const gap = { fromSeq: 12, parked: 3, since: "2026-01-01T00:00:00.123Z" };
    const skipped = [
      { from: 2, to: 2, at: "2026-01-01T00:00:00Z" },
      { from: 4, to: 5, at: "2026-01-02T00:00:00Z" },
    ];
    const state: ChannelState = { rocket: rocketAt(7), lastApplied: 7, pending: [], gap, skipped };
    expect(validateChannelState(stored(state), CHANNEL)).toEqual({ ok: true, value: state });
    expect(validateChannelState({ rocket: null, lastApplied: 0, pending: [], gap: { ...gap, fromSeq: null } }, CHANNEL).ok).toBe(true);
    expect(problemPaths({ rocket: null, lastApplied: 0, pending: [], gap: { fromSeq: 0, parked: -1, since: "yesterday" } })).toEqual([
      "gap.fromSeq",
      "gap.parked",
      "gap.since",
    ]);
    expect(problemPaths({ rocket: null, lastApplied: 0, pending: [], gap: [] })).toEqual(["gap"]);
    // Out of order, reaching lastApplied, or not a range.
    expect(problemPaths({ ...stored(state), skipped: [skipped[1], skipped[0]] })).toEqual(["skipped.1"]);
    expect(problemPaths({ ...stored(state), skipped: [{ from: 6, to: 7, at: skipped[0]!.at }] })).toEqual(["skipped.0"]);
    expect(problemPaths({ ...stored(state), skipped: [{ from: 3, to: 2, at: skipped[0]!.at }] })).toEqual(["skipped.0"]);
    expect(problemPaths({ ...stored(state), skipped: Array.from({ length: 11 }, () => skipped[0]) })[0]).toBe("skipped");
  });

  it("keeps only the schema's fields of what it accepts", () => {
    const input = stored({ rocket: rocketAt(1), lastApplied: 1, pending: [message(3)] });
    (input["rocket"] as Record<string, unknown>)["extra"] = "x".repeat(1000);
    ((input["pending"] as Record<string, unknown>[])[0]!)["junk"] = true;
    expect(validateChannelState(input, CHANNEL)).toEqual({ ok: true, value: { rocket: rocketAt(1), lastApplied: 1, pending: [message(3)] } });
  });
});
