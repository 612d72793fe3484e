// The query API over a live view of a real nats-server's state bucket: what
// the sequencer writes (here written directly with ChannelStateStore) shows up
// in every route, and the service process starts, serves and stops cleanly.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request as httpRequest } from "node:http";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import type { Registry } from "prom-client";
import type { Rocket } from "../../internal/domain/rocket.js";
import type { ChannelState } from "../../internal/domain/sequencing.js";
import { ChannelStateStore, keyForChannel } from "../../internal/nats/channel-state-store.js";
import { ChannelStateWatcher } from "../../internal/nats/channel-state-watcher.js";
import { openBucket, STATE_BUCKET, STATE_CHANGES_PREFIX } from "../../internal/nats/topology.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { NatsServer } from "../../internal/testing/nats-server.js";
import { ServiceProcess } from "../../internal/testing/service-process.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import { instantKey, SORT_KEYS } from "../../internal/view/sort-keys.js";
import { buildApp } from "./app.js";
import { createApiMetrics } from "./metrics.js";
import { TEST_SSE } from "./app.fixture.js";
import { ViewFeed } from "./view-feed.js";
import { bearer, TEST_KEYS } from "../../internal/testing/api-keys.js";
import { scrape } from "../../internal/testing/metrics.js";

const log = pino({ level: "silent" });
const TYPES = ["Falcon-9", "Atlas-H", "Titan-IV", "New-Shepard"];
const MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "MERCURY", "SKYLAB"];

function rocket(channel: string, i: number): Rocket {
  const exploded = i % 5 === 0;
  return {
    channel,
    type: TYPES[i % TYPES.length]!,
    mission: MISSIONS[(i * 7) % MISSIONS.length]!,
    speed: 500 + ((i * 37) % 50) * 10,
    status: exploded ? "exploded" : "launched",
    explosionReason: exploded ? "FROZEN_O_RINGS" : null,
    launchedAt: `2022-02-02T${String(10 + (i % 12)).padStart(2, "0")}:00:${String(i % 60).padStart(2, "0")}.5+0${i % 3}:00`,
    updatedAt: `2022-02-03T${String(10 + (i % 9)).padStart(2, "0")}:30:${String((i * 13) % 60).padStart(2, "0")}Z`,
    lastMessageNumber: 1 + (i % 40),
  };
}

const stateOf = (r: Rocket, pending = 0): ChannelState => ({
  rocket: r,
  lastApplied: r.lastMessageNumber,
  // Behind a gap (lastApplied + 1 is missing), numbered apart: what a stored state can hold.
  pending: Array.from({ length: pending }, (_, k) => ({
    metadata: { channel: r.channel, messageNumber: r.lastMessageNumber + 2 + k, messageTime: r.updatedAt, messageType: "RocketSpeedIncreased" },
    message: { by: 1 },
  })) as ChannelState["pending"],
});

const channelOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Instance {
  view: FleetView;
  app: FastifyInstance;
  registry: Registry;
  watcher: ChannelStateWatcher;
}

