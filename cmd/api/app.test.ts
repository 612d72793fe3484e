import { afterEach, describe, expect, it } from "vitest";
import { connect } from "node:net";
import type { FastifyInstance } from "fastify";
import { FleetView } from "../../internal/view/fleet-view.js";
import type { RocketView } from "../../internal/view/rocket-view.js";
import { FLEET_TOP_N, topCounts } from "./metrics.js";
import { loadedView, rocketFixture as rocket, testApp } from "./app.fixture.js";
import { API_REFERENCE_CSP } from "../../internal/http/api-reference.js";

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function appOver(view: FleetView) {
  const t = await testApp(view);
  apps.push(t.app);
  return t;
}

const FLEET: RocketView[] = [
  rocket("c3", { type: "Atlas-H", mission: "APOLLO", speed: 900, launchedAt: "2022-02-02T10:00:00Z", updatedAt: "2022-02-02T12:00:00Z" }),
  rocket("a1", { speed: 700, launchedAt: "2022-02-02T09:00:00Z", updatedAt: "2022-02-02T13:00:00+02:00" }),
  rocket("b2", {
    type: "Titan-IV",
    mission: "GEMINI",
    speed: 700,
    status: "exploded",
    explosionReason: "FROZEN_O_RINGS",
    launchedAt: "2022-02-02T11:00:00+03:00",
    updatedAt: "2022-02-02T11:30:00Z",
  }),
  rocket("d4", { type: "Atlas-H", speed: 100, pendingMessages: 3, launchedAt: "2022-02-02T08:00:00Z", updatedAt: "2022-02-02T10:00:00Z" }),
];

