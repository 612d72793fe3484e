// The bound on channels that have not launched: the bucket alone, and ingest
// applying it against a real nats-server (what a channel applied is read
// by the late-resend check, as in production).

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { validateMessage } from "../../internal/domain/message.js";
import { sequenceBatch } from "../../internal/domain/sequence-batch.js";
import { emptyChannelState } from "../../internal/domain/sequencing.js";
import { ChannelStateStore } from "../../internal/nats/channel-state-store.js";
import { EventPublisher } from "../../internal/nats/event-publisher.js";
import { StreamChannelHistory } from "../../internal/nats/channel-history.js";
import { StreamStoredNumbers } from "../../internal/nats/stored-numbers.js";
import { provisionTopology, STATE_BUCKET, STREAM_NAME, type Provisioned } from "../../internal/nats/topology.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { NatsServer } from "../../internal/testing/nats-server.js";
import { buildApp } from "./app.js";
import { IngestMetrics } from "./metrics.js";
import { ResendCheck } from "./resend-check.js";
import { StreamGateway } from "./stream-gateway.js";
import { UnlaunchedAdmission } from "./unlaunched-admission.js";

const log = pino({ level: "silent" });

function launch(channel: string) {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
  };
}

function speedUp(channel: string, messageNumber: number) {
  return { metadata: { channel, messageNumber, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketSpeedIncreased" }, message: { by: 100 } };
}

describe("the admission bucket", () => {
  it("admits a burst, then channels at its rate; an admitted or launched channel is never refused; a burst of 0 is off", () => {
    let now = 0;
    const admission = new UnlaunchedAdmission({ burst: 2, perSecond: 1, maxRemembered: 100, now: () => now });
    expect([admission.admit("a"), admission.admit("b"), admission.admit("c")]).toEqual([true, true, false]);
    // Admitted once, always admitted.
    expect(admission.admit("a")).toBe(true);
    admission.launched("d");
    expect(admission.admit("d")).toBe(true);
    now += 1000;
    expect([admission.admit("c"), admission.admit("e")]).toEqual([true, false]);
    const off = new UnlaunchedAdmission({ burst: 0, perSecond: 1, maxRemembered: 100 });
    expect(Array.from({ length: 10 }, (_, i) => off.admit(`x${i}`)).every(Boolean)).toBe(true);
  });
});

describe("ingest's bound on channels that have not launched (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let provisioned: Provisioned;
  let gateway: StreamGateway;
  let app: FastifyInstance;
  let states: ChannelStateStore;
  const registry = createRegistry("ingest");

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    provisioned = await provisionTopology(nc, { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 }, log);
    const kv = await provisioned.kvm.open(STATE_BUCKET);
    states = new ChannelStateStore(kv);
    gateway = new StreamGateway(log, 200);
    await gateway.attach(new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 2000, checkTimeoutMs: 500 }));
    const resends = new ResendCheck();
    resends.attach({
      numbers: new StreamStoredNumbers(kv, new StreamChannelHistory(nc, provisioned.jsm, { maxMessages: 1000, fetchTimeoutMs: 2000 }, log)),
      duplicateWindowMs: 120_000,
    });
    app = buildApp({
      publisher: gateway,
      readiness: () => undefined,
      registry,
      metrics: new IngestMetrics(registry, () => gateway.connected),
      log,
      limits: { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 1 },
      auth: undefined,
      resends,
      // Two channels at once, then one an hour: the test never sees a refill.
      admission: new UnlaunchedAdmission({ burst: 2, perSecond: 1 / 3600, maxRemembered: 100 }),
    });
    await app.ready();
  });
  afterAll(async () => {
    gateway?.close();
    await app?.close();
    await nc?.close();
    await server?.dispose();
  });

  const post = (payload: unknown) => app.inject({ method: "POST", url: "/messages", payload: JSON.stringify(payload) });
  const held = async (channel: string) => {
    const subjects = (await provisioned.jsm.streams.info(STREAM_NAME, { subjects_filter: `rockets.events.*.${channel}` })).state.subjects ?? {};
    return Object.values(subjects).reduce((sum, n) => sum + n, 0);
  };

  it("answers 503 to a third channel that sends without its launch, stores nothing of it, and takes it once its launch came", async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    expect((await post(speedUp(a, 2))).statusCode).toBe(202);
    expect((await post(speedUp(b, 3))).statusCode).toBe(202);
    const refused = await post(speedUp(c, 2));
    expect(refused.statusCode).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.json()).toMatchObject({ status: 503, detail: expect.stringContaining(`send ${c}'s launch (message 1) first`) });
    expect(await held(c)).toBe(0);
    expect((await registry.getSingleMetric("rockets_ingest_unlaunched_refused_total")?.get())?.values[0]?.value).toBe(1);
    // Admitted channels go on; the refused one is taken once its launch came.
    expect((await post(speedUp(a, 3))).statusCode).toBe(202);
    expect((await post(launch(c))).statusCode).toBe(202);
    expect((await post(speedUp(c, 2))).statusCode).toBe(202);
    expect(await held(c)).toBe(2);
  });

  it("never refuses a launched rocket, however many channels wait for theirs", async () => {
    const rocket = randomUUID();
    const first = [launch(rocket), speedUp(rocket, 2)].map((m) => {
      const v = validateMessage(m);
      if (!v.ok) throw new Error("invalid");
      return v.value;
    });
    await states.save(rocket, sequenceBatch(emptyChannelState(), first, { maxPending: Number.POSITIVE_INFINITY }).state, 0);
    expect((await post(speedUp(randomUUID(), 2))).statusCode).toBe(503);
    expect((await post(speedUp(rocket, 3))).statusCode).toBe(202);
  });
});
