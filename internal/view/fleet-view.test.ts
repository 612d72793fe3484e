import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FleetView, MAX_REMEMBERED_REMOVALS, type ListQuery, type RocketChange, type RocketFilter } from "./fleet-view.js";
import type { RocketView } from "./rocket-view.js";
import { rocketFixture as rocket } from "./rocket.fixture.js";
import { SORT_KEYS, sortValueOf, type SortKey } from "./sort-keys.js";

const TYPES = ["Falcon-9", "Atlas-H", "Titan-IV"];
const MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "SKYLAB"];
const TIMES = [
  "2022-02-02T19:39:05.86337+01:00",
  "2022-02-02T18:39:05Z",
  "2022-02-02T20:39:05.9+02:00",
  "2022-02-02T18:39:06.1Z",
  "2022-02-02T18:40:00-00:30",
];

const fieldsArb = fc.record({
  type: fc.constantFrom(...TYPES),
  mission: fc.constantFrom(...MISSIONS),
  speed: fc.integer({ min: 0, max: 12 }),
  status: fc.constantFrom("launched" as const, "exploded" as const),
  launchedAt: fc.constantFrom(...TIMES),
  updatedAt: fc.constantFrom(...TIMES),
});

const fleetArb = fc
  .uniqueArray(fc.stringMatching(/^[0-9a-f]{1,6}$/), { minLength: 0, maxLength: 120 })
  .chain((channels) => fc.tuple(fc.constant(channels), fc.array(fieldsArb, { minLength: channels.length, maxLength: channels.length })))
  .map(([channels, fields]) => channels.map((c, i) => rocket(c, fields[i])));

const filterArb: fc.Arbitrary<RocketFilter> = fc.record(
  {
    status: fc.constantFrom("launched", "exploded"),
    type: fc.constantFrom(...TYPES, "Unknown"),
    mission: fc.constantFrom(...MISSIONS),
  },
  { requiredKeys: [] },
);

const queryArb = fc.record({
  sort: fc.constantFrom(...SORT_KEYS),
  descending: fc.boolean(),
  filter: filterArb,
  limit: fc.integer({ min: 1, max: 9 }),
});

/** The order the API promises, computed the slow way: sort value, then channel; desc is the exact reverse. */
function expectedOrder(rockets: RocketView[], q: Pick<ListQuery, "sort" | "descending" | "filter">): string[] {
  const matching = rockets.filter((r) =>
    (["status", "type", "mission"] as const).every((f) => q.filter[f] === undefined || r[f] === q.filter[f]),
  );
  const key = (r: RocketView) => sortValueOf(r, q.sort);
  matching.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x !== y) return x < y ? -1 : 1;
    return a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0;
  });
  const channels = matching.map((r) => r.channel);
  return q.descending ? channels.reverse() : channels;
}

function load(rockets: RocketView[]): FleetView {
  const view = new FleetView();
  view.beginSync();
  rockets.forEach((r, i) => view.put(r.channel, r, i + 1));
  view.endSync();
  return view;
}

/** Reads every page of a query; `between` runs after each page. */
function pageThrough(view: FleetView, q: Omit<ListQuery, "after">, between: (page: number) => void = () => {}): string[][] {
  const pages: string[][] = [];
  let after: ListQuery["after"];
  for (let n = 0; n < 10_000; n += 1) {
    const page = view.list({ ...q, after });
    pages.push(page.rockets.map((r) => r.channel));
    expect(page.rockets.length).toBeLessThanOrEqual(q.limit);
    if (!page.next) return pages;
    expect(page.rockets.length).toBe(q.limit);
    after = page.next;
    between(n);
  }
  throw new Error("pagination did not end");
}

