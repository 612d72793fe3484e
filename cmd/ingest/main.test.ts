// The ingest service as users run it: a child process configured through the
// environment, stopped with real signals.

import { randomUUID } from "node:crypto";
import { request } from "node:http";
import { connect as connectTcp, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAM_NAME } from "../../internal/nats/topology.js";
import { freePort, NatsServer } from "../../internal/testing/nats-server.js";
import { metricValue } from "../../internal/testing/metrics.js";
import { ServiceProcess } from "../../internal/testing/service-process.js";
import { bearer, TEST_KEYS } from "../../internal/testing/api-keys.js";

function launched(channel: string) {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the raw HTTP response once the server closes the connection. */
function responseOf(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(data));
  });
}

/** POSTs on a connection of its own (no keep-alive pool), so that successive calls reach different cluster workers. */
function postAlone(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/messages`, { method: "POST", agent: false, headers: bearer(TEST_KEYS.writer) }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function storedIds(natsUrl: string, channels: string[]): Promise<(string | undefined)[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    return await Promise.all(
      channels.map(async (c) => (await jsm.streams.getMessage(STREAM_NAME, { last_by_subj: `rockets.events.*.${c}` }))?.header.get("Nats-Msg-Id")),
    );
  } finally {
    await nc.close();
  }
}

describe("ingest process", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(() => nats?.dispose());

  it("on SIGTERM finishes the request in flight, stores its message, and exits 0", async () => {
    const ingest = await ServiceProcess.start("ingest", { natsUrl: nats.url });
    const channel = randomUUID();
    const body = JSON.stringify(launched(channel));
    const half = Math.floor(body.length / 2);

    // The request is in flight when the signal lands: headers and half the
    // body sent, on a keep-alive connection the server has to close itself.
    const socket = connectTcp(ingest.port, "127.0.0.1");
    const response = responseOf(socket);
    socket.write(`POST /messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_KEYS.writer}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
    socket.write(body.slice(0, half));
    await sleep(200);
    const exited = ingest.stop("SIGTERM");
    await sleep(300);
    expect(ingest.running).toBe(true);
    socket.write(body.slice(half));

    const answer = await response;
    expect(answer).toMatch(/^HTTP\/1\.1 202 /);
    expect(answer.toLowerCase()).toContain("connection: close");
    const stopping = performance.now();
    expect(await exited).toBe(0);
    expect(performance.now() - stopping).toBeLessThan(5000);
    expect(ingest.logs()).toContain("stopped");

    expect(await storedIds(nats.url, [channel])).toEqual([`${channel}:1`]);
  });

  it("answers 503 with Retry-After until NATS is reachable, then takes messages", async () => {
    const natsPort = await freePort();
    const late = `nats://127.0.0.1:${natsPort}`;
    const ingestPort = await freePort();
    const url = `http://127.0.0.1:${ingestPort}`;
    const started = ServiceProcess.start("ingest", { natsUrl: late, port: ingestPort });
    let server: NatsServer | undefined;
    try {
      await expect.poll(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status, { timeout: 20_000 }).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(503);
      const early = await fetch(`${url}/messages`, { method: "POST", body: JSON.stringify(launched(randomUUID())), headers: bearer(TEST_KEYS.writer) });
      expect(early.status).toBe(503);
      expect(early.headers.get("retry-after")).toBe("1");

      server = await NatsServer.start({ port: natsPort });
      const ingest = await started;
      const res = await fetch(`${ingest.url}/messages`, { method: "POST", body: JSON.stringify(launched(randomUUID())), headers: bearer(TEST_KEYS.writer) });
      expect(res.status).toBe(202);
      expect(await ingest.stop("SIGTERM")).toBe(0);
    } finally {
      await started.then((s) => s.stop("SIGKILL")).catch(() => undefined);
      await server?.dispose();
    }
  });

  it("takes its request timeout and rate limit from the environment: a stalled upload is cut with 408, a client past its rate gets 429", async () => {
    const env = { HTTP_REQUEST_TIMEOUT_MS: "800", RATE_LIMIT_MAX: "2", RATE_LIMIT_WINDOW_SECONDS: "60" };
    const ingest = await ServiceProcess.start("ingest", { natsUrl: nats.url, env });
    try {
      const body = JSON.stringify(launched(randomUUID()));
      const socket = connectTcp(ingest.port, "127.0.0.1");
      const response = responseOf(socket);
      const started = performance.now();
      socket.write(`POST /messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_KEYS.writer}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`);
      expect(await response).toMatch(/^HTTP\/1\.1 408 /);
      expect(performance.now() - started).toBeLessThan(800 + 1500);
      // The stalled request counted against this client's rate, then one more fits.
      expect(await postAlone(ingest.url, JSON.stringify(launched(randomUUID())))).toBe(202);
      expect(await postAlone(ingest.url, JSON.stringify(launched(randomUUID())))).toBe(429);
      expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);
      expect(await metricValue(ingest.url, "rockets_http_refused_total", { limit: "rate" })).toBe(1);
      expect(await metricValue(ingest.url, "rockets_http_refused_total", { limit: "request_timeout" })).toBe(1);
      expect(await ingest.stop("SIGTERM")).toBe(0);
    } finally {
      await ingest.stop("SIGKILL");
    }
  });

  it("refuses to start with a bad configuration, listing every problem, with exit code 78 (EX_CONFIG)", async () => {
    const failure = await ServiceProcess.start("ingest", {
      natsUrl: nats.url,
      env: { MAX_BATCH: "0", PUBLISH_TIMEOUT_MS: "never" },
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(String(failure)).toMatch(/exited during start \(code 78\)/);
    expect(String(failure)).toContain("MAX_BATCH");
    expect(String(failure)).toContain("PUBLISH_TIMEOUT_MS");
  });

  describe("as several workers (WORKERS=2)", () => {
    it("serves one port from both workers, /metrics counts for all of them, and SIGTERM stops them all with exit 0", async () => {
      const ingest = await ServiceProcess.start("ingest", { natsUrl: nats.url, env: { WORKERS: "2" } });
      try {
        expect(ingest.logs().match(/"msg":"worker forked"/g)).toHaveLength(2);
        expect(ingest.logs().match(/"msg":"worker started"/g)).toHaveLength(2);
        // Connections are dealt to the workers in turn: eight of them reach both.
        const channels = Array.from({ length: 8 }, () => randomUUID());
        for (const channel of channels) expect(await postAlone(ingest.url, JSON.stringify(launched(channel)))).toBe(202);

        // Whichever worker answers the scrape, it reports both workers' messages.
        for (let scrape = 0; scrape < 4; scrape++) {
          expect(await metricValue(ingest.url, "rockets_ingest_messages_total", { result: "accepted", service: "ingest" })).toBe(8);
          expect(await metricValue(ingest.url, "rockets_ingest_nats_connected", { service: "ingest" })).toBe(1);
        }
        expect(await ingest.stop("SIGTERM")).toBe(0);
        expect(ingest.logs().match(/"msg":"stopped"/g)).toHaveLength(2);
        expect(ingest.logs()).toContain('"failed":false,"msg":"all workers stopped"');
        expect(await storedIds(nats.url, channels)).toEqual(channels.map((c) => `${c}:1`));
      } finally {
        await ingest.stop("SIGKILL");
      }
    });

    it("replaces a worker that dies, and keeps taking messages meanwhile", async () => {
      const ingest = await ServiceProcess.start("ingest", { natsUrl: nats.url, env: { WORKERS: "2" } });
      try {
        const pids = [...ingest.logs().matchAll(/"worker":\d+,"pid":(\d+),"msg":"worker forked"/g)].map((m) => Number(m[1]));
        expect(pids).toHaveLength(2);
        // Past the start window, a death is a crash to recover from, not a start failure.
        await sleep(5500);
        process.kill(pids[0]!, "SIGKILL");
        await expect.poll(() => ingest.logs(), { timeout: 10_000 }).toContain("starting a replacement");
        const channels = Array.from({ length: 6 }, () => randomUUID());
        for (const channel of channels) {
          // Until the replacement is connected, its connections may be told 503 + Retry-After; nothing is lost either way.
          await expect.poll(() => postAlone(ingest.url, JSON.stringify(launched(channel))), { timeout: 15_000 }).toBe(202);
        }
        // The replacement connects and joins; then every message is taken by whichever worker gets it.
        await expect.poll(() => ingest.logs().match(/"msg":"worker started"/g)?.length, { timeout: 15_000 }).toBe(3);
        for (const channel of channels) expect(await postAlone(ingest.url, JSON.stringify(launched(channel)))).toBe(202);
        expect(ingest.running).toBe(true);
        expect(await ingest.stop("SIGTERM")).toBe(0);
        expect(await storedIds(nats.url, channels)).toEqual(channels.map((c) => `${c}:1`));
      } finally {
        await ingest.stop("SIGKILL");
      }
    });

    it("stops with exit 1 when a worker cannot start", async () => {
      // The port is taken (by nats-server): no worker can listen, which restarting cannot fix.
      const failure = await ServiceProcess.start("ingest", { natsUrl: nats.url, port: nats.port, env: { WORKERS: "2" } }).catch(
        (err: unknown) => err,
      );
      expect(String(failure)).toMatch(/exited during start \(code 1\)/);
      expect(String(failure)).toContain("worker failed during start");
      expect(String(failure)).toContain("EADDRINUSE");
    });
  });
});
