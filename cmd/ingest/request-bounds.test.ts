// Ingest's bounds on a real server on loopback: the per-client rate limit on
// POST /messages (429, Retry-After, a problem document, probes untouched) and
// the request timeout cutting a stalled upload. No NATS is needed: these
// answers come before a message would be published (the gateway, never
// attached, answers 503 to what gets through).

import { connect, type Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_HTTP_BOUNDS, type HttpBounds } from "../../internal/http/request-bounds.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { buildApp, type IngestLimits } from "./app.js";
import type { RateLimitSettings } from "./config.js";
import { loadConfig } from "./config.js";
import { IngestMetrics } from "./metrics.js";
import { StreamGateway } from "./stream-gateway.js";

const log = pino({ level: "silent" });
const apps: FastifyInstance[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const message = JSON.stringify({
  metadata: { channel: "193270a9-c9cf-404a-8f83-838e71d9ae67", messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
  message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
});

async function serve(rateLimit: RateLimitSettings | undefined, http: Partial<HttpBounds> = {}) {
  const registry = createRegistry("ingest");
  const gateway = new StreamGateway(log);
  const limits: IngestLimits = { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 1, rateLimit, http: { ...DEFAULT_HTTP_BOUNDS, ...http } };
  const app = buildApp({ publisher: gateway, readiness: () => undefined, registry, metrics: new IngestMetrics(registry, () => false), log, limits, auth: undefined });
  apps.push(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const refused = async (limit: string) => {
    const line = (await registry.getSingleMetricAsString("rockets_http_refused_total")).split("\n").find((l) => l.includes(`limit="${limit}"`));
    return Number(line?.split(" ").pop());
  };
  return { base, refused };
}

/** Like the operators' program: a new connection per message, no Content-Type. */
const postMessage = (base: string) => fetch(`${base}/messages`, { method: "POST", body: message, headers: { connection: "close" } });

describe("ingest request bounds (real server on loopback)", () => {
  it("answers 429 with Retry-After as a problem document once a client exceeds its rate, and still answers the probes", async () => {
    const { base, refused } = await serve({ max: 3, windowSeconds: 60 });
    for (let i = 0; i < 3; i++) expect((await postMessage(base)).status, `request ${i + 1}`).not.toBe(429);
    const limited = await postMessage(base);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers.get("content-type")).toContain("application/problem+json");
    expect(await limited.json()).toMatchObject({ type: "urn:rockets:problem:rate-limited", status: 429, limit: 3, windowSeconds: 60 });
    for (const path of ["/healthz", "/readyz", "/metrics", "/"]) expect((await fetch(`${base}${path}`)).status, path).toBe(200);
    expect(await refused("rate")).toBe(1);
  });

  it("by default allows one client twice the operators' program's ~5,000 messages/s, and limits none of a fast burst", async () => {
    const defaults = loadConfig({ AUTH: "off" }).rateLimit;
    expect(defaults.max / defaults.windowSeconds).toBeGreaterThanOrEqual(2 * 5000);
    const { base, refused } = await serve(defaults);
    // 600 requests as fast as 24 connections can send them: the default allows 10,000/s on average, sustained over 10 s.
    const statuses = new Set<number>();
    const send = async () => {
      for (let i = 0; i < 25; i++) statuses.add((await postMessage(base)).status);
    };
    await Promise.all(Array.from({ length: 24 }, send));
    expect(statuses.has(429)).toBe(false);
    expect(await refused("rate")).toBe(0);
  });

  it("cuts an upload whose declared body stalls with 408 within the request timeout", async () => {
    const { base, refused } = await serve(undefined, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const port = Number(new URL(base).port);
    const socket = connect(port, "127.0.0.1");
    sockets.push(socket);
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (answer += chunk));
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now() - started)));
    socket.write(`POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: ${message.length}\r\n\r\n${message.slice(0, 20)}`);
    const tookMs = await closed;
    expect(tookMs).toBeLessThan(600 + 1500);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(await refused("request_timeout")).toBe(1);
  });
});
