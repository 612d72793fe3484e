import { getEventListeners } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Rocket } from "../../internal/domain/mod.js";
import { compareRocket, currentRockets, verifyFleet } from "./verifier.js";

// A stand-in for the query API's read contract (GET /rockets pages and
// GET /rockets/:channel), so the verifier's polling can be tested alone.
function fakeApi(view: Map<string, Record<string, unknown>>) {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests += 1;
    const url = new URL(req.url!, "http://x");
    const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (url.pathname === "/rockets") {
      const all = [...view.values()].sort((a, b) => String(a["channel"]).localeCompare(String(b["channel"])));
      const limit = Number(url.searchParams.get("limit") ?? 100);
      const from = Number(url.searchParams.get("cursor") ?? 0);
      const page = all.slice(from, from + limit);
      return send(200, { rockets: page, total: all.length, nextCursor: from + limit < all.length ? String(from + limit) : null });
    }
    const rocket = view.get(decodeURIComponent(url.pathname.slice("/rockets/".length)));
    return rocket ? send(200, rocket) : send(404, { title: "not found" });
  });
  return { server, requests: () => requests };
}

const rocket = (i: number, over: Partial<Rocket> = {}): Rocket => ({
  channel: `c${String(i).padStart(4, "0")}`,
  type: "Falcon-9",
  mission: "ARTEMIS",
  speed: 500 + i,
  status: "launched",
  explosionReason: null,
  launchedAt: "2025-04-02T09:21:50.458989221+02:00",
  updatedAt: "2025-04-02T09:22:50.1+02:00",
  lastMessageNumber: 10,
  ...over,
});

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function start(view: Map<string, Record<string, unknown>>) {
  const api = fakeApi(view);
  await new Promise<void>((r) => api.server.listen(0, "127.0.0.1", r));
  close = () => new Promise((r) => api.server.close(() => r()));
  return { url: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, requests: api.requests };
}

describe("compareRocket", () => {
  it("names every field that differs, and a rocket still waiting for a gap", () => {
    const expected = rocket(1);
    expect(compareRocket(expected, { ...expected, pendingMessages: 0 })).toEqual([]);
    expect(compareRocket(expected, undefined)).toEqual(["missing"]);
    expect(compareRocket(expected, { ...expected, speed: 1, updatedAt: "x", pendingMessages: 3 })).toEqual([
      "speed: expected 501, got 1",
      'updatedAt: expected "2025-04-02T09:22:50.1+02:00", got "x"',
      "pendingMessages: expected 0, got 3",
    ]);
  });
});

describe("verifyFleet", () => {
  it("waits until the view catches up, then reports it settled", async () => {
    const expected = new Map([1, 2, 3].map((i) => [rocket(i).channel, rocket(i)]));
    const view = new Map<string, Record<string, unknown>>([[rocket(1).channel, { ...rocket(1), pendingMessages: 0 }]]);
    const api = await start(view);
    setTimeout(() => {
      view.set(rocket(2).channel, { ...rocket(2), pendingMessages: 0 });
      view.set(rocket(3).channel, { ...rocket(3), pendingMessages: 0 });
    }, 150);
    const started = performance.now();
    const result = await verifyFleet({ apiUrl: api.url, expected, timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, matched: 3, mismatches: [] });
    expect(result.settledAt - started).toBeGreaterThanOrEqual(140);
  });

  it("gives up at the deadline and lists each rocket that is off and why", async () => {
    const expected = new Map([1, 2].map((i) => [rocket(i).channel, rocket(i)]));
    const view = new Map<string, Record<string, unknown>>([[rocket(1).channel, { ...rocket(1), lastMessageNumber: 9, pendingMessages: 1 }]]);
    const api = await start(view);
    const result = await verifyFleet({ apiUrl: api.url, expected, timeoutMs: 200 });
    expect(result.ok).toBe(false);
    expect(result.mismatches).toEqual([
      { channel: rocket(1).channel, problems: ["lastMessageNumber: expected 10, got 9", "pendingMessages: expected 0, got 1"] },
      { channel: rocket(2).channel, problems: ["missing"] },
    ]);
  });

  it("pages through the list when many rockets are to be checked", async () => {
    const rockets = Array.from({ length: 2500 }, (_, i) => rocket(i));
    const expected = new Map(rockets.map((r) => [r.channel, r]));
    const view = new Map<string, Record<string, unknown>>(rockets.map((r) => [r.channel, { ...r, pendingMessages: 0 }]));
    const api = await start(view);
    const result = await verifyFleet({ apiUrl: api.url, expected, timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, matched: 2500 });
    expect(api.requests()).toBe(3);
  });

  it("leaves no listener on the caller's signal, however long it polls", async () => {
    const expected = new Map([1, 2, 3].map((i) => [rocket(i).channel, rocket(i)]));
    const api = await start(new Map());
    const caller = new AbortController();
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, getEventListeners(caller.signal, "abort").length)), 1);
    // Long enough for more than 50 polls even on a loaded machine (48 in 1 s once, with the whole suite running).
    const result = await verifyFleet({ apiUrl: api.url, expected, timeoutMs: 3000, signal: caller.signal });
    clearInterval(sampler);
    expect(result.ok).toBe(false);
    expect(api.requests()).toBeGreaterThan(50);
    // At most one per request in flight, and none once it is done.
    expect(most).toBeLessThanOrEqual(8);
    expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
  });

  it("tells progress after every poll", async () => {
    const expected = new Map([1, 2].map((i) => [rocket(i).channel, rocket(i)]));
    const api = await start(new Map([[rocket(1).channel, { ...rocket(1), pendingMessages: 0 }]]));
    const polls: number[] = [];
    await verifyFleet({ apiUrl: api.url, expected, timeoutMs: 100, onPoll: (matched) => polls.push(matched) });
    expect(polls.length).toBeGreaterThan(1);
    expect(new Set(polls)).toEqual(new Set([1]));
  });
});

describe("currentRockets", () => {
  it("says which of the channels the API already holds, one by one or through the list", async () => {
    const rockets = Array.from({ length: 150 }, (_, i) => rocket(i));
    const api = await start(new Map(rockets.slice(0, 3).map((r) => [r.channel, { ...r }])));
    const few = await currentRockets(api.url, [rockets[0]!.channel, rockets[140]!.channel]);
    expect([...few].map(([c, r]) => [c, r?.["speed"]])).toEqual([
      [rockets[0]!.channel, 500],
      [rockets[140]!.channel, undefined],
    ]);
    const many = await currentRockets(api.url, rockets.map((r) => r.channel));
    expect([...many.keys()].sort()).toEqual(rockets.slice(0, 3).map((r) => r.channel));
  });
});
