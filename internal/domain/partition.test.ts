import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { fnv1a32, partitionOf } from "./partition.js";

describe("partitionOf", () => {
  it("is FNV-1a 32-bit, like nats-server's partition() mapping", () => {
    // Published FNV-1a test vectors.
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("always lands in [0, partitions)", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 1, max: 1024 }), (channel, partitions) => {
        const p = partitionOf(channel, partitions);
        return Number.isInteger(p) && p >= 0 && p < partitions;
      }),
    );
  });

  it("spreads UUID channels over every partition", () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 1600; i++) {
      const id = `${i.toString(16).padStart(8, "0")}-c9cf-404a-8f83-838e71d9ae67`;
      counts[partitionOf(id, 16)]! += 1;
    }
    expect(Math.min(...counts)).toBeGreaterThan(50);
  });
});
