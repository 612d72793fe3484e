import { randomUUID } from "node:crypto";
import { connect as connectTcp } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { EventPublisher } from "../../internal/nats/event-publisher.js";
import { provisionTopology, STREAM_NAME, type Provisioned } from "../../internal/nats/topology.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { NatsServer } from "../../internal/testing/nats-server.js";
import { buildApp, type IngestLimits } from "./app.js";
import { IngestMetrics } from "./metrics.js";
import { API_REFERENCE_CSP } from "../../internal/http/api-reference.js";
import { StreamGateway } from "./stream-gateway.js";

const log = pino({ level: "silent" });
const settings = { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 };
const limits: IngestLimits = { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 3 };

function launched(channel: string) {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
  };
}

type Msg = ReturnType<typeof launched>;

function speedUp(channel: string, messageNumber: number, by = 100) {
  return {
    metadata: { channel, messageNumber, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketSpeedIncreased" },
    message: { by },
  };
}

interface Harness {
  server: NatsServer;
  nc: NatsConnection;
  provisioned: Provisioned;
  gateway: StreamGateway;
  app: FastifyInstance;
}

async function startHarness(publishTimeoutMs = 2000): Promise<Harness> {
  const server = await NatsServer.start();
  const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const provisioned = await provisionTopology(nc, settings, log);
  const gateway = new StreamGateway(log, 200);
  await gateway.attach(new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: publishTimeoutMs, checkTimeoutMs: 500 }));
  const registry = createRegistry("ingest");
  const metrics = new IngestMetrics(registry, () => gateway.connected);
  const app = buildApp({ publisher: gateway, readiness: () => gateway.notReadyReason(), registry, metrics, log, limits, auth: undefined });
  await app.ready();
  return { server, nc, provisioned, gateway, app };
}

async function stopHarness(h: Harness | undefined): Promise<void> {
  h?.gateway.close();
  await h?.app.close();
  await h?.nc.close();
  await h?.server.dispose();
}

function post(app: FastifyInstance, payload: unknown) {
  return app.inject({ method: "POST", url: "/messages", payload: typeof payload === "string" ? payload : JSON.stringify(payload) });
}