describe("query API over a live view of the state bucket (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let store: ChannelStateStore;
  const instances: Instance[] = [];
  /** What the bucket holds, as the test wrote it: channel -> rocket. */
  const written = new Map<string, Rocket>();
  const revisions = new Map<string, number>();

  async function write(r: Rocket, pending = 0): Promise<void> {
    const rev = await store.save(r.channel, stateOf(r, pending), revisions.get(r.channel) ?? 0);
    revisions.set(r.channel, rev);
    written.set(r.channel, r);
  }

  async function startInstance(): Promise<Instance> {
    const view = new FleetView();
    const registry = createRegistry("api");
    const metrics = createApiMetrics(registry, { rocketsInView: () => view.size, viewReady: () => view.ready });
    const watched = { bucket: STATE_BUCKET, changes: STATE_CHANGES_PREFIX };
    const watcher = new ChannelStateWatcher(nc, await jetstreamManager(nc), watched, new ViewFeed(view, metrics, log), log);
    const app = await buildApp({ view, registry, metrics, log, sse: TEST_SSE, ready: () => (view.ready ? undefined : "loading"), auth: undefined });
    await app.ready();
    const instance = { view, app, registry, watcher };
    instances.push(instance);
    return instance;
  }

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    kv = await openBucket(new Kvm(nc), STATE_BUCKET, 1, { changesPrefix: STATE_CHANGES_PREFIX });
    store = new ChannelStateStore(kv);
  });

  afterAll(async () => {
    for (const i of instances) {
      await i.app.close();
      await i.watcher.stop();
    }
    await nc?.close();
    await server?.dispose();
  });

  it("becomes ready only after loading what the bucket held, and serves it", async () => {
    for (let i = 0; i < 50; i += 1) await write(rocket(channelOf(i), i));
    // A channel whose launch is not applied yet is no rocket.
    await store.save("not-launched-yet", { rocket: null, lastApplied: 0, pending: [] }, 0);
    const api = await startInstance();
    expect((await api.app.inject("/readyz")).statusCode).toBe(503);
    api.watcher.start();
    await until(async () => (await api.app.inject("/readyz")).statusCode === 200, "readiness");
    expect(api.view.size).toBe(50);
    const list = (await api.app.inject("/rockets?limit=1000")).json() as { rockets: Rocket[]; total: number };
    expect(list.total).toBe(50);
    expect(list.rockets.map((r) => r.channel)).toEqual([...written.keys()].sort());
    expect((await api.app.inject("/rockets/not-launched-yet")).statusCode).toBe(404);
    expect(await api.registry.getSingleMetricAsString("rockets_api_view_ready")).toMatch(/ 1$/m);
  });

  it("shows an open gap parked in the stream and the numbers a gap policy skipped", async () => {
    const api = instances[0]!;
    const r = rocket(channelOf(600), 639); // lastMessageNumber 40: the skipped range lies below it
    const skipped = [{ from: 2, to: 3, at: "2026-01-01T00:00:00.000Z" }];
    const rev = await store.save(r.channel, { ...stateOf(r), gap: { fromSeq: 1234, parked: 7, since: "2026-01-02T00:00:00.000Z" }, skipped }, 0);
    await until(() => api.view.get(r.channel) !== undefined, "the gapped rocket");
    expect((await api.app.inject(`/rockets/${r.channel}`)).json()).toEqual({ ...r, pendingMessages: 7, gap: { since: "2026-01-02T00:00:00.000Z" }, skipped });
    await store.save(r.channel, { ...stateOf(r), skipped }, rev);
    await until(() => api.view.get(r.channel)?.rocket.gap === undefined, "the gap to close");
    expect((await api.app.inject(`/rockets/${r.channel}`)).json()).toEqual({ ...r, pendingMessages: 0, skipped });
    await store.remove(r.channel, rev + 1);
    await until(() => api.view.get(r.channel) === undefined, "the rocket to go");
  });

  it("shows new writes, changes, pending messages and deletes in single reads and the list", async () => {
    const api = instances[0]!;
    const fresh = rocket(channelOf(500), 500);
    await write(fresh, 2);
    await until(() => api.view.get(fresh.channel) !== undefined, "the new rocket");
    const single = await api.app.inject(`/rockets/${fresh.channel}`);
    expect(single.json()).toEqual({ ...fresh, pendingMessages: 2 });
    const etag = single.headers["etag"] as string;
    expect(etag).toBe(`"${revisions.get(fresh.channel)}"`);
    expect((await api.app.inject({ url: `/rockets/${fresh.channel}`, headers: { "if-none-match": etag } })).statusCode).toBe(304);

    await write({ ...fresh, speed: 12_345, updatedAt: "2022-02-04T00:00:00Z", lastMessageNumber: 3 });
    await until(() => api.view.get(fresh.channel)?.rocket.speed === 12_345, "the change");
    const changed = await api.app.inject({ url: `/rockets/${fresh.channel}`, headers: { "if-none-match": etag } });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ speed: 12_345, pendingMessages: 0 });
    const fastest = (await api.app.inject("/rockets?sort=-speed&limit=1")).json() as { rockets: Rocket[] };
    expect(fastest.rockets[0]?.channel).toBe(fresh.channel);

    await kv.delete(keyForChannel(fresh.channel));
    written.delete(fresh.channel);
    revisions.delete(fresh.channel);
    await until(() => api.view.get(fresh.channel) === undefined, "the delete");
    expect((await api.app.inject(`/rockets/${fresh.channel}`)).statusCode).toBe(404);
    expect(await api.registry.getSingleMetricAsString("rockets_api_view_update_lag_seconds")).toMatch(/_count\{service="api"\} [1-9]/);
  });

  it("sorts by every key both ways and filters by every field exactly like the written states", async () => {
    const api = instances[0]!;
    await Promise.all(Array.from({ length: 250 }, (_, k) => write(rocket(channelOf(1000 + k), 1000 + k))));
    await until(() => api.view.size === written.size, "all rockets");
    const all = [...written.values()];
    const keyOf = (r: Rocket, sort: string): string | number =>
      sort === "launchedAt" || sort === "updatedAt" ? instantKey(r[sort]) : (r[sort as keyof Rocket] as string | number);
    const expected = (rockets: Rocket[], sort: string, desc: boolean) => {
      const sorted = [...rockets].sort((a, b) => {
        const x = keyOf(a, sort);
        const y = keyOf(b, sort);
        if (x !== y) return x < y ? -1 : 1;
        return a.channel < b.channel ? -1 : 1;
      });
      return (desc ? sorted.reverse() : sorted).map((r) => r.channel);
    };
    for (const sort of SORT_KEYS) {
      for (const desc of [false, true]) {
        const res = (await api.app.inject(`/rockets?sort=${desc ? "-" : ""}${sort}&limit=1000`)).json() as { rockets: Rocket[] };
        expect(res.rockets.map((r) => r.channel), `${sort} ${desc ? "desc" : "asc"}`).toEqual(expected(all, sort, desc));
      }
    }
    const filters: [string, (r: Rocket) => boolean][] = [
      ["status=exploded", (r) => r.status === "exploded"],
      ["status=launched", (r) => r.status === "launched"],
      ...TYPES.map((t): [string, (r: Rocket) => boolean] => [`type=${t}`, (r) => r.type === t]),
      ...MISSIONS.map((m): [string, (r: Rocket) => boolean] => [`mission=${m}`, (r) => r.mission === m]),
      ["status=launched&type=Atlas-H&mission=GEMINI", (r) => r.status === "launched" && r.type === "Atlas-H" && r.mission === "GEMINI"],
    ];
    for (const [query, keep] of filters) {
      const res = (await api.app.inject(`/rockets?${query}&sort=speed&limit=1000`)).json() as { rockets: Rocket[]; total: number };
      const want = expected(all.filter(keep), "speed", false);
      expect(want.length, query).toBeGreaterThan(0);
      expect(res.rockets.map((r) => r.channel), query).toEqual(want);
      expect(res.total, query).toBe(want.length);
    }
  });

  it("pages through many pages returning each unchanged rocket once while others are being written", async () => {
    const api = instances[0]!;
    const churn = [...written.values()].filter((_, i) => i % 3 === 0);
    const churned = new Set(churn.map((r) => r.channel));
    const stable = [...written.values()].filter((r) => !churned.has(r.channel));
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n += 1) {
        const r = churn[n % churn.length]!;
        await write({ ...r, speed: 500 + ((n * 7919) % 600) });
      }
    })();
    const seen: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const url: string = `/rockets?sort=-speed&limit=7${cursor ? `&cursor=${cursor}` : ""}`;
      const page = (await api.app.inject(url)).json() as { rockets: Rocket[]; nextCursor: string | null };
      seen.push(...page.rockets.map((r) => r.channel));
      cursor = page.nextCursor;
      pages += 1;
      await new Promise((r) => setTimeout(r, 5));
    } while (cursor !== null);
    writing = false;
    await writer;
    expect(pages).toBeGreaterThan(30);
    const stableSeen = seen.filter((c) => !churned.has(c));
    expect(new Set(stableSeen).size).toBe(stableSeen.length);
    const bySpeedDesc = [...stable].sort((a, b) => (a.speed !== b.speed ? b.speed - a.speed : a.channel < b.channel ? 1 : -1));
    expect(stableSeen).toEqual(bySpeedDesc.map((r) => r.channel));
  });

  it("delivers a change written to KV to an event stream", async () => {
    const api = instances[0]!;
    const address = await api.app.listen({ port: 0, host: "127.0.0.1" });
    const target = [...written.values()][0]!;
    const received = new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${address}/rockets/${target.channel}/stream`, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
          if (text.includes('"speed":4242')) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on("error", reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    await write({ ...target, speed: 4242 });
    const text = await received;
    // The stream opened with the rocket's state, then carried the change.
    expect(text.match(/event: rocket/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it("keeps a second API instance consistent with the first", async () => {
    const second = await startInstance();
    second.watcher.start();
    await until(() => second.view.ready && second.view.size === written.size, "the second instance");
    await write({ ...[...written.values()][1]!, mission: "SHUTTLE_MIR" });
    await until(() => instances.every((i) => i.view.list({ sort: "channel", descending: false, filter: { mission: "SHUTTLE_MIR" }, limit: 10 }).total === 1), "both instances");
    const a = (await instances[0]!.app.inject("/rockets?limit=1000&sort=updatedAt")).body;
    const b = (await second.app.inject("/rockets?limit=1000&sort=updatedAt")).body;
    expect(b).toBe(a);
  });
});

describe("api service process", () => {
  let server: NatsServer;
  afterAll(async () => {
    await server?.dispose();
  });

  it("starts, becomes ready, serves the bucket's rockets and exits 0 on SIGTERM", async () => {
    server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    const kv = await openBucket(new Kvm(nc), STATE_BUCKET, 1, { changesPrefix: STATE_CHANGES_PREFIX });
    const r = rocket(channelOf(7), 7);
    await new ChannelStateStore(kv).save(r.channel, stateOf(r), 0);
    const api = await ServiceProcess.start("api", { natsUrl: server.url });
    try {
      const res = await fetch(`${api.url}/rockets/${r.channel}`, { headers: bearer(TEST_KEYS.reader) });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ...r, pendingMessages: 0 });
      const metrics = await scrape(api.url);
      expect(metrics).toMatch(/rockets_api_rockets_in_view\{service="api"\} 1/);
    } finally {
      expect(await api.stop("SIGTERM")).toBe(0);
      await nc.close();
    }
  }, 60_000);
});
