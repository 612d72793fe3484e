import { describe, expect, it } from "vitest";
import { instantKey } from "./sort-keys.js";

describe("instantKey", () => {
  it("orders times by the instant they denote, whatever the offset", () => {
    const times = [
      "2022-02-02T19:39:05.86337+01:00", // 18:39:05.86337Z
      "2022-02-02T18:39:05Z",
      "2022-02-02T20:39:05.9+02:00", // 18:39:05.9Z
      "2022-02-02T18:39:05.000000001z",
    ];
    const sorted = [...times].sort((a, b) => (instantKey(a) < instantKey(b) ? -1 : 1));
    expect(sorted).toEqual([times[1], times[3], times[0], times[2]]);
  });

  it("keeps every nanosecond digit", () => {
    expect(instantKey("2025-04-02T09:21:50.458989221+02:00")).toBe("2025-04-02T07:21:50.458989221Z");
    expect(instantKey("2025-04-02T09:21:50.458989222+02:00") > instantKey("2025-04-02T09:21:50.458989221+02:00")).toBe(true);
  });

  it("returns a string that is not an RFC 3339 time unchanged", () => {
    expect(instantKey("yesterday")).toBe("yesterday");
  });
});