/** Sends one HTTP request byte for byte over a socket, so no client library adds a header. */
function rawRequest(port: number, head: string, body: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const [headers = "", ...rest] = data.split("\r\n\r\n");
      resolve({ status: Number(headers.split(" ")[1]), headers, body: rest.join("\r\n\r\n") });
    });
    socket.write(`${head}\r\nHost: localhost\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

async function storedByMsgId(p: Provisioned, seq: number) {
  const stored = await p.jsm.streams.getMessage(STREAM_NAME, { seq });
  return { subject: stored?.subject, msgId: stored?.header.get("Nats-Msg-Id"), body: stored?.json() };
}

describe("POST /messages (real nats-server)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => stopHarness(h));

  it("refuses a rocket named summary or stream with a 400 saying why, and stores nothing", async () => {
    const before = (await h.provisioned.jsm.streams.info(STREAM_NAME)).state.last_seq;
    for (const channel of ["summary", "stream"]) {
      const res = await post(h.app, launched(channel));
      expect(res.statusCode, channel).toBe(400);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({
        type: "urn:rockets:problem:invalid-message",
        errors: [{ path: "metadata.channel", reason: "must not be 'summary' or 'stream': the API's paths /rockets/summary and /rockets/stream take them" }],
      });
    }
    expect((await h.provisioned.jsm.streams.info(STREAM_NAME)).state.last_seq).toBe(before);
  });

  it("answers a path it cannot parse, or one with dot segments, with a 4xx problem document, as sent on the wire", async () => {
    // An app of its own: the harness's is not listening, and a fastify instance listens once.
    const registry = createRegistry("ingest");
    const app = buildApp({ publisher: h.gateway, readiness: () => undefined, registry, metrics: new IngestMetrics(registry, () => true), log, limits, auth: undefined });
    const port = Number(new URL(await app.listen({ host: "127.0.0.1", port: 0 })).port);
    try {
      for (const path of ["/%", "/messages/%zz", "/messages/..", "/messages/%2e%2e", "/./messages", "/messages/../metrics", "//messages"]) {
        const res = await rawRequest(port, `GET ${path} HTTP/1.1`, "");
        expect(res.status, path).toBeGreaterThanOrEqual(400);
        expect(res.status, path).toBeLessThan(500);
        expect(res.headers, path).toMatch(/content-type: application\/problem\+json/i);
        expect(JSON.parse(res.body) as { type: string }, path).toMatchObject({ type: expect.stringMatching(/^urn:rockets:problem:/) });
      }
    } finally {
      await app.close();
    }
  });

  it("answers 202 accepted with the stream sequence once stored, under the channel's subject and message id", async () => {
    const channel = randomUUID();
    const res = await post(h.app, { ...launched(channel), extra: "dropped" });
    expect(res.statusCode).toBe(202);
    const body = res.json<{ status: string; seq: number }>();
    expect(body).toEqual({ status: "accepted", seq: expect.any(Number) });
    expect(await storedByMsgId(h.provisioned, body.seq)).toEqual({
      subject: h.provisioned.topology.subjectFor(channel),
      msgId: `${channel}:1`,
      body: launched(channel),
    });
  });

  it("answers 202 duplicate with the original sequence when a message is resent", async () => {
    const message = speedUp(randomUUID(), 7);
    const first = (await post(h.app, message)).json<{ seq: number }>();
    const again = await post(h.app, message);
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual({ status: "duplicate", seq: first.seq });
  });

  it("answers 409 naming what is stored when a changed message is resent under a stored number, storing nothing", async () => {
    const channel = randomUUID();
    const first = (await post(h.app, launched(channel))).json<{ seq: number }>();
    const before = (await h.provisioned.jsm.streams.info(STREAM_NAME)).state.messages;
    const changes = [
      { ...launched(channel), message: { ...launched(channel).message, mission: "APOLLO" } },
      { ...launched(channel), message: { ...launched(channel).message, launchSpeed: 501 } },
    ];
    for (const changed of changes) {
      const res = await post(h.app, changed);
      expect(res.statusCode).toBe(409);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(res.json()).toEqual({
        type: "urn:rockets:problem:conflict",
        title: "Message number already stored",
        status: 409,
        detail: expect.any(String),
        seq: first.seq,
        stored: { messageType: "RocketLaunched", messageTime: "2022-02-02T19:39:05.86337+01:00" },
      });
      expect(res.body).not.toContain("APOLLO");
      expect(res.body).not.toContain(channel);
    }
    expect((await h.provisioned.jsm.streams.info(STREAM_NAME)).state.messages).toBe(before);
    expect((await storedByMsgId(h.provisioned, first.seq)).body).toEqual(launched(channel));
    // The very same message is still a duplicate, fields dropped by the schema making no difference.
    expect((await post(h.app, { ...launched(channel), extra: true })).json()).toEqual({ status: "duplicate", seq: first.seq });
    // Sent again later with a new time (a rerun of the test program): the same telemetry, a duplicate; the stored time stays.
    const restamped = { ...launched(channel), metadata: { ...launched(channel).metadata, messageTime: "2026-11-30T10:00:00Z" } };
    expect((await post(h.app, restamped)).json()).toEqual({ status: "duplicate", seq: first.seq });
    expect((await storedByMsgId(h.provisioned, first.seq)).body).toEqual(launched(channel));
  });

  it("judges each resent item of a batch against what is stored: duplicate, conflict, or new", async () => {
    const channel = randomUUID();
    const stored = (await post(h.app, [speedUp(channel, 2, 10), speedUp(channel, 3, 20)])).json<{ results: { seq: number }[] }>();
    const res = await post(h.app, [speedUp(channel, 2, 10), speedUp(channel, 3, 21), speedUp(channel, 4, 30)]);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      accepted: 1,
      duplicate: 1,
      conflict: 1,
      invalid: 0,
      unavailable: 0,
      results: [
        { index: 0, status: "duplicate", seq: stored.results[0]!.seq },
        {
          index: 1,
          status: "conflict",
          seq: stored.results[1]!.seq,
          stored: { messageType: "RocketSpeedIncreased", messageTime: "2025-04-02T09:21:50.458989221+02:00" },
        },
        { index: 2, status: "accepted", seq: expect.any(Number) },
      ],
    });
    const allConflicting = await post(h.app, [speedUp(channel, 2, 11), speedUp(channel, 3, 22)]);
    expect(allConflicting.statusCode).toBe(409);
    expect(allConflicting.json()).toMatchObject({ type: "urn:rockets:problem:conflict", conflict: 2, accepted: 0 });
    const conflictAndInvalid = await post(h.app, [speedUp(channel, 2, 11), speedUp(channel, 0)]);
    expect(conflictAndInvalid.statusCode).toBe(400);
    expect(conflictAndInvalid.json()).toMatchObject({ type: "urn:rockets:problem:invalid-message", conflict: 1, invalid: 1 });
  });

  it("stores the first of two different messages under one number in a batch and calls the second a conflict", async () => {
    const channel = randomUUID();
    const res = await post(h.app, [speedUp(channel, 5, 1), speedUp(channel, 5, 1), speedUp(channel, 5, 2)]);
    expect(res.statusCode).toBe(202);
    const body = res.json<{ results: { status: string; seq: number }[] }>();
    expect(body).toMatchObject({ accepted: 1, duplicate: 1, conflict: 1 });
    expect(body.results.map((r) => r.status)).toEqual(["accepted", "duplicate", "conflict"]);
    expect(new Set(body.results.map((r) => r.seq)).size).toBe(1);
    expect((await storedByMsgId(h.provisioned, body.results[0]!.seq)).body).toEqual(speedUp(channel, 5, 1));
  });

  it("parses the body as JSON whatever the Content-Type: none, text/plain, or malformed", async () => {
    const address = await h.app.listen({ host: "127.0.0.1", port: 0 });
    const port = Number(new URL(address).port);
    try {
      for (const contentType of [undefined, "text/plain", "application/x-www-form-urlencoded", "not a media type"]) {
        const head = "POST /messages HTTP/1.1" + (contentType === undefined ? "" : `\r\nContent-Type: ${contentType}`);
        const res = await rawRequest(port, head, JSON.stringify(launched(randomUUID())));
        expect(res.headers.toLowerCase()).not.toContain("content-type: text/html");
        expect({ contentType, status: res.status, answer: JSON.parse(res.body).status }).toEqual({
          contentType,
          status: 202,
          answer: "accepted",
        });
      }
    } finally {
      await h.app.server.close();
    }
  });

  it("lists every invalid field with its path and reason", async () => {
    const res = await post(h.app, {
      metadata: { channel: "a.b", messageNumber: 0, messageTime: "yesterday", messageType: "RocketLaunched" },
      message: { type: "Falcon-9", launchSpeed: -1 },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    const body = res.json<{ type: string; status: number; errors: { path: string; reason: string }[] }>();
    expect(body).toMatchObject({ type: "urn:rockets:problem:invalid-message", status: 400, title: "Invalid message" });
    expect(body.errors.map((e) => e.path).sort()).toEqual(
      ["message.launchSpeed", "message.mission", "metadata.channel", "metadata.messageNumber", "metadata.messageTime"].sort(),
    );
    for (const e of body.errors) expect(e.reason.length).toBeGreaterThan(0);
  });

  it.each([
    ["a channel with an unpaired surrogate", (m: Msg) => (m.metadata.channel = "ab\ud800cd"), "metadata.channel"],
    ["a channel with a zero-width space", (m: Msg) => (m.metadata.channel = `${randomUUID()}\u200b`), "metadata.channel"],
    ["a mission with a right-to-left override", (m: Msg) => (m.message.mission = "ART\u202eEMIS"), "message.mission"],
    ["a type with a control character", (m: Msg) => (m.message.type = "Falcon\u00079"), "message.type"],
    ["an impossible date", (m: Msg) => (m.metadata.messageTime = "2025-02-31T10:00:00Z"), "metadata.messageTime"],
    ["year zero", (m: Msg) => (m.metadata.messageTime = "0000-01-01T00:00:00Z"), "metadata.messageTime"],
    ["a launch speed past 2^53", (m: Msg) => (m.message.launchSpeed = 2 ** 53 + 2), "message.launchSpeed"],
    ["a launch speed over the ceiling", (m: Msg) => (m.message.launchSpeed = 1e12 + 1), "message.launchSpeed"],
  ])("refuses %s with 400 naming the field, stores nothing and echoes nothing", async (_name, spoil, path) => {
    const message: Msg = launched(randomUUID());
    spoil(message);
    const before = (await h.provisioned.jsm.streams.info(STREAM_NAME)).state.messages;
    const payload = JSON.stringify(message);
    const res = await post(h.app, payload);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:invalid-message", errors: [{ path, reason: expect.any(String) }] });
    expect(res.json<{ errors: unknown[] }>().errors).toHaveLength(1);
    for (const value of [message.metadata.channel, message.metadata.messageTime, message.message.mission, message.message.type]) {
      expect(res.body).not.toContain(JSON.stringify(value).slice(1, -1));
    }
    expect((await h.provisioned.jsm.streams.info(STREAM_NAME)).state.messages).toBe(before);
  });

  it("refuses a speed change past the ceiling inside a batch, storing the rest", async () => {
    const channel = randomUUID();
    const res = await post(h.app, [speedUp(channel, 2), speedUp(channel, 3, 1e12 + 1)]);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({
      accepted: 1,
      invalid: 1,
      results: [{ index: 0, status: "accepted" }, { index: 1, status: "invalid", errors: [{ path: "message.by" }] }],
    });
  });

  it("says where a body is not JSON without quoting it", async () => {
    const res = await post(h.app, '{"a":1,secret-token}');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:not-json", detail: expect.stringContaining("position") });
    expect(res.body).not.toContain("secret-token");
  });

  it.each([
    ["not JSON", "{metadata:", "urn:rockets:problem:not-json"],
    ["an empty body", "", "urn:rockets:problem:not-json"],
    ["whitespace only", "  \n ", "urn:rockets:problem:not-json"],
    ["JSON null", "null", "urn:rockets:problem:invalid-message"],
    ["a JSON number", "42", "urn:rockets:problem:invalid-message"],
    ["a JSON string", '"hello"', "urn:rockets:problem:invalid-message"],
    ["an empty batch", "[]", "urn:rockets:problem:invalid-batch"],
  ])("answers 400 problem+json to %s", async (_name, payload, type) => {
    const res = await post(h.app, payload);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type, status: 400, title: expect.any(String), detail: expect.any(String) });
  });

  it("answers 400 to a batch over the limit, without storing any of it", async () => {
    const channel = randomUUID();
    const batch = Array.from({ length: limits.maxBatch + 1 }, (_, i) => speedUp(channel, i + 2));
    const res = await post(h.app, batch);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:invalid-batch", detail: expect.stringContaining("1001") });
    const info = await h.provisioned.jsm.streams.info(STREAM_NAME, { subjects_filter: `rockets.events.*.${channel}` });
    expect(info.state.subjects ?? {}).toEqual({});
  });

  it("answers 413 problem+json to a message body over the limit, and never 5xx", async () => {
    const big = { ...launched(randomUUID()), padding: "x".repeat(limits.bodyLimitBytes) };
    const res = await post(h.app, big);
    expect(res.statusCode).toBe(413);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:body-too-large", status: 413, limitBytes: limits.bodyLimitBytes });

    const huge = "[" + " ".repeat(limits.batchBodyLimitBytes) + "]";
    const tooBigBatch = await post(h.app, huge);
    expect(tooBigBatch.statusCode).toBe(413);
    expect(tooBigBatch.json()).toMatchObject({ type: "urn:rockets:problem:body-too-large", status: 413 });
  });

  it("takes a batch larger than the single-message limit", async () => {
    const channel = randomUUID();
    const batch = Array.from({ length: 1000 }, (_, i) => speedUp(channel, i + 2));
    expect(JSON.stringify(batch).length).toBeGreaterThan(limits.bodyLimitBytes);
    const res = await post(h.app, batch);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ accepted: 1000, duplicate: 0, invalid: 0, unavailable: 0 });
  });

  it("stores the valid items of a mixed batch and reports each item in order", async () => {
    const channel = randomUUID();
    const earlier = (await post(h.app, launched(channel))).json<{ seq: number }>();
    const batch = [launched(channel), speedUp(channel, 2), { metadata: { channel } }, "junk", speedUp(channel, 3)];
    const res = await post(h.app, batch);
    expect(res.statusCode).toBe(202);
    const body = res.json<{ results: { index: number; status: string; seq?: number; errors?: unknown[] }[] }>();
    expect(body).toMatchObject({ accepted: 2, duplicate: 1, invalid: 2, unavailable: 0 });
    expect(body.results.map((r) => [r.index, r.status])).toEqual([
      [0, "duplicate"],
      [1, "accepted"],
      [2, "invalid"],
      [3, "invalid"],
      [4, "accepted"],
    ]);
    expect(body.results[0]?.seq).toBe(earlier.seq);
    expect(body.results[2]?.errors).toContainEqual({ path: "metadata.messageNumber", reason: "is required" });
    for (const index of [1, 4]) {
      const stored = await storedByMsgId(h.provisioned, body.results[index]!.seq!);
      expect(stored.msgId).toBe(`${channel}:${index === 1 ? 2 : 3}`);
    }
  });

  it("answers 400 with per-item results when no item of a batch is valid", async () => {
    const res = await post(h.app, [{}, 1]);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({
      status: 400,
      invalid: 2,
      results: [
        { index: 0, status: "invalid" },
        { index: 1, status: "invalid" },
      ],
    });
  });

  it("answers 404 problem+json to unknown routes", async () => {
    const res = await h.app.inject({ method: "GET", url: "/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:not-found", status: 404 });
  });

  it("publishes an OpenAPI document of every route, POST /messages with single and batch bodies and every status, and /docs", async () => {
    type Media = { schema: { oneOf?: { type?: string }[] }; examples?: Record<string, { value: unknown }> };
    type Operation = { requestBody?: { content: Record<string, Media> }; responses: Record<string, { description: string; content?: Record<string, Media>; headers?: object }> };
    const doc = (await h.app.inject("/openapi.json")).json() as { openapi: string; paths: Record<string, Record<string, Operation>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(["/healthz", "/messages", "/metrics", "/readyz"]);
    const operation = doc.paths["/messages"]!["post"]!;
    const body = operation.requestBody!.content["application/json"]!;
    expect(body.schema.oneOf!.map((s) => s.type)).toEqual(["object", "array"]);
    expect(Object.keys(operation.responses).sort()).toEqual(["202", "400", "409", "413", "429", "503"]);
    for (const [code, response] of Object.entries(operation.responses)) {
      expect(response.description.length, code).toBeGreaterThan(40);
      expect(Object.keys(Object.values(response.content!)[0]!.examples ?? {}).length, code).toBeGreaterThan(0);
    }
    expect(operation.responses["503"]!.headers).toHaveProperty("Retry-After");
    expect(operation.responses["429"]!.headers).toHaveProperty("Retry-After");
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      for (const [code, response] of Object.entries(doc.paths[path]!["get"]!.responses)) expect(response.description, `${path} ${code}`).not.toBe("Default Response");
    }
    // The documented request examples are accepted as documented.
    const examples = Object.values(body.examples!).map((e) => e.value);
    expect(examples).toHaveLength(2);
    for (const example of examples) expect((await post(h.app, example)).statusCode).toBe(202);
    const invalid = operation.responses["400"]!.content!["application/problem+json"]!.examples!["invalidMessage"]!.value as { errors: unknown[] };
    const bad = await post(h.app, { ...launched(randomUUID()), metadata: { ...launched("x").metadata, channel: "a.b" } });
    expect(bad.json()).toMatchObject({ errors: invalid.errors });
    const docs = await h.app.inject("/docs");
    expect([200, 302]).toContain(docs.statusCode);
    // Under the same Content-Security-Policy as the API's reference (test/api-reference.test.ts renders it in a browser).
    expect(docs.headers["content-security-policy"]).toBe(API_REFERENCE_CSP);
  });

  it("says it is alive and ready", async () => {
    expect((await h.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const ready = await h.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
  });

  it("answers 503 with Retry-After while NATS is down, never 2xx, and recovers when it is back", async () => {
    const channel = randomUUID();
    await h.server.stop();
    await expect.poll(() => h.gateway.connected, { timeout: 5000 }).toBe(false);

    const single = await post(h.app, launched(channel));
    expect(single.statusCode).toBe(503);
    expect(single.headers["retry-after"]).toBe("3");
    expect(single.json()).toMatchObject({ type: "urn:rockets:problem:unavailable", status: 503 });

    const batch = await post(h.app, [speedUp(channel, 2), { nope: true }]);
    expect(batch.statusCode).toBe(503);
    expect(batch.headers["retry-after"]).toBe("3");
    expect(batch.json()).toMatchObject({
      unavailable: 1,
      invalid: 1,
      results: [
        { index: 0, status: "unavailable" },
        { index: 1, status: "invalid" },
      ],
    });

    const notReady = await h.app.inject({ method: "GET", url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({ reason: "not connected to NATS" });

    await h.server.launch();
    await expect
      .poll(async () => (await h.app.inject({ method: "GET", url: "/readyz" })).statusCode, { timeout: 15_000, interval: 100 })
      .toBe(200);
    const again = await post(h.app, launched(channel));
    expect(again.statusCode).toBe(202);
    // Nothing was stored during the outage: the first store of this message happens now.
    expect(again.json()).toMatchObject({ status: "accepted" });
  });

  it("exposes the ingest metrics", async () => {
    const res = await h.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(series));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    expect(value('rockets_ingest_messages_total{result="accepted",service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_ingest_messages_total{result="duplicate",service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_ingest_messages_total{result="invalid",service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_ingest_messages_total{result="conflict",service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_ingest_publish_failures_total{reason="unavailable",service="ingest"}')).toBeGreaterThanOrEqual(2);
    expect(value('rockets_ingest_publish_failures_total{reason="timeout",service="ingest"}')).toBe(0);
    expect(value('rockets_ingest_publish_duration_seconds_count{service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_ingest_nats_connected{service="ingest"}')).toBe(1);
    expect(value('rockets_http_requests_total{method="POST",route="/messages",status="202",service="ingest"}')).toBeGreaterThan(0);
    expect(value('rockets_http_requests_total{method="POST",route="/messages",status="503",service="ingest"}')).toBeGreaterThan(0);
    expect(text).toContain("process_cpu_seconds_total");
  });
});

describe("POST /messages when the stream does not ack in time", () => {
  let h: Harness;
  let listener: NatsConnection;
  beforeAll(async () => {
    h = await startHarness(300);
    listener = await connect({ servers: h.server.url });
  });
  afterAll(async () => {
    await listener?.close();
    await stopHarness(h);
  });

  it("answers 503 with Retry-After after the publish timeout, counts it, and reports the stream not ready", async () => {
    // Without the stream, a subscriber that never replies swallows the publish: the ack never comes.
    await h.provisioned.jsm.streams.delete(STREAM_NAME);
    listener.subscribe("rockets.events.>");
    await listener.flush();

    const res = await post(h.app, launched(randomUUID()));
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("3");
    const metrics = (await h.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toContain('rockets_ingest_publish_failures_total{reason="timeout",service="ingest"} 1');

    await expect
      .poll(async () => (await h.app.inject({ method: "GET", url: "/readyz" })).json<{ reason?: string }>().reason, { timeout: 5000 })
      .toMatch(/events stream unreachable/);
  });
});
