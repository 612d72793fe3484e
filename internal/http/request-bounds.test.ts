// The bounds on real sockets (Node's HTTP layer does the timing and the
// connection limit, which inject cannot reach): a server on loopback, port 0,
// with timeouts short enough to keep the tests fast.

import { connect, type Socket } from "node:net";
import fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { createRegistry } from "../observability/metrics.js";
import { registerServiceRoutes } from "./service-routes.js";
import { createRefusalCounter, DEFAULT_HTTP_BOUNDS, registerRequestBounds, serverTimeoutOptions, type HttpBounds } from "./request-bounds.js";

const apps: FastifyInstance[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

interface Served {
  port: number;
  metric(limit: string): Promise<number>;
  /** Resolves every request parked on GET /slow. */
  release(): void;
}

async function serve(overrides: Partial<HttpBounds>): Promise<Served> {
  const bounds = { ...DEFAULT_HTTP_BOUNDS, ...overrides };
  const app = fastify({ logger: false, ...serverTimeoutOptions(bounds) });
  const registry = createRegistry("test");
  registerRequestBounds(app, { bounds, refused: createRefusalCounter(registry), retryAfterSeconds: 2 });
  registerServiceRoutes(app, registry, () => undefined);
  let parked: Array<() => void> = [];
  app.get("/slow", () => new Promise<string>((resolve) => parked.push(() => resolve("done"))));
  app.post("/upload", (request) => ({ got: (request.body as { size?: number } | undefined)?.size ?? null }));
  apps.push(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    port,
    async metric(limit) {
      const text = await registry.getSingleMetricAsString("rockets_http_refused_total");
      const line = text.split("\n").find((l) => l.includes(`limit="${limit}"`));
      return Number(line?.split(" ").pop());
    },
    release() {
      const waiting = parked;
      parked = [];
      waiting.forEach((r) => r());
    },
  };
}

/** A raw connection that writes `data` and records what comes back and when it is closed. */
function rawConnection(port: number, data: string): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    sockets.push(socket);
    let text = "";
    const started = Date.now();
    const closed = new Promise<number>((done) => socket.on("close", () => done(Date.now() - started)));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => undefined);
    socket.once("connect", () => {
      socket.write(data);
      resolve({ socket, received: () => text, closed });
    });
    socket.once("error", reject);
  });
}

describe("HTTP request bounds on a real server", () => {
  it("closes a connection whose declared body stalls, with 408, within the request timeout", async () => {
    const served = await serve({ headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 10_000 });
    const head = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    const conn = await rawConnection(served.port, `${head}{"size":`);
    const tookMs = await conn.closed;
    expect(tookMs).toBeGreaterThanOrEqual(550);
    // Node checks connections every second at most (we set min(1 s, headers timeout)): cut well before its default 30 s.
    expect(tookMs).toBeLessThan(600 + 1500);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408/);
    expect(await served.metric("request_timeout")).toBe(1);
  });

  it("closes a connection whose headers stall within the headers timeout", async () => {
    const served = await serve({ headersTimeoutMs: 300, requestTimeoutMs: 5000, idleTimeoutMs: 10_000 });
    const conn = await rawConnection(served.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const tookMs = await conn.closed;
    expect(tookMs).toBeGreaterThanOrEqual(250);
    expect(tookMs).toBeLessThan(300 + 1000);
  });

  it("closes a socket on which nothing moves for the idle timeout", async () => {
    const served = await serve({ headersTimeoutMs: 5000, requestTimeoutMs: 5000, idleTimeoutMs: 300 });
    const conn = await rawConnection(served.port, "");
    const tookMs = await conn.closed;
    expect(tookMs).toBeGreaterThanOrEqual(250);
    expect(tookMs).toBeLessThan(1500);
    expect(await served.metric("idle_timeout")).toBe(1);
  });

  it("answers 503 with Retry-After as a problem document past the in-flight limit, while /healthz, /readyz and /metrics answer", async () => {
    const served = await serve({ maxInFlight: 2 });
    const base = `http://127.0.0.1:${served.port}`;
    const first = fetch(`${base}/slow`);
    const second = fetch(`${base}/slow`);
    await expect.poll(async () => (await fetch(`${base}/slow`)).status, { timeout: 2000, interval: 20 }).toBe(503);
    const refused = await fetch(`${base}/slow`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("2");
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(await refused.json()).toMatchObject({ type: "urn:rockets:problem:busy", status: 503 });
    for (const path of ["/healthz", "/readyz", "/metrics"]) expect((await fetch(`${base}${path}`)).status, path).toBe(200);
    expect(await served.metric("in_flight")).toBeGreaterThanOrEqual(2);
    served.release();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    // The slots are given back once the answers are sent.
    const again = fetch(`${base}/slow`);
    await new Promise((r) => setTimeout(r, 50));
    served.release();
    expect((await again).status).toBe(200);
  });

  it("gives a slot back when the client of a request in flight goes away", async () => {
    const served = await serve({ maxInFlight: 1 });
    const conn = await rawConnection(served.port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    const base = `http://127.0.0.1:${served.port}`;
    await expect.poll(async () => (await fetch(`${base}/slow`, { signal: AbortSignal.timeout(1000) })).status, { timeout: 2000, interval: 20 }).toBe(503);
    conn.socket.destroy();
    await conn.closed;
    const next = fetch(`${base}/slow`);
    await new Promise((r) => setTimeout(r, 100));
    served.release();
    expect((await next).status).toBe(200);
  });

  it("closes connections past the connection limit and counts them", async () => {
    const served = await serve({ maxConnections: 2 });
    await rawConnection(served.port, "");
    await rawConnection(served.port, "");
    const third = await rawConnection(served.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const tookMs = await third.closed;
    expect(tookMs).toBeLessThan(1000);
    expect(third.received()).toBe("");
    expect(await served.metric("connections")).toBe(1);
  });
});
