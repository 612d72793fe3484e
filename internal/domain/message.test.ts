import { describe, expect, it } from "vitest";
import { isRfc3339, MAX_SPEED, sameMessage, validateMessage, type Problem, type RocketMessage } from "./message.js";

const launched = () => ({
  metadata: {
    channel: "193270a9-c9cf-404a-8f83-838e71d9ae67",
    messageNumber: 1,
    messageTime: "2022-02-02T19:39:05.86337+01:00",
    messageType: "RocketLaunched",
  },
  message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
});

function problems(input: unknown): Problem[] {
  const r = validateMessage(input);
  if (r.ok) throw new Error("expected invalid");
  return r.problems;
}

describe("validateMessage", () => {
  it("accepts the documented example and keeps messageTime verbatim", () => {
    const r = validateMessage(launched());
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.metadata.messageTime).toBe("2022-02-02T19:39:05.86337+01:00");
  });

  it("accepts every message type with its payload", () => {
    const base = launched().metadata;
    const cases = [
      ["RocketSpeedIncreased", { by: 3000 }],
      ["RocketSpeedDecreased", { by: 0 }],
      ["RocketExploded", { reason: "PRESSURE_VESSEL_FAILURE" }],
      ["RocketMissionChanged", { newMission: "SHUTTLE_MIR" }],
    ] as const;
    for (const [messageType, message] of cases) {
      const r = validateMessage({ metadata: { ...base, messageNumber: 2, messageType }, message });
      expect(r.ok, messageType).toBe(true);
    }
  });

  it("drops fields outside the schema so stored state is bounded by it", () => {
    const input = { ...launched(), extra: "x".repeat(1000), message: { ...launched().message, junk: true } };
    const r = validateMessage(input);
    expect(r.ok && r.value).toEqual(launched());
  });

  it("reports every problem with its path at once", () => {
    const found = problems({
      metadata: { channel: "a.b", messageNumber: 0, messageTime: "yesterday", messageType: "RocketLaunched" },
      message: { type: "", launchSpeed: -1, mission: 7 },
    });
    expect(found.map((p) => p.path).sort()).toEqual(
      [
        "message.launchSpeed",
        "message.mission",
        "message.type",
        "metadata.channel",
        "metadata.messageNumber",
        "metadata.messageTime",
      ].sort(),
    );
    for (const p of found) expect(p.reason.length).toBeGreaterThan(0);
  });

  it.each([
    ["null", null],
    ["an array", []],
    ["a string", "hello"],
    ["a number", 42],
  ])("rejects a document that is %s", (_name, input) => {
    expect(problems(input)).toEqual([{ path: "", reason: expect.stringContaining("JSON object") }]);
  });

  it("requires metadata and message", () => {
    expect(problems({}).map((p) => p.path)).toEqual(["metadata", "message"]);
  });

  it.each(["a.b", "a*", "a>", "a b", "a\tb", "a\nb", "a\u0000b", "a\u00a0b", "", "x".repeat(129)])(
    "rejects channel %j",
    (channel) => {
      const input = launched();
      input.metadata.channel = channel;
      expect(problems(input)).toEqual([{ path: "metadata.channel", reason: expect.any(String) }]);
    },
  );

  it.each([
    ["an unpaired high surrogate", "ab\ud800cd"],
    ["an unpaired low surrogate", "ab\udc00"],
    ["a zero-width space", "193270a9\u200b-c9cf"],
    ["a zero-width joiner", "a\u200db"],
    ["a right-to-left mark", "a\u200fb"],
    ["a right-to-left override", "a\u202eb"],
    ["a first-strong isolate", "a\u2068b"],
    ["a byte order mark", "\ufeffabc"],
    ["a soft hyphen", "a\u00adb"],
    ["a noncharacter", "a\uffffb"],
  ])("rejects a channel with %s, naming the code point but not the id", (_name, channel) => {
    const input = launched();
    input.metadata.channel = channel;
    const found = problems(input);
    expect(found).toEqual([{ path: "metadata.channel", reason: expect.stringMatching(/U\+[0-9A-F]{4}/) }]);
    expect(found[0]!.reason).not.toContain(channel);
  });

  it("names where the bad character is, as a code point", () => {
    const input = launched();
    input.metadata.channel = "ab\ud800cd";
    expect(problems(input)[0]!.reason).toMatch(/unpaired surrogate, U\+D800, at index 2/);
  });

  it.each([
    ["type", "message.type", "Falcon\u200b-9"],
    ["mission", "message.mission", "ART\u202eEMIS"],
    ["mission", "message.mission", "A\u0007B"],
    ["type", "message.type", "x\ud83d"],
    ["mission", "message.mission", "line\u2028break"],
  ])("rejects %s holding an unsafe character", (field, path, value) => {
    const input = launched() as { message: Record<string, unknown> };
    input.message[field] = value;
    expect(problems(input).map((p) => p.path)).toEqual([path]);
  });

  it("rejects unsafe characters in reason and newMission", () => {
    const base = { ...launched().metadata, messageNumber: 2 };
    const exploded = { metadata: { ...base, messageType: "RocketExploded" }, message: { reason: "\u2066UNKNOWN" } };
    expect(problems(exploded).map((p) => p.path)).toEqual(["message.reason"]);
    const changed = { metadata: { ...base, messageType: "RocketMissionChanged" }, message: { newMission: "APOLLO\r\n" } };
    expect(problems(changed).map((p) => p.path)).toEqual(["message.newMission"]);
  });

  it("keeps text with paired surrogates, accents and spaces", () => {
    const input = launched();
    input.message.mission = "Mission 🚀 à la Lune";
    input.message.type = "Ariane-5 ECA";
    input.metadata.channel = "rocket-🚀-ü";
    expect(validateMessage(input).ok).toBe(true);
  });

  it("accepts a channel of 128 safe characters, including non-ASCII ones", () => {
    for (const channel of ["x".repeat(128), "rocket-ü-1", "a_b:c#d"]) {
      const input = launched();
      input.metadata.channel = channel;
      expect(validateMessage(input).ok, channel).toBe(true);
    }
  });

  it("refuses the channel ids the API's paths take (/rockets/summary, /rockets/stream), and only those exactly", () => {
    for (const channel of ["summary", "stream"]) {
      const input = launched();
      input.metadata.channel = channel;
      expect(problems(input), channel).toEqual([
        { path: "metadata.channel", reason: "must not be 'summary' or 'stream': the API's paths /rockets/summary and /rockets/stream take them" },
      ]);
    }
    for (const channel of ["Summary", "streams", "summary-1", "my-stream"]) {
      const input = launched();
      input.metadata.channel = channel;
      expect(validateMessage(input).ok, channel).toBe(true);
    }
  });

  it.each([1.5, Number.MAX_SAFE_INTEGER + 1, "2", null, -3])("rejects messageNumber %j", (n) => {
    const input = launched() as { metadata: Record<string, unknown> };
    input.metadata["messageNumber"] = n;
    expect(problems(input).map((p) => p.path)).toContain("metadata.messageNumber");
  });

  it.each([
    ["launchSpeed", MAX_SPEED + 1],
    ["launchSpeed", 2 ** 53],
    ["launchSpeed", 1e300],
  ])("rejects %s %j, above the speed ceiling", (field, value) => {
    const input = launched() as { message: Record<string, unknown> };
    input.message[field] = value;
    const found = problems(input);
    expect(found.map((p) => p.path)).toEqual(["message.launchSpeed"]);
    expect(found[0]!.reason).not.toContain(String(value));
  });

  it("accepts speeds up to the ceiling, and changes of it", () => {
    const input = launched();
    input.message.launchSpeed = MAX_SPEED;
    expect(validateMessage(input).ok).toBe(true);
    const up = { metadata: { ...launched().metadata, messageNumber: 2, messageType: "RocketSpeedIncreased" }, message: { by: MAX_SPEED } };
    expect(validateMessage(up).ok).toBe(true);
    expect(problems({ ...up, message: { by: MAX_SPEED + 1 } })).toEqual([{ path: "message.by", reason: `must be at most ${MAX_SPEED}` }]);
  });

  it("says why a number is refused without quoting it", () => {
    const input = launched() as { metadata: Record<string, unknown> };
    input.metadata["messageNumber"] = 2 ** 60;
    expect(problems(input)).toEqual([{ path: "metadata.messageNumber", reason: "must be a safe integer (at most 2^53 - 1)" }]);
    input.metadata["messageNumber"] = 1.25;
    expect(problems(input)).toEqual([{ path: "metadata.messageNumber", reason: "must be an integer" }]);
  });

  it("rejects an impossible messageTime with a reason, keeping a real one verbatim", () => {
    const input = launched();
    input.metadata.messageTime = "2025-02-31T10:00:00Z";
    expect(problems(input)).toEqual([{ path: "metadata.messageTime", reason: expect.stringContaining("real date") }]);
  });

  it("rejects an unknown messageType", () => {
    const input = launched();
    input.metadata.messageType = "RocketLanded";
    expect(problems(input)).toEqual([{ path: "metadata.messageType", reason: expect.stringContaining("RocketLaunched") }]);
  });

  it("rejects a payload that does not match its type", () => {
    const input = { metadata: { ...launched().metadata, messageNumber: 2, messageType: "RocketSpeedIncreased" }, message: { reason: "x" } };
    expect(problems(input)).toEqual([{ path: "message.by", reason: "is required" }]);
  });

  it("rejects negative or fractional speeds", () => {
    for (const by of [-1, 2.5]) {
      const input = { metadata: { ...launched().metadata, messageNumber: 2, messageType: "RocketSpeedDecreased" }, message: { by } };
      expect(problems(input).map((p) => p.path)).toEqual(["message.by"]);
    }
  });

  it("ties RocketLaunched to message number 1, both ways", () => {
    const late = launched();
    late.metadata.messageNumber = 5;
    expect(problems(late)).toEqual([{ path: "metadata.messageNumber", reason: "RocketLaunched must be message number 1" }]);
    const early = { metadata: { ...launched().metadata, messageType: "RocketExploded" }, message: { reason: "UNKNOWN" } };
    expect(problems(early)).toEqual([{ path: "metadata.messageNumber", reason: "message number 1 must be RocketLaunched" }]);
  });

  it("bounds free-text fields", () => {
    const input = launched();
    input.message.mission = "M".repeat(201);
    expect(problems(input).map((p) => p.path)).toEqual(["message.mission"]);
  });
});