describe("FleetView listing", () => {
  it("pages through every matching rocket exactly once, in order, for every sort, order, filter and page size", () => {
    fc.assert(
      fc.property(fleetArb, queryArb, (rockets, q) => {
        const view = load(rockets);
        const expected = expectedOrder(rockets, q);
        const pages = pageThrough(view, q);
        expect(pages.flat()).toEqual(expected);
        expect(view.list({ ...q }).total).toBe(expected.length);
      }),
      { numRuns: 300 },
    );
  });

  it("never repeats or skips an unchanged rocket while others change, arrive and leave between pages", () => {
    const changeArb = fc.record({ pick: fc.nat(), fields: fieldsArb, kind: fc.constantFrom("change", "add", "remove") });
    fc.assert(
      fc.property(fleetArb, queryArb, fc.array(changeArb, { maxLength: 200 }), fc.integer({ min: 1, max: 4 }), (rockets, q, changes, perPage) => {
        // Even positions are never touched; odd positions and newcomers churn.
        const stable = rockets.filter((_, i) => i % 2 === 0);
        const churn = rockets.filter((_, i) => i % 2 === 1).map((r) => r.channel);
        const view = load(rockets);
        let revision = rockets.length;
        let next = 0;
        const pages = pageThrough(view, q, () => {
          for (let k = 0; k < perPage && next < changes.length; k += 1, next += 1) {
            const c = changes[next]!;
            revision += 1;
            if (c.kind === "add") {
              const channel = `new-${revision}`;
              churn.push(channel);
              view.put(channel, rocket(channel, c.fields), revision);
            } else if (churn.length > 0) {
              const channel = churn[c.pick % churn.length]!;
              if (c.kind === "remove") view.remove(channel, revision);
              else view.put(channel, rocket(channel, c.fields), revision);
            }
          }
        });
        const seen = pages.flat();
        const stableChannels = new Set(stable.map((r) => r.channel));
        const stableSeen = seen.filter((c) => stableChannels.has(c));
        expect(stableSeen).toEqual(expectedOrder(stable, q));
      }),
      { numRuns: 300 },
    );
  });

  it("sorts speed descending with the highest first and ties by channel, reversed", () => {
    const view = load([rocket("b", { speed: 600 }), rocket("a", { speed: 600 }), rocket("c", { speed: 900 }), rocket("d", { speed: 100 })]);
    const page = view.list({ sort: "speed", descending: true, filter: {}, limit: 10 });
    expect(page.rockets.map((r) => r.channel)).toEqual(["c", "b", "a", "d"]);
    expect(page.next).toBeNull();
  });

  it("filters by exact status, type and mission together and counts the matches", () => {
    const view = load([
      rocket("a", { status: "exploded", type: "Atlas-H", mission: "APOLLO" }),
      rocket("b", { status: "exploded", type: "Atlas-H", mission: "GEMINI" }),
      rocket("c", { status: "launched", type: "Atlas-H", mission: "APOLLO" }),
      rocket("d", { status: "exploded", type: "atlas-h", mission: "APOLLO" }),
    ]);
    const page = view.list({ sort: "channel", descending: false, filter: { status: "exploded", type: "Atlas-H", mission: "APOLLO" }, limit: 10 });
    expect(page.rockets.map((r) => r.channel)).toEqual(["a"]);
    expect(page.total).toBe(1);
    expect(view.list({ sort: "channel", descending: false, filter: { type: "Nope" }, limit: 10 })).toEqual({ rockets: [], total: 0, next: null });
  });

  it("moves a rocket in every order when its values change", () => {
    const view = load([rocket("a", { speed: 100 }), rocket("b", { speed: 200 })]);
    view.put("a", rocket("a", { speed: 300, mission: "SKYLAB", updatedAt: "2030-01-01T00:00:00Z" }), 10);
    const order = (sort: SortKey) => view.list({ sort, descending: false, filter: {}, limit: 10 }).rockets.map((r) => r.channel);
    expect(order("speed")).toEqual(["b", "a"]);
    expect(order("mission")).toEqual(["b", "a"]);
    expect(order("updatedAt")).toEqual(["b", "a"]);
    expect(view.list({ sort: "channel", descending: false, filter: { mission: "ARTEMIS" }, limit: 10 }).total).toBe(1);
  });
});

describe("FleetView changes and summary", () => {
  it("notifies subscribers of visible changes only", () => {
    const view = load([]);
    const all: RocketChange[] = [];
    const stop = view.subscribe((c) => all.push(c));
    expect(view.put("a", rocket("a"), 1)).toBe(true);
    expect(view.put("a", rocket("a"), 2)).toBe(false);
    view.put("b", rocket("b"), 3);
    view.put("a", rocket("a", { speed: 700 }), 4);
    view.remove("a", 5);
    stop();
    view.put("a", rocket("a"), 6);
    expect(all.map((c) => [c.channel, c.rocket?.speed ?? null, c.revision])).toEqual([
      ["a", 500, 1],
      ["b", 500, 3],
      ["a", 700, 4],
      ["a", null, 5],
    ]);
    expect(view.get("a")?.revision).toBe(6);
  });

  it("counts by status, type and mission and averages speed", () => {
    const view = load([
      rocket("a", { speed: 100, status: "exploded", type: "Atlas-H" }),
      rocket("b", { speed: 200, mission: "APOLLO" }),
      rocket("c", { speed: 600 }),
    ]);
    view.put("c", rocket("c", { speed: 900, pendingMessages: 4 }), 9);
    expect(view.summary()).toEqual({
      total: 3,
      waitingOnGaps: 1,
      byStatus: { exploded: 1, launched: 2 },
      byType: { "Atlas-H": 1, "Falcon-9": 2 },
      byMission: { ARTEMIS: 2, APOLLO: 1 },
      otherTypes: 0,
      otherMissions: 0,
      distinctTypes: 2,
      distinctMissions: 2,
      totalSpeed: "1200",
      averageSpeed: 400,
    });
    view.remove("a", 10);
    view.remove("b", 11);
    view.remove("c", 12);
    expect(view.summary()).toEqual({ total: 0, waitingOnGaps: 0, byStatus: { launched: 0, exploded: 0 }, byType: {}, byMission: {}, otherTypes: 0, otherMissions: 0, distinctTypes: 0, distinctMissions: 0, totalSpeed: "0", averageSpeed: null });
  });

  it("is ready only after the first sync pass, and a later pass drops what it did not see", () => {
    const view = new FleetView();
    view.beginSync();
    view.put("a", rocket("a"), 1);
    view.put("b", rocket("b"), 2);
    view.put("c", rocket("c"), 3);
    expect(view.ready).toBe(false);
    expect(view.endSync()).toBe(0);
    expect(view.ready).toBe(true);
    const removed: string[] = [];
    view.subscribe((c) => c.rocket === null && removed.push(c.channel));
    view.beginSync();
    view.put("a", rocket("a"), 1);
    view.retain("c");
    expect(view.endSync()).toBe(1);
    expect(removed).toEqual(["b"]);
    expect(view.list({ sort: "channel", descending: false, filter: {}, limit: 10 }).rockets.map((r) => r.channel)).toEqual(["a", "c"]);
  });
});

