import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FleetView } from "./fleet-view.js";
import { exactMean, IncrementalSummary } from "./fleet-summary.js";
import { rocketFixture as rocket } from "./rocket.fixture.js";

const MAX = Number.MAX_SAFE_INTEGER;

function loaded(topLabels: number, rockets: ReturnType<typeof rocket>[]): FleetView {
  const view = new FleetView(topLabels);
  view.beginSync();
  rockets.forEach((r, i) => view.put(r.channel, r, i + 1));
  view.endSync();
  return view;
}

describe("IncrementalSummary exact speeds", () => {
  it("averages 500 and 0 as 250 after rockets near 2^53 came and went", () => {
    const view = loaded(20, []);
    view.put("big1", rocket("big1", { speed: MAX }), 1);
    view.put("big2", rocket("big2", { speed: MAX - 1 }), 2);
    view.put("a", rocket("a", { speed: 500 }), 3);
    view.put("b", rocket("b", { speed: 0 }), 4);
    // A float sum rounds here (2^54 + 500 is not representable) and keeps the error after the big ones leave.
    expect(view.summary().totalSpeed).toBe((2n * BigInt(MAX) - 1n + 500n).toString());
    view.remove("big1", 5);
    view.put("big2", rocket("big2", { speed: 3 }), 6);
    view.remove("big2", 7);
    expect(view.summary()).toMatchObject({ total: 2, totalSpeed: "500", averageSpeed: 250 });
  });

  it("sums 50,000 rockets at the speed ceiling exactly", () => {
    const summary = new IncrementalSummary();
    for (let i = 0; i < 50_000; i += 1) summary.add(rocket(`c${i}`, { speed: MAX }));
    expect(summary.read().totalSpeed).toBe((50_000n * BigInt(MAX)).toString());
    expect(summary.read().averageSpeed).toBe(MAX);
  });

  it("gives the mean of the exact sum, for any speeds and any order of changes", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 5 }), fc.oneof(fc.nat({ max: 1000 }), fc.constant(MAX), fc.constant(MAX - 7))), { maxLength: 60 }), (steps) => {
        const view = loaded(20, []);
        const speeds = new Map<number, number>();
        steps.forEach(([pick, speed], i) => {
          if (speed % 3 === 0 && speeds.has(pick)) {
            view.remove(`c${pick}`, i + 1);
            speeds.delete(pick);
          } else {
            view.put(`c${pick}`, rocket(`c${pick}`, { speed }), i + 1);
            speeds.set(pick, speed);
          }
        });
        const sum = [...speeds.values()].reduce((s, v) => s + BigInt(v), 0n);
        const s = view.summary();
        expect(s.totalSpeed).toBe(sum.toString());
        expect(s.averageSpeed).toBe(speeds.size === 0 ? null : exactMean(sum, speeds.size));
        if (speeds.size > 0 && sum < 2n ** 53n) expect(s.averageSpeed).toBe(Number(sum) / speeds.size);
      }),
    );
  });

  it("rounds a mean above 2^53 to the nearest representable value, never wildly", () => {
    expect(exactMean(3n * BigInt(MAX), 3)).toBe(MAX);
    expect(exactMean(1n, 3)).toBeCloseTo(1 / 3, 15);
    expect(exactMean(1001n, 2)).toBe(500.5);
  });
});