describe("isRfc3339", () => {
  it.each([
    "2022-02-02T19:39:05.86337+01:00",
    "2025-04-02T09:21:50.458989221+02:00",
    "2025-04-02T09:21:50Z",
    "2025-04-02t09:21:50z",
    "2016-12-31T23:59:60Z",
    "1990-12-31T15:59:60-08:00",
    "2015-07-01T05:29:60+05:30",
    "2024-02-29T00:00:00Z",
    "2000-02-29T12:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999-23:59",
    "2025-04-02T09:21:50-00:00",
  ])("accepts %s", (t) => expect(isRfc3339(t)).toBe(true));

  it.each([
    "2025-04-02",
    "2025-04-02T09:21:50",
    "2025-13-02T09:21:50Z",
    "2025-04-32T09:21:50Z",
    "2025-04-02T24:00:00Z",
    "2025-04-02T09:21:50.1234567890Z",
    "2025-04-02T09:21:50+0200",
    " 2025-04-02T09:21:50Z",
    "2025-02-31T09:21:50Z",
    "2025-02-29T09:21:50Z",
    "1900-02-29T09:21:50Z",
    "2025-04-31T09:21:50Z",
    "2025-06-00T09:21:50Z",
    "2025-00-10T09:21:50Z",
    "0000-01-01T00:00:00Z",
    "2025-04-02T24:00:00+02:00",
    "2025-04-02T09:60:00Z",
    "2025-04-02T09:21:61Z",
    "2025-04-02T09:21:60Z",
    "2016-12-30T23:59:60Z",
    "2016-12-31T23:59:60+01:00",
    "2025-04-02T09:21:50+24:00",
    "2025-04-02T09:21:50+02:60",
    "2025-04-02T09:21:50.Z",
  ])("rejects %s", (t) => expect(isRfc3339(t)).toBe(false));
});