describe("FleetView resume points", () => {
  const changeArb = fc.record({ pick: fc.nat({ max: 12 }), speed: fc.integer({ min: 0, max: 3 }), remove: fc.boolean() });

  it("lists exactly what a client that saw every change up to any revision is missing", () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 80 }), fc.nat(), (changes, cut) => {
        const view = new FleetView();
        view.beginSync();
        view.endSync();
        const seenByClient = new Map<string, number>();
        const stopAt = changes.length === 0 ? 0 : cut % (changes.length + 1);
        let clientRevision = 0;
        changes.forEach((c, i) => {
          const channel = `r${c.pick}`;
          const revision = i + 1;
          if (c.remove) view.remove(channel, revision);
          else view.put(channel, rocket(channel, { speed: c.speed }), revision);
          if (i < stopAt) {
            clientRevision = revision;
            if (c.remove) seenByClient.delete(channel);
            else seenByClient.set(channel, c.speed);
          }
        });
        const missed = view.changesSince(clientRevision)!;
        expect(missed.map((m) => m.revision)).toEqual([...missed.map((m) => m.revision)].sort((a, b) => a - b));
        for (const m of missed) {
          if (m.removed) seenByClient.delete(m.channel);
          else seenByClient.set(m.channel, view.get(m.channel)!.rocket.speed);
        }
        const now = new Map<string, number>();
        for (const r of view.list({ sort: "channel", descending: false, filter: {}, limit: 1000 }).rockets) now.set(r.channel, r.speed);
        expect(seenByClient).toEqual(now);
      }),
      { numRuns: 300 },
    );
  });

  it("limits the list to one channel, and snapshots every rocket oldest revision first", () => {
    const view = load([rocket("a"), rocket("b"), rocket("c")]);
    view.put("a", rocket("a", { speed: 1 }), 7);
    view.remove("b", 8);
    expect(view.changesSince(3)).toEqual([
      { channel: "a", revision: 7, removed: false },
      { channel: "b", revision: 8, removed: true },
    ]);
    expect(view.changesSince(3, "b")).toEqual([{ channel: "b", revision: 8, removed: true }]);
    expect(view.changesSince(3, "c")).toEqual([]);
    expect(view.snapshot().map((m) => m.channel)).toEqual(["c", "a"]);
    expect(view.revision).toBe(8);
  });

  it("cannot answer from ahead of the view, from before forgotten removals, or across a resync pass that removed rockets", () => {
    const view = load([rocket("a"), rocket("b")]);
    expect(view.changesSince(3)).toBeUndefined();
    expect(view.changesSince(2)).toEqual([]);
    for (let i = 0; i < MAX_REMEMBERED_REMOVALS * 1.2; i += 1) view.remove(`gone-${i}`, 10 + i);
    expect(view.changesSince(2)).toBeUndefined();
    expect(view.changesSince(view.revision)).toEqual([]);
    const latest = view.revision;
    view.beginSync();
    view.put("a", rocket("a"), 1);
    view.endSync();
    expect(view.changesSince(latest)).toBeUndefined();
    view.put("a", rocket("a", { speed: 3 }), latest + 5);
    expect(view.changesSince(latest + 1)).toEqual([{ channel: "a", revision: latest + 5, removed: false }]);
  });
});
