import { describe, expect, it } from "vitest";
import { isRfc3339 } from "../../internal/domain/mod.js";
import { formatMessageTime } from "./message-time.js";

describe("formatMessageTime", () => {
  it("writes UTC as Z and leaves out a zero fraction, like Go's RFC3339Nano", () => {
    expect(formatMessageTime(0n, 0)).toBe("1970-01-01T00:00:00Z");
  });

  it("keeps nanoseconds and trims trailing zeros", () => {
    expect(formatMessageTime(1_000_000_001n, 120)).toBe("1970-01-01T02:00:01.000000001+02:00");
    expect(formatMessageTime(86_400_500_000_000n, -300)).toBe("1970-01-01T19:00:00.5-05:00");
    expect(formatMessageTime(1_743_578_510_458_989_221n, 120)).toBe("2025-04-02T09:21:50.458989221+02:00");
  });

  it("writes half-hour offsets", () => {
    expect(formatMessageTime(0n, 330)).toBe("1970-01-01T05:30:00+05:30");
  });

  it("always produces what the domain accepts as RFC 3339", () => {
    for (let i = 0n; i < 200n; i++) {
      const t = formatMessageTime(1_735_689_600_000_000_000n + i * 123_456_789_987n, [0, 60, -240, 540][Number(i % 4n)]!);
      expect(isRfc3339(t), t).toBe(true);
    }
  });
});
