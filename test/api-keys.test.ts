// Who may call what, on each service's app with the keys file checked
// (AUTH=on, the default): no key or an unknown one is 401 with
// WWW-Authenticate, a key without the route's scope is 403, both problem
// documents that never contain the key; probes, the console's files and the
// API reference stay open; /metrics and the sequencer's ops routes need the
// `metrics` scope. A keys file that is missing or malformed stops a service
// with exit 78, listing every bad line.

import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testApp } from "../cmd/api/app.fixture.js";
import { buildApp as buildIngest } from "../cmd/ingest/app.js";
import { loadConfig as loadIngestConfig } from "../cmd/ingest/config.js";
import { IngestMetrics } from "../cmd/ingest/metrics.js";
import { StreamGateway } from "../cmd/ingest/stream-gateway.js";
import { buildApp as buildSequencer } from "../cmd/sequencer/app.js";
import { ConfigError } from "../internal/config/env-reader.js";
import { ApiKeys, parseApiKeys } from "../internal/http/api-keys.js";
import { createRegistry } from "../internal/observability/metrics.js";
import { basicFromUrl, bearer, TEST_KEYS, testKeysText } from "../internal/testing/api-keys.js";
import { ServiceProcess, type ServiceName } from "../internal/testing/service-process.js";
import { FleetView } from "../internal/view/fleet-view.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const log = pino({ level: "silent" });
const keys = new ApiKeys(parseApiKeys(testKeysText()).entries);
const apps: Record<ServiceName, FastifyInstance> = {} as never;
const CHANNEL = "193270a9-c9cf-404a-8f83-838e71d9ae67";
const message = JSON.stringify({
  metadata: { channel: CHANNEL, messageNumber: 2, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketExploded" },
  message: { reason: "FORGED" },
});

beforeAll(async () => {
  // Never attached to NATS: an authorised post gets as far as the publisher and is answered 503.
  const gateway = new StreamGateway(log);
  const registry = createRegistry("ingest");
  apps.ingest = buildIngest({
    publisher: gateway,
    readiness: () => gateway.notReadyReason(),
    registry,
    metrics: new IngestMetrics(registry, () => false),
    log,
    limits: { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 1 },
    auth: keys,
  });
  apps.sequencer = buildSequencer({
    registry: createRegistry("sequencer"),
    readiness: () => undefined,
    ownership: () => ({ instanceId: "s1", partitions: [1] }),
    auth: keys,
  });
  const view = new FleetView();
  view.beginSync();
  view.endSync();
  apps.api = (await testApp(view, {}, undefined, undefined, undefined, keys)).app;
  await Promise.all(Object.values(apps).map((a) => a.ready()));
});
afterAll(async () => {
  await Promise.all(Object.values(apps).map((a) => a.close()));
});

const post = (headers: Record<string, string> = {}) => apps.ingest.inject({ method: "POST", url: "/messages", payload: message, headers });

function expectRefused(res: Awaited<ReturnType<typeof post>>, status: 401 | 403, presented?: string): void {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ type: status === 401 ? "urn:rockets:problem:unauthorized" : "urn:rockets:problem:forbidden", status });
  if (status === 401) expect(res.headers["www-authenticate"]).toBe('Bearer realm="rockets", Basic realm="rockets"');
  else expect(res.headers["www-authenticate"]).toBeUndefined();
  if (presented !== undefined) expect(res.body).not.toContain(presented);
}

describe("ingest", () => {
  it("refuses a post without a key, or with a key it does not know, with 401 and never echoes the key", async () => {
    expectRefused(await post(), 401);
    expectRefused(await post(bearer("not-a-key-at-all")), 401, "not-a-key-at-all");
    expectRefused(await post(basicFromUrl(`http://rockets:guess-${TEST_KEYS.writer}@x/`)), 401, TEST_KEYS.writer);
    expectRefused(await post({ authorization: TEST_KEYS.writer }), 401, TEST_KEYS.writer);
  });

  it("refuses a forged explosion from keys without `write` (a reader's, Prometheus's) with 403", async () => {
    expectRefused(await post(bearer(TEST_KEYS.reader)), 403, TEST_KEYS.reader);
    expectRefused(await post(bearer(TEST_KEYS.scraper)), 403, TEST_KEYS.scraper);
    expect((await post(bearer(TEST_KEYS.reader))).json().detail).toMatch(/"reader" does not have the "write" scope/);
  });

  it("lets a write key through as Bearer or as Basic auth's password, whatever the user name", async () => {
    // Past authentication the unattached publisher answers 503: the request reached it.
    for (const headers of [bearer(TEST_KEYS.writer), basicFromUrl(`http://rockets:${TEST_KEYS.writer}@h/`), basicFromUrl(`http://anyone:${TEST_KEYS.operator}@h/`)]) {
      const res = await post(headers);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ type: "urn:rockets:problem:unavailable" });
    }
  });

  it("keeps probes, the index and the API reference open; /metrics needs `metrics`", async () => {
    expect((await apps.ingest.inject("/healthz")).statusCode).toBe(200);
    expect((await apps.ingest.inject("/readyz")).statusCode).toBe(503);
    expect((await apps.ingest.inject("/")).statusCode).toBe(200);
    expect((await apps.ingest.inject("/openapi.json")).statusCode).toBe(200);
    expectRefused(await apps.ingest.inject("/metrics"), 401);
    expectRefused(await apps.ingest.inject({ url: "/metrics", headers: bearer(TEST_KEYS.writer) }), 403);
    const scraped = await apps.ingest.inject({ url: "/metrics", headers: bearer(TEST_KEYS.scraper) });
    expect(scraped.statusCode).toBe(200);
    expect(scraped.body).toContain("rockets_http_requests_total");
  });
});

