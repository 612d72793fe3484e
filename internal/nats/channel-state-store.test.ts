import { describe, expect, it } from "vitest";
import { validateMessage, type RocketMessage } from "../domain/message.js";
import { apply } from "../domain/rocket.js";
import { StateDecodeError } from "../sequencer/channel-states.js";
import { decodeChannelState, encodeChannelState } from "../sequencer/state-encoding.js";

const CHANNEL = "c0ffee00-0000-4000-8000-0000000000bb";

function message(n: number): RocketMessage {
  const metadata = { channel: CHANNEL, messageNumber: n, messageTime: "2025-04-02T09:21:50Z" };
  const raw =
    n === 1
      ? { metadata: { ...metadata, messageType: "RocketLaunched" }, message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } }
      : { metadata: { ...metadata, messageType: "RocketSpeedDecreased" }, message: { by: 1 } };
  const v = validateMessage(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.value;
}

function decodeError(data: Uint8Array, channel = CHANNEL): StateDecodeError {
  try {
    decodeChannelState(data, channel);
  } catch (err) {
    if (err instanceof StateDecodeError) return err;
    throw err;
  }
  throw new Error("expected a StateDecodeError");
}

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8");

describe("decodeChannelState", () => {
  it("reads back what encodeChannelState wrote", () => {
    const state = { rocket: apply(null, message(1)), lastApplied: 1, pending: [message(3), message(4)] };
    expect(decodeChannelState(encodeChannelState(state), CHANNEL)).toEqual(state);
    const parked = {
      rocket: apply(null, message(1)),
      lastApplied: 1,
      pending: [],
      gap: { fromSeq: 42, parked: 7, since: "2026-01-01T00:00:00.000Z" },
    };
    expect(decodeChannelState(encodeChannelState(parked), CHANNEL)).toEqual(parked);
  });

  it("writes format 2, whose size does not grow with the gap, and still reads format 1", () => {
    const parked = (n: number) => ({ rocket: apply(null, message(1)), lastApplied: 1, pending: [], gap: { fromSeq: 5, parked: n, since: "2026-01-01T00:00:00Z" } });
    expect(JSON.parse(Buffer.from(encodeChannelState(parked(1))).toString()).v).toBe(2);
    expect(encodeChannelState(parked(9999)).byteLength - encodeChannelState(parked(1)).byteLength).toBe(3);
    const v1 = bytes({ v: 1, rocket: null, lastApplied: 0, pending: [message(2)] });
    expect(decodeChannelState(v1, CHANNEL)).toEqual({ rocket: null, lastApplied: 0, pending: [message(2)] });
  });

  it("refuses bytes that are not JSON or not our format", () => {
    expect(decodeError(Buffer.from("{nope")).message).toBe("channel state is not JSON");
    expect(decodeError(bytes({ v: 3, rocket: null, lastApplied: 0, pending: [] })).message).toMatch(/unknown shape \(format 3\)/);
    expect(decodeError(bytes([1, 2])).message).toMatch(/unknown shape/);
    expect(decodeError(bytes(null)).message).toMatch(/unknown shape/);
  });

  it("refuses a stored state whose buffered message ingest would refuse, listing the problems without quoting them", () => {
    const spoiled = JSON.parse(JSON.stringify({ v: 1, rocket: null, lastApplied: 0, pending: [message(2), message(3)] }));
    spoiled.pending[0].metadata.channel = "ab\ud800cd";
    spoiled.pending[1].message.by = 2 ** 60;
    const err = decodeError(bytes(spoiled));
    expect(err.problems.map((p) => p.path)).toEqual(["pending.0.metadata.channel", "pending.1.message.by"]);
    expect(err.message).toMatch(/^channel state is invalid: pending\.0\.metadata\.channel .*; pending\.1\.message\.by /);
    expect(err.message).not.toContain(String(2 ** 60));
  });

  it("refuses a state stored under another channel's key", () => {
    const state = { rocket: apply(null, message(1)), lastApplied: 1, pending: [] };
    expect(decodeError(encodeChannelState(state), "another-channel").problems.map((p) => p.path)).toEqual(["rocket.channel"]);
  });

  it("names at most five problems in its message, and keeps them all", () => {
    const pending = Array.from({ length: 8 }, (_, i) => ({ ...message(i + 2), message: { by: -1 } }));
    const err = decodeError(bytes({ v: 1, rocket: null, lastApplied: 0, pending }));
    expect(err.problems).toHaveLength(8);
    expect(err.message).toMatch(/; and 3 more$/);
  });
});
