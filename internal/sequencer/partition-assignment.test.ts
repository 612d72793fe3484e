import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { assignPartitions, partitionsFor } from "./partition-assignment.js";

const memberIds = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 40 });

describe("assignPartitions", () => {
  it("assigns every partition to exactly one member, shares differing by at most one", () => {
    fc.assert(
      fc.property(memberIds, fc.integer({ min: 1, max: 300 }), (members, partitions) => {
        const assignment = assignPartitions(members, partitions);
        const owned = [...assignment.values()].flat().sort((a, b) => a - b);
        expect(owned).toEqual(Array.from({ length: partitions }, (_, p) => p));
        const shares = members.map((m) => assignment.get(m)!.length);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it("gives the same answer whatever order the members are listed in", () => {
    const listings = memberIds.chain((members) =>
      fc.tuple(fc.constant(members), fc.shuffledSubarray(members, { minLength: members.length })),
    );
    fc.assert(
      fc.property(listings, fc.integer({ min: 1, max: 64 }), ([members, shuffled], partitions) => {
        expect(assignPartitions(shuffled, partitions)).toEqual(assignPartitions(members, partitions));
      }),
    );
  });

  it("moves few partitions besides the joining member's share when a member joins", () => {
    const before = ["seq-a", "seq-b", "seq-c"];
    const after = [...before, "seq-d"];
    const p = 64;
    const a = assignPartitions(before, p);
    const b = assignPartitions(after, p);
    let moved = 0;
    for (const m of before) {
      const kept = new Set(b.get(m));
      moved += a.get(m)!.filter((x) => !kept.has(x)).length;
    }
    // The newcomer must take 16; a full reshuffle would move about 48.
    expect(moved).toBeLessThanOrEqual(24);
  });

  it("leaves members beyond the partition count without partitions", () => {
    expect(partitionsFor("z", ["a", "b", "z"], 2)).toEqual([]);
    expect(partitionsFor("stranger", ["a"], 4)).toEqual([]);
    expect(partitionsFor("a", ["a"], 4)).toEqual([0, 1, 2, 3]);
  });
});
