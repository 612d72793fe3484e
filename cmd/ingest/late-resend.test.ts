// A resend after the stream's duplicate window, against a real nats-server:
// the stream would store it again as new; ingest must still answer duplicate
// or conflict (never accepted) once the number was applied, and store
// nothing. The window is shortened on the stream itself (the
// service refuses less than 120 s) so that the test need not wait minutes;
// "applied" is the state entry the sequencer would write.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
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

const log = pino({ level: "silent" });
const WINDOW_MS = 400;

function launched(channel: string, mission = "ARTEMIS") {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission },
  };
}

function speedUp(channel: string, messageNumber: number, by = 100) {
  return {
    metadata: { channel, messageNumber, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketSpeedIncreased" },
    message: { by },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a resend after the duplicate window (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let provisioned: Provisioned;
  let gateway: StreamGateway;
  let app: FastifyInstance;
  let states: ChannelStateStore;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    provisioned = await provisionTopology(nc, { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 }, log);
    const info = await provisioned.jsm.streams.info(STREAM_NAME);
    await provisioned.jsm.streams.update(STREAM_NAME, { ...info.config, duplicate_window: nanos(WINDOW_MS) });
    const kv = await provisioned.kvm.open(STATE_BUCKET);
    states = new ChannelStateStore(kv);
    gateway = new StreamGateway(log, 200);
    await gateway.attach(new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 2000, checkTimeoutMs: 500 }));
    const resends = new ResendCheck();
    resends.attach({
      numbers: new StreamStoredNumbers(kv, new StreamChannelHistory(nc, provisioned.jsm, { maxMessages: 1000, fetchTimeoutMs: 2000 }, log)),
      duplicateWindowMs: WINDOW_MS,
    });
    const registry = createRegistry("ingest");
    app = buildApp({
      publisher: gateway,
      readiness: () => undefined,
      registry,
      metrics: new IngestMetrics(registry, () => gateway.connected),
      log,
      limits: { bodyLimitBytes: 65_536, batchBodyLimitBytes: 1_048_576, maxBatch: 1000, retryAfterSeconds: 1 },
      auth: undefined,
      resends,
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
  /** Messages the stream holds on the channel's subject. */
  const held = async (channel: string) => {
    const subjects = (await provisioned.jsm.streams.info(STREAM_NAME, { subjects_filter: `rockets.events.*.${channel}` })).state.subjects ?? {};
    return Object.values(subjects).reduce((sum, n) => sum + n, 0);
  };
  /** What the sequencer writes once it applied `messages` in order (the domain's own sequencing). */
  const applied = async (channel: string, messages: unknown[]) => {
    const valid = messages.map((m) => {
      const v = validateMessage(m);
      if (!v.ok) throw new Error("test message invalid");
      return v.value;
    });
    await states.save(channel, sequenceBatch(emptyChannelState(), valid, { maxPending: Number.POSITIVE_INFINITY }).state, 0);
  };

  it("answers the same message duplicate and a changed one 409, naming the first stored; only the first copy stays", async () => {
    const channel = randomUUID();
    const first = await post(launched(channel));
    expect(first.json()).toEqual({ status: "accepted", seq: expect.any(Number) });
    const firstSeq = first.json<{ seq: number }>().seq;
    await applied(channel, [launched(channel)]);
    // Past the stream's window and past half of it since ingest last read the channel's applied number.
    await sleep(WINDOW_MS * 2);

    const same = await post(launched(channel));
    expect(same.statusCode).toBe(202);
    expect(same.json()).toEqual({ status: "duplicate", seq: firstSeq });

    const changed = await post(launched(channel, "APOLLO"));
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({
      type: "urn:rockets:problem:conflict",
      seq: firstSeq,
      stored: { messageType: "RocketLaunched", messageTime: "2022-02-02T19:39:05.86337+01:00" },
    });
    expect(changed.body).not.toContain("APOLLO");
    // Nothing was stored again: the stream holds one launch.
    expect(await held(channel)).toBe(1);
    const stored = await provisioned.jsm.streams.getMessage(STREAM_NAME, { seq: firstSeq });
    expect(stored?.json()).toEqual(launched(channel));
    // A number not applied yet is new, as before.
    expect((await post(speedUp(channel, 2))).json()).toEqual({ status: "accepted", seq: expect.any(Number) });
  });

  it("judges a batch's late resends item by item, next to new items", async () => {
    const channel = randomUUID();
    const seqs = (await post([launched(channel), speedUp(channel, 2), speedUp(channel, 3)])).json<{ results: { seq: number }[] }>().results.map((r) => r.seq);
    await applied(channel, [launched(channel), speedUp(channel, 2), speedUp(channel, 3)]);
    await sleep(WINDOW_MS * 2);
    const res = await post([launched(channel), speedUp(channel, 2, 7), speedUp(channel, 3), speedUp(channel, 4)]);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({
      accepted: 1,
      duplicate: 2,
      conflict: 1,
      results: [
        { index: 0, status: "duplicate", seq: seqs[0] },
        { index: 1, status: "conflict", seq: seqs[1], stored: { messageType: "RocketSpeedIncreased" } },
        { index: 2, status: "duplicate", seq: seqs[2] },
        { index: 3, status: "accepted" },
      ],
    });
    expect(await held(channel)).toBe(4);
  });

  it("answers a retry of an applied number from what is stored even inside the window", async () => {
    const channel = randomUUID();
    const firstSeq = (await post(launched(channel))).json<{ seq: number }>().seq;
    await applied(channel, [launched(channel)]);
    await sleep(WINDOW_MS * 2);
    // Ingest re-reads the applied number, then within the window the same retry and a changed one.
    expect((await post(launched(channel))).json()).toEqual({ status: "duplicate", seq: firstSeq });
    expect((await post(launched(channel))).json()).toEqual({ status: "duplicate", seq: firstSeq });
    const changed = await post(launched(channel, "GEMINI"));
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ seq: firstSeq });
    expect(await held(channel)).toBe(1);
  });
});
