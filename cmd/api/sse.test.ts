import { afterEach, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { FastifyInstance } from "fastify";
import { SseStream } from "./sse.js";
import { loadedView, rocketFixture as rocket, testApp } from "./app.fixture.js";
import { FleetView } from "../../internal/view/fleet-view.js";

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A response whose socket takes `capacity` characters, then reports backpressure until drained. */
class FakeResponse extends EventEmitter {
  readonly written: string[] = [];
  buffered = 0;
  destroyed = false;
  ended = false;
  constructor(public capacity: number) {
    super();
  }
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    this.written.push(chunk);
    this.buffered += chunk.length;
    return this.buffered < this.capacity;
  }
  drain(): void {
    this.buffered = 0;
    this.emit("drain");
  }
  destroy(): void {
    this.destroyed = true;
  }
  end(): void {
    this.ended = true;
  }
}

const event = (channel: string, speed: number) => `event: rocket\ndata: {"channel":"${channel}","speed":${speed}}\n\n`;

describe("SseStream backpressure", () => {
  it("writes straight through while the socket keeps up", () => {
    const res = new FakeResponse(10_000);
    const stream = new SseStream(res as unknown as ServerResponse, 1000, () => {});
    stream.open();
    stream.send("a", event("a", 1));
    stream.send("a", event("a", 2));
    expect(res.written.slice(1)).toEqual([event("a", 1), event("a", 2)]);
  });

  it("holds only the latest event per rocket while the client lags, and sends them on drain", () => {
    const res = new FakeResponse(1);
    const stream = new SseStream(res as unknown as ServerResponse, 10_000, () => {});
    stream.open(); // the retry line fills the socket
    for (let speed = 0; speed < 100; speed += 1) {
      stream.send("a", event("a", speed));
      stream.send("b", event("b", speed));
    }
    expect(res.written).toHaveLength(1);
    expect(stream.queuedBytes).toBe(event("a", 99).length + event("b", 99).length);
    res.capacity = 1_000_000;
    res.drain();
    expect(res.written.slice(1)).toEqual([event("a", 99), event("b", 99)]);
    expect(stream.queuedBytes).toBe(0);
  });

  it("disconnects a client that falls further behind than the bound, holding no more than the bound", () => {
    const res = new FakeResponse(1);
    let dropped = 0;
    const stream = new SseStream(res as unknown as ServerResponse, 1000, () => (dropped += 1));
    stream.open();
    let maxQueued = 0;
    for (let i = 0; i < 1000 && !stream.isClosed; i += 1) {
      stream.send(`rocket-${i}`, event(`rocket-${i}`, i));
      maxQueued = Math.max(maxQueued, stream.queuedBytes);
    }
    expect(dropped).toBe(1);
    expect(res.destroyed).toBe(true);
    expect(maxQueued).toBeLessThanOrEqual(1000 + event("rocket-999", 999).length);
    expect(stream.queuedBytes).toBe(0);
    stream.send("x", event("x", 1));
    expect(stream.queuedBytes).toBe(0);
  });

  it("skips heartbeats while the client lags", () => {
    const res = new FakeResponse(1);
    const stream = new SseStream(res as unknown as ServerResponse, 1000, () => {});
    stream.open();
    stream.heartbeat();
    expect(res.written).toHaveLength(1);
  });
});