describe("IncrementalSummary bounded labels", () => {
  it("after any changes equals a summary counted from scratch over the rockets left", () => {
    const labels = ["__proto__", "other", "A", "B", "constructor"];
    const opArb = fc.record({
      pick: fc.nat({ max: 7 }),
      remove: fc.boolean(),
      type: fc.constantFrom(...labels),
      mission: fc.constantFrom(...labels),
      status: fc.constantFrom("launched" as const, "exploded" as const),
      pendingMessages: fc.constantFrom(0, 0, 3),
      speed: fc.oneof(fc.nat({ max: 50 }), fc.constant(MAX)),
    });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), fc.nat({ max: 3 }), (ops, top) => {
        const view = loaded(top, []);
        const now = new Map<string, ReturnType<typeof rocket>>();
        ops.forEach(({ pick, remove, ...fields }, i) => {
          const c = `c${pick}`;
          if (remove) {
            view.remove(c, i + 1);
            now.delete(c);
          } else {
            view.put(c, rocket(c, fields), i + 1);
            now.set(c, rocket(c, fields));
          }
        });
        const rockets = [...now.values()];
        const counted = (field: "type" | "mission") => {
          const counts = new Map<string, number>();
          for (const r of rockets) counts.set(r[field], (counts.get(r[field]) ?? 0) + 1);
          const sorted = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
          const listed = sorted.slice(0, top);
          return { listed, rest: sorted.slice(top).reduce((n, [, k]) => n + k, 0), distinct: counts.size };
        };
        const sum = rockets.reduce((t, r) => t + BigInt(r.speed), 0n);
        const s = view.summary();
        const types = counted("type");
        const missions = counted("mission");
        expect(Object.entries(s.byType)).toEqual(types.listed);
        expect(Object.entries(s.byMission)).toEqual(missions.listed);
        expect(s).toMatchObject({
          total: rockets.length,
          waitingOnGaps: rockets.filter((r) => r.pendingMessages > 0).length,
          byStatus: { launched: rockets.filter((r) => r.status === "launched").length, exploded: rockets.filter((r) => r.status === "exploded").length },
          otherTypes: types.rest,
          otherMissions: missions.rest,
          distinctTypes: types.distinct,
          distinctMissions: missions.distinct,
          totalSpeed: sum.toString(),
          averageSpeed: rockets.length === 0 ? null : exactMean(sum, rockets.length),
        });
      }),
    );
  });

  it("lists the top N types and missions by name and counts the rest apart", () => {
    const types = ["A", "A", "A", "B", "B", "C", "D", "E"];
    const view = loaded(2, types.map((type, i) => rocket(`c${i}`, { type, mission: i < 4 ? "M1" : "M2" })));
    const s = view.summary();
    expect(s.byType).toEqual({ A: 3, B: 2 });
    expect(s.otherTypes).toBe(3);
    expect(s.distinctTypes).toBe(5);
    // Two missions fit in N = 2: nothing left out.
    expect(s.byMission).toEqual({ M1: 4, M2: 4 });
    expect(s.otherMissions).toBe(0);
    expect(s.distinctMissions).toBe(2);
  });

  it("breaks ties by name and follows rockets as they change type", () => {
    const view = loaded(1, [rocket("a", { type: "Z" }), rocket("b", { type: "Y" })]);
    expect(view.summary()).toMatchObject({ byType: { Y: 1 }, otherTypes: 1 });
    view.put("a", rocket("a", { type: "X" }), 10);
    expect(view.summary()).toMatchObject({ byType: { X: 1 }, otherTypes: 1 });
    view.put("b", rocket("b", { type: "X" }), 11);
    expect(view.summary()).toMatchObject({ byType: { X: 2 }, otherTypes: 0 });
    expect(view.summary().distinctTypes).toBe(1);
  });

  it("lists a type really named other under its name, apart from the rockets left out", () => {
    const view = loaded(2, [rocket("a", { type: "T" }), rocket("b", { type: "T" }), rocket("c", { type: "other" }), rocket("d", { type: "zz" })]);
    expect(view.summary()).toMatchObject({ byType: { T: 2, other: 1 }, otherTypes: 1, distinctTypes: 3 });
  });

  it("counts __proto__, constructor and toString as types and missions like any other", () => {
    const view = loaded(20, [
      rocket("a", { type: "__proto__", mission: "constructor" }),
      rocket("b", { type: "__proto__", mission: "toString" }),
      rocket("c", { type: "hasOwnProperty", mission: "__proto__" }),
    ]);
    const s = view.summary();
    expect(Object.getPrototypeOf(s.byType)).toBeNull();
    expect(Object.getPrototypeOf(s.byMission)).toBeNull();
    expect(Object.entries(s.byType)).toEqual([["__proto__", 2], ["hasOwnProperty", 1]]);
    expect(Object.entries(s.byMission).sort()).toEqual([["__proto__", 1], ["constructor", 1], ["toString", 1]]);
    expect(JSON.parse(JSON.stringify(s.byType)) as unknown).toEqual(JSON.parse('{"__proto__":2,"hasOwnProperty":1}'));
    expect(view.list({ sort: "channel", descending: false, filter: { type: "__proto__" }, limit: 10 }).total).toBe(2);
  });

  it("stays bounded in size with 50,000 rockets of unique 190-character types, and a read does not grow with the fleet", () => {
    const longType = (i: number) => `${String(i).padStart(6, "0")}-${"x".repeat(183)}`;
    const build = (n: number) => {
      const view = loaded(20, []);
      for (let i = 0; i < n; i += 1) view.put(`c${i}`, rocket(`c${i}`, { type: longType(i), mission: longType(i), speed: i }), i + 1);
      return view;
    };
    const small = build(1_000);
    const large = build(50_000);
    const size = (v: FleetView) => JSON.stringify(v.summary()).length;
    // 2 x 20 labels of ~200 characters, plus the rest: a few kB whatever the fleet.
    expect(size(large)).toBeLessThan(2 * 20 * 210 + 500);
    expect(size(large) - size(small)).toBeLessThan(50);
    expect(large.summary().distinctTypes).toBe(50_000);
    expect(Object.keys(large.summary().byType)).toHaveLength(20);
    expect(large.summary().otherTypes).toBe(50_000 - 20);

    // Work per read: label entries visited, counted, not timed.
    const visitedPerRead = (v: FleetView, i: number) => {
      const before = v.summaryLabelsVisited;
      v.put(`c${i}`, rocket(`c${i}`, { type: "Falcon-9", speed: 1 }), 1_000_000 + i);
      v.summary();
      return v.summaryLabelsVisited - before;
    };
    expect(visitedPerRead(large, 7)).toBe(visitedPerRead(small, 7));
    expect(visitedPerRead(large, 8)).toBeLessThanOrEqual(40);
    // Unchanged between reads: the same object, no work at all.
    const before = large.summaryLabelsVisited;
    const first = large.summary();
    for (let i = 0; i < 40; i += 1) expect(large.summary()).toBe(first);
    expect(large.summaryLabelsVisited).toBe(before);
  });
});
