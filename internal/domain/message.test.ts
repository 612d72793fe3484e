import { describe, expect, it } from "vitest";
import { isRfc3339, validateMessage, type Problem } from "./message.js";

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

  it("accepts a channel of 128 safe characters, including non-ASCII ones", () => {
    for (const channel of ["x".repeat(128), "rocket-ü-1", "a_b:c#d"]) {
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
  ])("rejects %s", (t) => expect(isRfc3339(t)).toBe(false));
});