interface EventReader {
  events: { event: string; data: string; id?: string }[];
  comments: string[];
  response: IncomingMessage;
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens an event stream and parses what arrives. */
function openStream(base: string, path: string, headers: Record<string, string> = {}): Promise<EventReader> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
      let buffer = "";
      const reader: EventReader = {
        events: [],
        comments: [],
        response,
        async waitFor(n, timeoutMs = 5000) {
          const deadline = Date.now() + timeoutMs;
          while (reader.events.length < n) {
            if (Date.now() > deadline) throw new Error(`only ${reader.events.length} events: ${JSON.stringify(reader.events)}`);
            await new Promise((r) => setTimeout(r, 10));
          }
        },
        close: () => req.destroy(),
      };
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) reader.comments.push(line);
            else {
              const at = line.indexOf(": ");
              fields[line.slice(0, at)] = line.slice(at + 2);
            }
          }
          if (fields["event"] !== undefined) reader.events.push({ event: fields["event"], data: fields["data"] ?? "", id: fields["id"] });
        }
      });
      resolve(reader);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("event stream routes", () => {
  const apps: FastifyInstance[] = [];
  const readers: EventReader[] = [];
  afterEach(async () => {
    readers.splice(0).forEach((r) => r.close());
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function serve(view: FleetView, sse: Parameters<typeof testApp>[1] = {}, http?: Parameters<typeof testApp>[4]) {
    const t = await testApp(view, sse, undefined, undefined, http);
    apps.push(t.app);
    const address = await t.app.listen({ port: 0, host: "127.0.0.1" });
    return { ...t, base: address };
  }

  async function stream(base: string, path: string, headers: Record<string, string> = {}): Promise<EventReader> {
    const reader = await openStream(base, path, headers);
    readers.push(reader);
    return reader;
  }

  it("sends one event per rocket change on the fleet stream, and removals", async () => {
    const view = loadedView([rocket("a")]);
    const { base, registry } = await serve(view);
    const reader = await stream(base, "/rockets/stream");
    expect(reader.response.statusCode).toBe(200);
    expect(reader.response.headers["content-type"]).toContain("text/event-stream");
    await reader.waitFor(1);
    view.put("a", rocket("a", { speed: 600 }), 2);
    view.put("b", rocket("b"), 3);
    view.remove("a", 4);
    await reader.waitFor(4);
    expect(reader.events.map((e) => [e.event, e.id, JSON.parse(e.data)])).toEqual([
      ["synced", "1", { revision: 1, rockets: 1 }],
      ["rocket", "2", rocket("a", { speed: 600 })],
      ["rocket", "3", rocket("b")],
      ["removed", "4", { channel: "a" }],
    ]);
    expect(await registry.getSingleMetricAsString("rockets_api_sse_clients")).toMatch(/ 1$/m);
    // The event carries the very text GET /rockets/:channel answers for that state.
    expect(reader.events[2]!.data).toBe(await (await fetch(`${base}/rockets/b`)).text());
  });

  it("starts a rocket's stream with its current state and sends only that rocket's changes", async () => {
    const view = loadedView([rocket("a"), rocket("b")]);
    const { base } = await serve(view);
    const reader = await stream(base, "/rockets/a/stream");
    await reader.waitFor(2);
    view.put("b", rocket("b", { speed: 1 }), 5);
    view.put("a", rocket("a", { speed: 2 }), 6);
    await reader.waitFor(3);
    expect(reader.events.map((e) => [e.event, e.id])).toEqual([
      ["rocket", "1"],
      ["synced", "2"],
      ["rocket", "6"],
    ]);
    expect(reader.events.filter((e) => e.event === "rocket").map((e) => (JSON.parse(e.data) as { speed: number }).speed)).toEqual([500, 2]);
    const bad = await openStream(base, "/rockets/a.b/stream");
    expect(bad.response.statusCode).toBe(400);
  });

  /** What a client holds after applying a stream's events: channel -> speed. */
  function applied(events: EventReader["events"], into = new Map<string, number>()): Map<string, number> {
    for (const e of events) {
      const data = JSON.parse(e.data) as { channel: string; speed: number };
      if (e.event === "rocket") into.set(data.channel, data.speed);
      if (e.event === "removed") into.delete(data.channel);
      if (e.event === "reload") into.clear();
    }
    return into;
  }

  const speeds = (view: FleetView) =>
    new Map(view.list({ sort: "channel", descending: false, filter: {}, limit: 1000 }).rockets.map((r) => [r.channel, r.speed]));

  it("resumes from Last-Event-ID with every change missed meanwhile, oldest first, then synced and live changes", async () => {
    const view = loadedView([rocket("a"), rocket("b"), rocket("c")]);
    const { base } = await serve(view);
    const first = await stream(base, "/rockets/stream?snapshot=true");
    await first.waitFor(4);
    const held = applied(first.events);
    const lastId = first.events.at(-1)!.id!;
    first.close();
    // While the client is away: a change, a removal, a newcomer, a change undone by a later one.
    view.put("b", rocket("b", { speed: 7 }), 10);
    view.remove("c", 11);
    view.put("d", rocket("d", { speed: 9 }), 12);
    view.put("a", rocket("a", { speed: 1 }), 13);
    view.put("b", rocket("b", { speed: 8 }), 14);
    const resumed = await stream(base, "/rockets/stream", { "last-event-id": lastId });
    await resumed.waitFor(5);
    expect(resumed.events.map((e) => [e.event, e.id])).toEqual([
      ["removed", "11"],
      ["rocket", "12"],
      ["rocket", "13"],
      ["rocket", "14"],
      ["synced", "14"],
    ]);
    view.put("d", rocket("d", { speed: 10 }), 15);
    await resumed.waitFor(6);
    expect(applied(resumed.events, held)).toEqual(speeds(view));
    // The same through the query parameter, for clients that cannot set the header.
    const byQuery = await stream(base, "/rockets/stream?lastEventId=13");
    await byQuery.waitFor(3);
    expect(byQuery.events.map((e) => [e.event, e.id])).toEqual([
      ["rocket", "14"],
      ["rocket", "15"],
      ["synced", "15"],
    ]);
  });

  it("tells the client to reload when it cannot list what was missed, then carries on from the current state", async () => {
    const view = loadedView([rocket("a"), rocket("b")]);
    const { base } = await serve(view);
    for (const id of ["999", "not-a-number"]) {
      const reader = await stream(base, "/rockets/stream", { "last-event-id": id });
      await reader.waitFor(2);
      expect(reader.events.map((e) => e.event), id).toEqual(["reload", "synced"]);
      reader.close();
    }
    // A client that asked for snapshots gets a fresh one after the reload.
    const snapshot = await stream(base, "/rockets/stream?snapshot=true", { "last-event-id": "999" });
    await snapshot.waitFor(4);
    expect(snapshot.events.map((e) => [e.event, e.id])).toEqual([
      ["reload", undefined],
      ["rocket", "1"],
      ["rocket", "2"],
      ["synced", "2"],
    ]);
    expect(applied(snapshot.events)).toEqual(speeds(view));
  });

  it("holds a stream opened while the view loads until it is loaded, then replays from the loaded view", async () => {
    const view = new FleetView();
    view.beginSync();
    view.put("a", rocket("a"), 1);
    const { base } = await serve(view);
    const reader = await stream(base, "/rockets/stream", { "last-event-id": "0" });
    view.put("b", rocket("b"), 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(reader.events).toEqual([]);
    view.endSync();
    await reader.waitFor(3);
    expect(reader.events.map((e) => [e.event, e.id])).toEqual([
      ["rocket", "1"],
      ["rocket", "2"],
      ["synced", "2"],
    ]);
  });

  it("replays a large snapshot to a slow reader in id order while rockets keep changing, and ends current", async () => {
    const fleet = Array.from({ length: 20_000 }, (_, i) => rocket(`r${String(i).padStart(5, "0")}`, { speed: i }));
    const view = loadedView(fleet);
    const { base } = await serve(view, { maxQueuedBytes: 4 * 1_048_576 });
    const reader = await stream(base, "/rockets/stream?snapshot=true");
    reader.response.pause();
    let revision = fleet.length;
    for (let i = 0; i < 2000; i += 1) {
      revision += 1;
      view.put(`r${String(i * 7).padStart(5, "0")}`, rocket(`r${String(i * 7).padStart(5, "0")}`, { speed: -i }), revision);
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    reader.response.resume();
    await until(() => reader.events.some((e) => e.event === "synced"));
    const ids = reader.events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(reader.events.at(-1)).toMatchObject({ event: "synced", id: String(revision) });
    const client = applied(reader.events);
    expect(client.size).toBe(fleet.length);
    expect(client).toEqual(new Map(fleet.map((r) => [r.channel, view.get(r.channel)!.rocket.speed])));
  }, 30_000);

  it("sends heartbeat comments on a quiet stream", async () => {
    const { base } = await serve(loadedView([]), { heartbeatMs: 30 });
    const reader = await stream(base, "/rockets/stream");
    await new Promise((r) => setTimeout(r, 200));
    expect(reader.comments.filter((c) => c === ": heartbeat").length).toBeGreaterThanOrEqual(2);
  });

  it("refuses streams past the client limit with 503", async () => {
    const { base, registry } = await serve(loadedView([]), { maxClients: 1 });
    await stream(base, "/rockets/stream");
    const refused = await stream(base, "/rockets/stream");
    expect(refused.response.statusCode).toBe(503);
    expect(await registry.getSingleMetricAsString("rockets_api_sse_dropped_total")).toMatch(/reason="limit"[^\n]* 1$/m);
  });

  it("refuses a client past its own stream limit with 429 and Retry-After while other slots stay free, and takes it back once one closes", async () => {
    const { base, registry } = await serve(loadedView([]), { maxClients: 10, maxClientsPerClient: 2 });
    const first = await stream(base, "/rockets/stream");
    await stream(base, "/rockets/a/stream");
    const refused = await stream(base, "/rockets/stream");
    expect(refused.response.statusCode).toBe(429);
    expect(refused.response.headers["retry-after"]).toBe("5");
    expect(refused.response.headers["content-type"]).toContain("application/problem+json");
    expect(await registry.getSingleMetricAsString("rockets_api_sse_dropped_total")).toMatch(/reason="client_limit"[^\n]* 1$/m);
    expect(await registry.getSingleMetricAsString("rockets_api_sse_clients")).toMatch(/ 2$/m);
    first.close();
    await expect.poll(async () => (await stream(base, "/rockets/stream")).response.statusCode, { timeout: 2000, interval: 50 }).toBe(200);
  });

  it("keeps a quiet stream open past the request and idle timeouts, and does not count it against the in-flight limit", async () => {
    const http = { headersTimeoutMs: 200, requestTimeoutMs: 300, idleTimeoutMs: 300, maxInFlight: 1 };
    const view = loadedView([rocket("a")]);
    const { base } = await serve(view, {}, http);
    const reader = await stream(base, "/rockets/stream");
    let closed = false;
    reader.response.on("close", () => (closed = true));
    await reader.waitFor(1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(closed).toBe(false);
    expect((await fetch(`${base}/rockets/a`)).status).toBe(200);
    view.put("a", rocket("a", { speed: 700 }), 2);
    await reader.waitFor(2);
  });

  it("disconnects a client that stops reading instead of buffering for it without bound", async () => {
    const view = loadedView([]);
    const { base, registry } = await serve(view, { maxQueuedBytes: 64 * 1024 });
    const url = new URL(base);
    // A raw socket that sends the request and then never reads.
    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((r) => socket.once("connect", () => r()));
    socket.write("GET /rockets/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    socket.pause();
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("error", () => {});
    await new Promise((r) => setTimeout(r, 100));
    // 100,000 distinct rockets, each event ~330 bytes: ~33 MB the client never reads.
    for (let i = 0; i < 100_000; i += 1) {
      view.put(`rocket-${i}`, rocket(`rocket-${i}`, { speed: i }), i + 10);
      if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
    }
    socket.resume();
    await closed;
    // Without the bound, the server would have buffered all ~33 MB and kept the connection.
    expect(await registry.getSingleMetricAsString("rockets_api_sse_dropped_total")).toMatch(/reason="slow".* 1$/m);
  }, 30_000);

  it("ends open streams when the app closes", async () => {
    const { app, base } = await serve(loadedView([]));
    const reader = await stream(base, "/rockets/stream");
    const ended = new Promise<void>((r) => reader.response.once("close", () => r()));
    await app.close();
    await ended;
  });
});
