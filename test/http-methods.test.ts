// The HTTP conventions every service keeps: GET / says what the service is
// and links its endpoints (the API's / is its own); a known path asked with a
// method it does not take is a 405 problem document with Allow; an unknown
// path is a 404 problem document.

import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testApp } from "../cmd/api/app.fixture.js";
import { buildApp as buildIngest } from "../cmd/ingest/app.js";
import { IngestMetrics } from "../cmd/ingest/metrics.js";
import { StreamGateway } from "../cmd/ingest/stream-gateway.js";
import { buildApp as buildSequencer } from "../cmd/sequencer/app.js";
import { createRegistry } from "../internal/observability/metrics.js";
import { FleetView } from "../internal/view/fleet-view.js";

const log = pino({ level: "silent" });
const apps: Record<"ingest" | "sequencer" | "api", FastifyInstance> = {} as never;

beforeAll(async () => {
  // Never attached to NATS: these answers do not depend on it.
  const gateway = new StreamGateway(log);
  const ingestRegistry = createRegistry("ingest");
  apps.ingest = buildIngest({
    publisher: gateway,
    readiness: () => gateway.notReadyReason(),
    registry: ingestRegistry,
    metrics: new IngestMetrics(ingestRegistry, () => false),
    log,
    limits: { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 1 },
    auth: undefined,
  });
  apps.sequencer = buildSequencer({
    registry: createRegistry("sequencer"),
    readiness: () => "starting",
    ownership: () => ({ instanceId: "s1", partitions: [1, 2] }),
    auth: undefined,
  });
  apps.api = (await testApp(new FleetView())).app;
  await Promise.all(Object.values(apps).map((a) => a.ready()));
});
afterAll(async () => {
  await Promise.all(Object.values(apps).map((a) => a.close()));
});

describe("GET /", () => {
  it.each([
    ["ingest", { messages: { href: "/messages", method: "POST" } }],
    ["sequencer", { partitions: { href: "/partitions" } }],
  ] as const)("on %s says what the service is and links its endpoints", async (name, own) => {
    const res = await apps[name].inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = res.json<{ service: string; title: string; links: Record<string, { href: string }> }>();
    expect(body.service).toBe(name);
    expect(body.title).toMatch(/^Rockets /);
    expect(body.links).toMatchObject({ ...own, health: { href: "/healthz" }, ready: { href: "/readyz" }, metrics: { href: "/metrics" } });
    // Every link leads somewhere.
    for (const link of Object.values(body.links) as Array<{ href: string; method?: string }>) {
      const answer = await apps[name].inject({ method: (link.method ?? "GET") as "GET" | "POST", url: link.href, payload: link.method ? "{}" : undefined });
      expect([404, 405], `${link.href}`).not.toContain(answer.statusCode);
    }
  });
});

describe("a known path with another method", () => {
  it.each([
    ["ingest", "GET", "/messages", "POST"],
    ["ingest", "DELETE", "/messages", "POST"],
    ["ingest", "POST", "/metrics", "GET, HEAD"],
    ["sequencer", "POST", "/partitions", "GET, HEAD"],
    ["sequencer", "PUT", "/readyz", "GET, HEAD"],
    ["api", "POST", "/rockets", "GET, HEAD"],
    ["api", "DELETE", "/rockets/193270a9-c9cf-404a-8f83-838e71d9ae67", "GET, HEAD"],
    ["api", "PATCH", "/rockets/summary?x=1", "GET, HEAD"],
  ] as const)("%s: %s %s is 405 with Allow: %s", async (name, method, url, allow) => {
    const res = await apps[name].inject({ method, url });
    expect(res.statusCode).toBe(405);
    expect(res.headers["allow"]).toBe(allow);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toEqual({
      type: "urn:rockets:problem:method-not-allowed",
      title: "Method not allowed",
      status: 405,
      detail: `${url.split("?")[0]} does not take ${method}; it takes ${allow}`,
    });
  });
});

describe("an unknown path", () => {
  it.each(["ingest", "sequencer", "api"] as const)("on %s is a 404 problem document", async (name) => {
    const res = await apps[name].inject({ method: "GET", url: "/no/such/thing" });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:not-found", status: 404 });
  });
});