async function listChannels(app: FastifyInstance, query: string): Promise<string[]> {
  const res = await app.inject(`/rockets?${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { rockets: RocketView[] }).rockets.map((r) => r.channel);
}

async function problemAt(app: FastifyInstance, url: string) {
  const res = await app.inject(url);
  expect(res.statusCode, res.body).toBe(400);
  expect(res.headers["content-type"]).toContain("application/problem+json");
  return res.json() as { status: number; errors: { path: string; reason: string }[] };
}

describe("GET /rockets/:channel", () => {
  it("answers the rocket with every contract field and an ETag", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const res = await app.inject("/rockets/b2");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      channel: "b2",
      type: "Titan-IV",
      mission: "GEMINI",
      speed: 700,
      status: "exploded",
      explosionReason: "FROZEN_O_RINGS",
      launchedAt: "2022-02-02T11:00:00+03:00",
      updatedAt: "2022-02-02T11:30:00Z",
      lastMessageNumber: 1,
      pendingMessages: 0,
    });
    expect(res.headers["etag"]).toBe('"3"');
  });

  it("answers 304 to a matching If-None-Match, and the new state once the rocket changed", async () => {
    const view = loadedView(FLEET);
    const { app } = await appOver(view);
    const first = await app.inject("/rockets/a1");
    const etag = first.headers["etag"] as string;
    const unchanged = await app.inject({ url: "/rockets/a1", headers: { "if-none-match": `W/"x", ${etag}` } });
    expect(unchanged.statusCode).toBe(304);
    expect(unchanged.body).toBe("");
    expect(unchanged.headers["etag"]).toBe(etag);
    view.put("a1", rocket("a1", { speed: 800 }), 42);
    const changed = await app.inject({ url: "/rockets/a1", headers: { "if-none-match": etag } });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers["etag"]).toBe('"42"');
    expect(changed.json()).toMatchObject({ speed: 800 });
  });

  it("answers 404 as a problem document for a channel that never launched", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const res = await app.inject("/rockets/zz");
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json()).toMatchObject({ status: 404, title: "Rocket not found" });
  });

  it("answers 400 naming the channel for an id that cannot be a channel", async () => {
    const { app } = await appOver(loadedView(FLEET));
    for (const bad of ["a.b", "a%20b", "a*", "a%3E", "x".repeat(129)]) {
      const problem = await problemAt(app, `/rockets/${bad}`);
      expect(problem.errors[0]?.path).toBe("channel");
    }
  });

  it("serializes through the response schema, so nothing beyond the contract leaks", async () => {
    const view = new FleetView();
    view.beginSync();
    view.put("e5", { ...rocket("e5"), secret: "internal" } as RocketView, 1);
    view.endSync();
    const { app } = await appOver(view);
    const body = (await app.inject("/rockets/e5")).json() as Record<string, unknown>;
    expect(body).not.toHaveProperty("secret");
    const listed = (await app.inject("/rockets")).json() as { rockets: Record<string, unknown>[] };
    expect(listed.rockets[0]).not.toHaveProperty("secret");
  });

  it("keeps /rockets/summary and /rockets/stream out of reach of /rockets/:channel", async () => {
    const { app } = await appOver(loadedView([...FLEET, rocket("summary")]));
    const summary = await app.inject("/rockets/summary");
    expect(summary.json()).toHaveProperty("byStatus");
    // Matched as themselves, so no channel parameter is extracted.
    expect(app.findRoute({ method: "GET", url: "/rockets/stream" })?.params).toEqual({});
    expect(app.findRoute({ method: "GET", url: "/rockets/summary" })?.params).toEqual({});
    expect(app.findRoute({ method: "GET", url: "/rockets/a1" })?.params).toEqual({ channel: "a1" });
  });
});

describe("GET /rockets", () => {
  it("lists rockets by channel by default with the total and no cursor on the last page", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const res = await app.inject("/rockets");
    expect(res.json()).toMatchObject({ total: 4, nextCursor: null });
    expect(await listChannels(app, "")).toEqual(["a1", "b2", "c3", "d4"]);
  });

  it("sorts by every key, ascending and descending, ties broken by channel", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const cases: [string, string[]][] = [
      ["sort=channel", ["a1", "b2", "c3", "d4"]],
      ["sort=type", ["c3", "d4", "a1", "b2"]],
      ["sort=mission", ["c3", "a1", "d4", "b2"]],
      ["sort=speed", ["d4", "a1", "b2", "c3"]],
      ["sort=status", ["b2", "a1", "c3", "d4"]],
      // b2 launched 08:00Z (11:00+03:00), like d4: by instant, not by text, then by channel.
      ["sort=launchedAt", ["b2", "d4", "a1", "c3"]],
      // a1 updated 11:00Z (13:00+02:00).
      ["sort=updatedAt", ["d4", "a1", "b2", "c3"]],
      ["sort=speed&order=desc", ["c3", "b2", "a1", "d4"]],
      ["sort=-speed", ["c3", "b2", "a1", "d4"]],
      ["sort=-speed&order=desc", ["c3", "b2", "a1", "d4"]],
      ["sortBy=speed", ["d4", "a1", "b2", "c3"]],
      ["sort_by=-launchedAt", ["c3", "a1", "d4", "b2"]],
      ["sort=speed&sortBy=speed", ["d4", "a1", "b2", "c3"]],
      ["order=desc", ["d4", "c3", "b2", "a1"]],
    ];
    for (const [query, expected] of cases) expect(await listChannels(app, query), query).toEqual(expected);
  });

  it("filters exactly by status, type and mission, with the total of matches", async () => {
    const { app } = await appOver(loadedView(FLEET));
    expect(await listChannels(app, "status=exploded")).toEqual(["b2"]);
    expect(await listChannels(app, "type=Atlas-H")).toEqual(["c3", "d4"]);
    expect(await listChannels(app, "type=atlas-h")).toEqual([]);
    expect(await listChannels(app, "mission=ARTEMIS&sort=-speed")).toEqual(["a1", "d4"]);
    expect(await listChannels(app, "type=Atlas-H&mission=APOLLO&status=launched")).toEqual(["c3"]);
    expect((await app.inject("/rockets?type=Atlas-H&limit=1")).json()).toMatchObject({ total: 2 });
  });

  it("pages with a cursor that continues the same query to the end", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const seen: string[] = [];
    let url = "/rockets?sort=-speed&limit=1";
    for (let i = 0; i < 10; i += 1) {
      const page = (await app.inject(url)).json() as { rockets: RocketView[]; total: number; nextCursor: string | null };
      expect(page.total).toBe(4);
      seen.push(...page.rockets.map((r) => r.channel));
      if (page.nextCursor === null) break;
      url = `/rockets?sort=-speed&limit=1&cursor=${page.nextCursor}`;
    }
    expect(seen).toEqual(["c3", "b2", "a1", "d4"]);
  });

  it("answers 400 naming every invalid parameter", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const cases: [string, string[]][] = [
      ["sort=bogus", ["sort"]],
      ["sortBy=-", ["sortBy"]],
      ["order=up", ["order"]],
      ["limit=0", ["limit"]],
      ["limit=1001", ["limit"]],
      ["limit=ten", ["limit"]],
      ["limit=1&limit=2", ["limit"]],
      ["status=flying", ["status"]],
      ["type=", ["type"]],
      ["sorty=speed", ["sorty"]],
      ["cursor=%%%", ["cursor"]],
      ["cursor=abc", ["cursor"]],
      ["sort=speed&sortBy=type", ["sortBy"]],
      ["sort=-speed&order=asc", ["order"]],
      ["limit=0&order=up&status=flying", ["limit", "order", "status"]],
    ];
    for (const [query, paths] of cases) {
      const problem = await problemAt(app, `/rockets?${query}`);
      expect(problem.errors.map((e) => e.path).sort(), query).toEqual(paths);
    }
  });

  it("refuses a cursor made for another sort or filter", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const { nextCursor } = (await app.inject("/rockets?sort=speed&limit=1")).json() as { nextCursor: string };
    expect((await problemAt(app, `/rockets?sort=type&limit=1&cursor=${nextCursor}`)).errors[0]?.path).toBe("cursor");
    expect((await problemAt(app, `/rockets?sort=speed&status=launched&cursor=${nextCursor}`)).errors[0]?.path).toBe("cursor");
  });
});

describe("GET /rockets/summary", () => {
  it("counts by status, type and mission and averages speed", async () => {
    const { app } = await appOver(loadedView(FLEET));
    expect((await app.inject("/rockets/summary")).json()).toEqual({
      total: 4,
      waitingOnGaps: 1,
      byStatus: { launched: 3, exploded: 1 },
      byType: { "Atlas-H": 2, "Falcon-9": 1, "Titan-IV": 1 },
      byMission: { APOLLO: 1, ARTEMIS: 2, GEMINI: 1 },
      otherTypes: 0,
      otherMissions: 0,
      distinctTypes: 3,
      distinctMissions: 3,
      totalSpeed: "2400",
      averageSpeed: 600,
    });
  });

  it("serializes bounded label sets, __proto__ among them, and an exact sum past 2^53", async () => {
    const view = new FleetView(2);
    view.beginSync();
    const max = Number.MAX_SAFE_INTEGER;
    ["__proto__", "__proto__", "__proto__", "constructor", "constructor", "c", "d"].forEach((type, i) =>
      view.put(`r${i}`, rocket(`r${i}`, { type, mission: "__proto__", speed: i < 2 ? max : 0 }), i + 1),
    );
    view.endSync();
    const { app } = await appOver(view);
    const res = await app.inject("/rockets/summary");
    expect(res.body).toContain('"byType":{"__proto__":3,"constructor":2}');
    expect(res.body).toContain('"byMission":{"__proto__":7}');
    expect(res.json()).toMatchObject({ total: 7, otherTypes: 2, otherMissions: 0, distinctTypes: 4, distinctMissions: 1, totalSpeed: (2n * BigInt(max)).toString() });
  });
});

describe("readiness and service routes", () => {
  it("is not ready and answers 503 on data routes until the view's first sync pass is done", async () => {
    const view = new FleetView();
    view.beginSync();
    view.put("a1", rocket("a1"), 1);
    const { app } = await appOver(view);
    expect((await app.inject("/readyz")).statusCode).toBe(503);
    const early = await app.inject("/rockets/a1");
    expect(early.statusCode).toBe(503);
    expect(early.headers["retry-after"]).toBe("1");
    expect((await app.inject("/rockets")).statusCode).toBe(503);
    view.endSync();
    expect((await app.inject("/readyz")).statusCode).toBe(200);
    expect((await app.inject("/rockets/a1")).statusCode).toBe(200);
    expect((await app.inject("/healthz")).statusCode).toBe(200);
  });

  it("exposes the view metrics and counts requests by route template", async () => {
    const { app } = await appOver(loadedView(FLEET));
    await app.inject("/rockets/a1");
    await app.inject("/rockets/nope");
    const text = (await app.inject("/metrics")).body;
    expect(text).toMatch(/rockets_api_rockets_in_view\{service="api"\} 4/);
    expect(text).toMatch(/rockets_api_view_ready\{service="api"\} 1/);
    expect(text).toMatch(/rockets_api_sse_clients\{service="api"\} 0/);
    expect(text).toContain("rockets_api_view_update_lag_seconds_bucket");
    expect(text).toMatch(/rockets_api_fleet_rockets\{status="exploded",service="api"\} 1/);
    expect(text).toMatch(/rockets_api_fleet_rockets\{status="launched",service="api"\} 3/);
    expect(text).toMatch(/rockets_api_fleet_rockets_by_type\{type="Atlas-H",service="api"\} 2/);
    expect(text).toMatch(/rockets_api_fleet_rockets_by_mission\{mission="ARTEMIS",service="api"\} 2/);
    expect(text).toMatch(/rockets_api_fleet_average_speed\{service="api"\} 600/);
    expect(text).toMatch(/rockets_api_fleet_rockets_waiting_on_gaps\{service="api"\} 1/);
    expect(text).toMatch(/rockets_http_requests_total\{method="GET",route="\/rockets\/:channel",status="200",service="api"\} 1/);
    expect(text).toMatch(/rockets_http_requests_total\{method="GET",route="\/rockets\/:channel",status="404",service="api"\} 1/);
  });

  it("publishes an OpenAPI document generated from the route schemas, with interactive docs", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const doc = (await app.inject("/openapi.json")).json() as {
      openapi: string;
      paths: Record<string, Record<string, { parameters?: { name: string }[]; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of ["/rockets", "/rockets/{channel}", "/rockets/summary", "/rockets/stream", "/rockets/{channel}/stream", "/rockets/{channel}/events"]) {
      expect(doc.paths, path).toHaveProperty([path, "get"]);
    }
    // The sort aliases are accepted (tested above) but only one spelling is advertised.
    const listParams = doc.paths["/rockets"]!["get"]!.parameters!.map((p) => p.name).sort();
    expect(listParams).toEqual(["cursor", "limit", "mission", "order", "sort", "status", "type"].sort());
    expect(doc.paths["/rockets/{channel}"]!["get"]!.parameters!.map((p) => p.name).sort()).toEqual(["asOf", "at", "channel"]);
    // Every documented answer says what it means, not a generic line.
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [code, response] of Object.entries(operation.responses)) {
          const description = (response as { description?: string }).description ?? "";
          expect(description.length, `${method} ${path} ${code}`).toBeGreaterThan(10);
          expect(description, `${method} ${path} ${code}`).not.toBe("Default Response");
        }
      }
    }
    expect(Object.keys(doc.components.schemas["Rocket"]!.properties)).toContain("pendingMessages");
    const docs = await app.inject("/docs");
    expect([200, 302]).toContain(docs.statusCode);
    const page = await app.inject(docs.statusCode === 302 ? (docs.headers["location"] as string) : "/docs");
    expect(page.body).toContain("swagger");
  });

  it("labels fleet gauges with at most the top types and missions plus other, never a channel", async () => {
    const fleet = Array.from({ length: 40 }, (_, i) => rocket(`c${i}`, { type: `T${i % 14}`, mission: `M${i % 3}` }));
    const { app } = await appOver(loadedView(fleet));
    const text = (await app.inject("/metrics")).body;
    const types = [...text.matchAll(/rockets_api_fleet_rockets_by_type\{type="([^"]+)"[^}]*\} (\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(types).toHaveLength(FLEET_TOP_N + 1);
    expect(types.reduce((sum, [, n]) => sum + n, 0)).toBe(40);
    // T0..T11 hold 3 rockets each, T12 and T13 2: the ten largest (ties by name) are named.
    expect(Object.fromEntries(types)).toMatchObject({ T0: 3, T10: 3, T11: 3, T2: 3, other: 3 + 3 + 2 + 2 });
    expect(text).not.toMatch(/c12"/);
    expect(topCounts({ a: 1, b: 2 }, 10)).toEqual(new Map([["b", 2], ["a", 1]]));
    expect(topCounts({ a: 5, other: 1, c: 2 }, 1)).toEqual(new Map([["a", 5], ["other", 3]]));
    // Rockets the summary already left out are added to other.
    expect(topCounts({ a: 5, c: 2 }, 1, 4)).toEqual(new Map([["a", 5], ["other", 6]]));
    expect(topCounts({ a: 5 }, 1, 4)).toEqual(new Map([["a", 5], ["other", 4]]));
  });

  it("answers unknown routes with a 404 problem document", async () => {
    const { app } = await appOver(loadedView(FLEET));
    const res = await app.inject("/nope");
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toContain("application/problem+json");
  });
});

describe("the API's HTTP bounds (real server on loopback)", () => {
  it("closes a connection whose declared body stalls within the request timeout, while /healthz answers", async () => {
    const t = await testApp(loadedView([rocket("a1")]), {}, undefined, undefined, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    apps.push(t.app);
    const base = await t.app.listen({ host: "127.0.0.1", port: 0 });
    const socket = connect(Number(new URL(base).port), "127.0.0.1");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (answer += chunk));
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now() - started)));
    socket.write("GET /rockets HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const tookMs = await closed;
    // A GET is answered without its body; the connection waiting for the rest is what the timeout ends.
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(tookMs).toBeGreaterThanOrEqual(550);
    expect(tookMs).toBeLessThan(600 + 1500);
  });
});

/** One GET sent byte for byte (the path exactly as given: no client normalizes its dot segments or escapes). */
function rawGet(port: number, path: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const [headers = "", ...rest] = data.split("\r\n\r\n");
      resolve({ status: Number(headers.split(" ")[1]), headers, body: rest.join("\r\n\r\n") });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

describe("odd paths and the API reference (real server on loopback)", () => {
  it("answers a path it cannot parse, or one with dot segments, with a 4xx problem document, never the console", async () => {
    const { app } = await appOver(loadedView([rocket("a1")]));
    const port = Number(new URL(await app.listen({ host: "127.0.0.1", port: 0 })).port);
    // As sent: a browser or fetch() would resolve `..` (and %2e%2e) against the path before sending, reaching `/` itself.
    for (const path of [
      "/rockets/%2e%2e",
      "/rockets/..",
      "/rockets/.",
      "/rockets/%2E",
      "/rockets/%2e%2e/events",
      "/rockets/%2e%2e/stream",
      "/rockets/a1/..",
      "/rockets/../rockets/summary",
      "/rockets/./summary",
      "/./rockets",
      "//rockets",
      "/rockets/%",
      "/rockets/%zz",
      "/%",
      "/rockets/%2e%2e%2fsummary",
      "/rockets/a1%2f..",
    ]) {
      const res = await rawGet(port, path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers, path).toMatch(/content-type: application\/problem\+json/i);
      expect(JSON.parse(res.body) as { type: string }, path).toMatchObject({ type: expect.stringMatching(/^urn:rockets:problem:/) });
    }
  });

  it("says why a rocket named summary or stream cannot be asked for: the summary and the event stream are at those paths", async () => {
    const { app } = await appOver(loadedView([rocket("a1")]));
    for (const path of ["/rockets/summary/events", "/rockets/stream/events"]) {
      const res = await app.inject(path);
      expect(res.statusCode, path).toBe(400);
      expect(res.body, path).toContain("must not be 'summary' or 'stream'");
    }
  });

  it("serves /docs and its files under a Content-Security-Policy as strict as the console's", async () => {
    const { app } = await appOver(loadedView([]));
    const docs = await app.inject("/docs");
    expect(docs.statusCode).toBe(200);
    const policy = docs.headers["content-security-policy"];
    expect(policy).toBe(API_REFERENCE_CSP);
    for (const directive of ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"]) expect(policy).toContain(directive);
    expect(policy).not.toMatch(/unsafe-|https:|\*/);
    for (const file of ["/docs/static/index.html", "/docs/static/swagger-initializer.js", "/docs/json"]) {
      const res = await app.inject(file);
      expect(res.headers["content-security-policy"], file).toBe(API_REFERENCE_CSP);
    }
  });
});