describe("sameMessage", () => {
  const valid = (input: unknown): RocketMessage => {
    const r = validateMessage(input);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.value;
  };

  it("holds for the same message, whatever was dropped or reordered on the way", () => {
    const a = valid(launched());
    const { type, launchSpeed, mission } = launched().message;
    const b = valid({ message: { mission, launchSpeed, type, extra: 1 }, metadata: launched().metadata });
    expect(sameMessage(a, b)).toBe(true);
  });

  it.each([
    ["the launch speed", (m: ReturnType<typeof launched>) => (m.message.launchSpeed = 501)],
    ["the mission", (m: ReturnType<typeof launched>) => (m.message.mission = "APOLLO")],
    ["the type", (m: ReturnType<typeof launched>) => (m.message.type = "Atlas-H")],
    ["the channel", (m: ReturnType<typeof launched>) => (m.metadata.channel = "another")],
  ])("fails when %s differs", (_name, change) => {
    const other = launched();
    change(other);
    expect(sameMessage(valid(launched()), valid(other))).toBe(false);
  });

  it("holds when only the time differs: the test program stamps each send, and reruns resend stored numbers", () => {
    const other = launched();
    other.metadata.messageTime = "2026-11-30T10:00:00.123456789+01:00";
    expect(sameMessage(valid(launched()), valid(other))).toBe(true);
  });

  it("fails across message types of the same number", () => {
    const base = { ...launched().metadata, messageNumber: 2 };
    const up = valid({ metadata: { ...base, messageType: "RocketSpeedIncreased" }, message: { by: 5 } });
    const down = valid({ metadata: { ...base, messageType: "RocketSpeedDecreased" }, message: { by: 5 } });
    expect(sameMessage(up, down)).toBe(false);
    expect(sameMessage(up, valid({ metadata: { ...base, messageType: "RocketSpeedIncreased" }, message: { by: 6 } }))).toBe(false);
  });
});
