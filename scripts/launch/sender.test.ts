import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../internal/testing/nats-server.js";
import { generateTraffic } from "./generator.js";
import { Sender } from "./sender.js";

interface Seen {
  body: unknown;
  contentType: string | undefined;
  connection: string | undefined;
  at: number;
}

let server: http.Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function listen(answer: (seen: Seen, index: number) => number | "hang", port = 0) {
  const seen: Seen[] = [];
  let connections = 0;
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const s = { body: JSON.parse(body), contentType: req.headers["content-type"], connection: req.headers.connection, at: performance.now() };
      seen.push(s);
      const status = answer(s, seen.length - 1);
      if (status !== "hang") res.writeHead(status).end();
    });
  });
  server.on("connection", () => (connections += 1));
  await new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/messages`;
  return { seen, url, connections: () => connections };
}

const messages = generateTraffic({ seed: 1, maxMessages: 12, rockets: 2 });

describe("Sender", () => {
  it("posts every message once, each on a new connection and without a Content-Type", async () => {
    const target = await listen(() => 202);
    const stats = await new Sender({ url: target.url, concurrency: 3, messageDelayMs: 0, keepAlive: false }).sendAll(messages);
    expect(stats).toMatchObject({ sent: 12, retries: 0 });
    expect(target.seen.map((s) => s.body)).toEqual(expect.arrayContaining(messages));
    expect(target.seen.every((s) => s.contentType === undefined && s.connection === "close")).toBe(true);
    expect(target.connections()).toBe(12);
  });

  it("reuses connections with keep-alive", async () => {
    const target = await listen(() => 200);
    await new Sender({ url: target.url, concurrency: 2, messageDelayMs: 0, keepAlive: true }).sendAll(messages);
    expect(target.seen).toHaveLength(12);
    expect(target.connections()).toBeLessThanOrEqual(2);
  });

  it("retries any non-2xx, 4xx included, every 500 ms until a 2xx", async () => {
    const target = await listen((_s, i) => (i === 0 ? 400 : i === 1 ? 503 : 201));
    const stats = await new Sender({ url: target.url, concurrency: 1, messageDelayMs: 0, keepAlive: false }).sendAll(messages.slice(0, 1));
    expect(stats.sent).toBe(1);
    expect(stats.retries).toBe(2);
    expect(Object.fromEntries(stats.failures)).toEqual({ "400": 1, "503": 1 });
    expect(target.seen.map((s) => s.body)).toEqual([messages[0], messages[0], messages[0]]);
    const gaps = [target.seen[1]!.at - target.seen[0]!.at, target.seen[2]!.at - target.seen[1]!.at];
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(450);
      expect(gap).toBeLessThan(1500);
    }
  });

  it("keeps retrying a refused connection until the server comes up", async () => {
    const port = await freePort();
    const sender = new Sender({ url: `http://127.0.0.1:${port}/messages`, concurrency: 1, messageDelayMs: 0, keepAlive: false });
    const done = sender.sendAll(messages.slice(0, 2));
    await new Promise((r) => setTimeout(r, 1200));
    const target = await listen(() => 202, port);
    const stats = await done;
    expect(stats.sent).toBe(2);
    expect(stats.failures.get("ECONNREFUSED")).toBeGreaterThanOrEqual(2);
    expect(target.seen.map((s) => s.body)).toEqual(messages.slice(0, 2));
  });

  it("abandons a request that takes too long and sends it again", async () => {
    const target = await listen((_s, i) => (i === 0 ? "hang" : 202));
    const stats = await new Sender({ url: target.url, concurrency: 1, messageDelayMs: 0, keepAlive: false, requestTimeoutMs: 200, retryDelayMs: 10 }).sendAll(messages.slice(0, 1));
    expect(stats).toMatchObject({ sent: 1, retries: 1 });
    expect(stats.failures.get("timeout")).toBe(1);
    expect(target.seen).toHaveLength(2);
    server!.closeAllConnections();
  });

  it("takes the answer of a server that keeps the connection open despite Connection: close", async () => {
    const sockets: net.Socket[] = [];
    const stubborn = net.createServer((socket) => {
      sockets.push(socket);
      socket.once("data", () => socket.write("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"));
    });
    await new Promise<void>((r) => stubborn.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(stubborn.address() as AddressInfo).port}/messages`;
      const started = performance.now();
      const stats = await new Sender({ url, concurrency: 1, messageDelayMs: 0, keepAlive: false }).sendAll(messages.slice(0, 2));
      expect(stats).toMatchObject({ sent: 2, retries: 0 });
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => stubborn.close(r));
    }
  });

  it("waits the message delay after each message", async () => {
    const target = await listen(() => 202);
    const started = performance.now();
    await new Sender({ url: target.url, concurrency: 1, messageDelayMs: 100, keepAlive: false }).sendAll(messages.slice(0, 4));
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(target.seen).toHaveLength(4);
  });
});
