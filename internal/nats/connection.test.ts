import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, NatsServer } from "../testing/nats-server.js";
import { connectNats, OutageBackoff, type NatsConnection } from "./connection.js";

/** A logger whose lines the test reads back. */
function capturedLog() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
    await sleep(20);
  }
}

let server: NatsServer | undefined;
let nc: NatsConnection | undefined;
afterEach(async () => {
  await nc?.close();
  await server?.dispose();
  nc = undefined;
  server = undefined;
});

describe("OutageBackoff", () => {
  it("grows with how long the outage has lasted, not with how often it is asked, and starts over after a reset", () => {
    let now = 0;
    const backoff = new OutageBackoff(() => now);
    // nats.js asks on every pass of its dial loop: a hundred asks in the first second stay short.
    for (let i = 0; i < 100; i++) expect(backoff.next()).toBeLessThanOrEqual(500);
    now = 8000;
    const later = backoff.next();
    expect(later).toBeGreaterThanOrEqual(2000);
    expect(later).toBeLessThanOrEqual(4000);
    now = 600_000;
    expect(backoff.next()).toBeLessThanOrEqual(10_000);
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(250);
  });
});

describe("connectNats", () => {
  it("says at once that NATS cannot be reached (where, and why), keeps trying, and connects once it is up", async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const { log, lines } = capturedLog();
    const reasons: Array<string | undefined> = [];
    const connecting = connectNats({ servers: [url], name: "test" }, log, { onWaiting: (why) => reasons.push(why) });

    const warned = await until("the first warning", 2000, () => lines.find((l) => l["level"] === 40));
    expect(warned).toMatchObject({ msg: expect.stringMatching(/cannot reach nats/), servers: url, attempts: 1 });
    expect(String(warned["error"])).toMatch(/refused|ECONNREFUSED/i);
    expect(reasons[0]).toMatch(new RegExp(`cannot reach NATS at ${url}: .*refused`, "i"));

    // It retries on its own (the reason says how often), without a warning per attempt.
    await until("a third attempt", 5000, () => (reasons.length >= 3 ? true : undefined));
    expect(lines.filter((l) => l["level"] === 40)).toHaveLength(1);

    server = await NatsServer.start({ port });
    nc = await connecting;
    expect(reasons.at(-1)).toBeUndefined();
    expect(lines.map((l) => l["msg"])).toEqual(expect.arrayContaining(["nats reachable after failed attempts", "nats connected"]));
  }, 20_000);

  it("connects at the first attempt without a warning when NATS is there", async () => {
    server = await NatsServer.start();
    const { log, lines } = capturedLog();
    const reasons: Array<string | undefined> = [];
    nc = await connectNats({ servers: [server.url], name: "test" }, log, { onWaiting: (why) => reasons.push(why) });
    expect(reasons).toEqual([undefined]);
    expect(lines.filter((l) => (l["level"] as number) >= 40)).toEqual([]);
  });

  it("says at once when the connection is lost, again while it stays lost, and when it is back", async () => {
    server = await NatsServer.start();
    const { log, lines } = capturedLog();
    nc = await connectNats({ servers: [server.url], name: "test" }, log, { stillWaitingLogMs: 500 });
    await server.stop();
    await until("the disconnect warning", 5000, () => lines.find((l) => l["msg"] === "nats disconnected; reconnecting"));
    // Said again at the first reconnect attempt past the interval (nats.js spaces its attempts out, up to 10 s).
    const still = await until("the reminder", 20_000, () => lines.find((l) => l["msg"] === "still disconnected from nats; reconnecting"));
    expect(still).toMatchObject({ level: 40, servers: server.url });
    expect(still["attempts"]).toBeGreaterThan(0);
    await server.launch();
    const back = await until("the reconnect", 15_000, () => lines.find((l) => l["msg"] === "nats reconnected"));
    expect(back).toMatchObject({ level: 30 });
    expect(back["downSeconds"]).toBeGreaterThanOrEqual(0);
  }, 60_000);
});