describe("api", () => {
  it.each(["/rockets", "/rockets/summary", `/rockets/${CHANNEL}`, `/rockets/${CHANNEL}/events`, "/rockets/stream", `/rockets/${CHANNEL}/stream`])(
    "%s needs a read key: 401 without, 403 with a write key",
    async (url) => {
      expectRefused(await apps.api.inject(url), 401);
      expectRefused(await apps.api.inject({ url, headers: bearer(TEST_KEYS.writer) }), 403, TEST_KEYS.writer);
    },
  );

  it("answers a read key", async () => {
    const res = await apps.api.inject({ url: "/rockets", headers: bearer(TEST_KEYS.reader) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ rockets: [], total: 0 });
    expect((await apps.api.inject({ url: `/rockets/${CHANNEL}`, headers: basicFromUrl(`http://u:${TEST_KEYS.reader}@h/`) })).statusCode).toBe(404);
  });

  it("keeps the console's page, its files, the reference and the probes open; /metrics needs `metrics`", async () => {
    // Not built in this test: the page says so (503), and is not refused for a key.
    expect((await apps.api.inject("/")).statusCode).toBe(503);
    expect((await apps.api.inject("/assets/main.js")).statusCode).toBe(404);
    expect((await apps.api.inject("/openapi.json")).statusCode).toBe(200);
    expect((await apps.api.inject("/healthz")).statusCode).toBe(200);
    expect((await apps.api.inject("/readyz")).statusCode).toBe(200);
    expectRefused(await apps.api.inject("/metrics"), 401);
    expectRefused(await apps.api.inject({ url: "/metrics", headers: bearer(TEST_KEYS.reader) }), 403);
    expect((await apps.api.inject({ url: "/metrics", headers: bearer(TEST_KEYS.scraper) })).statusCode).toBe(200);
  });
});

describe("sequencer", () => {
  it("needs `metrics` for /metrics and /partitions; probes and the index stay open", async () => {
    for (const url of ["/metrics", "/partitions"]) {
      expectRefused(await apps.sequencer.inject(url), 401);
      expectRefused(await apps.sequencer.inject({ url, headers: bearer(TEST_KEYS.writer) }), 403);
      expect((await apps.sequencer.inject({ url, headers: bearer(TEST_KEYS.scraper) })).statusCode).toBe(200);
    }
    for (const url of ["/healthz", "/readyz", "/"]) expect((await apps.sequencer.inject(url)).statusCode).toBe(200);
  });
});

describe("configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "rockets-auth-"));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadIngestConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it("is on by default, and then needs a keys file", () => {
    expect(problems({})).toEqual([expect.stringMatching(/^AUTH_KEYS_FILE must name the API keys file/)]);
    expect(loadIngestConfig({ AUTH: "off" }).auth).toEqual({ mode: "off" });
    const config = loadIngestConfig({ AUTH_KEYS_FILE: file("good", testKeysText()) });
    expect(config.auth.mode).toBe("on");
    expect(config.auth.mode === "on" && config.auth.keys.identify(TEST_KEYS.writer)?.name).toBe("writer");
    expect(problems({ AUTH: "maybe", AUTH_KEYS_FILE: file("good", testKeysText()) })).toEqual(['AUTH must be one of on, off, got "maybe"']);
  });

  it("lists every bad line of the file, and an unreadable file, as configuration problems", () => {
    const bad = file("bad", `ok read ${"a".repeat(64)}\nbroken\nx nope ${"b".repeat(64)}\n`);
    expect(problems({ AUTH_KEYS_FILE: bad, MAX_BATCH: "0" })).toEqual([
      expect.stringMatching(new RegExp(`^AUTH_KEYS_FILE "${bad}" line 2: expected 3 fields`)),
      expect.stringMatching(new RegExp(`^AUTH_KEYS_FILE "${bad}" line 3: scopes must be`)),
      expect.stringMatching(/^MAX_BATCH/),
    ]);
    expect(problems({ AUTH_KEYS_FILE: join(dir, "missing") })).toEqual([expect.stringMatching(/cannot be read: ENOENT/)]);
  });

  it("a service given a malformed keys file exits 78 naming each bad line", async () => {
    const bad = file("bad-for-service", `ok read ${"a".repeat(64)}\nops admin ${"c".repeat(64)}\nplain write the-key-itself\n`);
    const service = await ServiceProcess.spawn("api", { natsUrl: "nats://127.0.0.1:1", env: { AUTH_KEYS_FILE: bad } });
    try {
      expect(await service.waitForExit(15_000)).toBe(78);
      expect(service.logs()).toMatch(/line 2: scopes must be/);
      expect(service.logs()).toMatch(/line 3: the third field must be the key's sha256/);
      expect(service.logs()).not.toContain("the-key-itself");
    } finally {
      await service.stop("SIGKILL");
    }
  }, 30_000);
});
