import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { RocketMessage } from "../domain/message.js";
import { PublishFailedError, PublishTimeoutError, PublishUnavailableError } from "../ingest/message-publisher.js";
import type { PublishAck, PublishError, PublishResult } from "../ingest/message-publisher.js";
import { NatsServer } from "../testing/nats-server.js";
import { EventPublisher } from "./event-publisher.js";
import { provisionTopology, STREAM_NAME, type Provisioned } from "./topology.js";

const log = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settings = { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 };

function launched(channel: string): RocketMessage {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
  };
}

/** The ack of a publish that must have been stored; the test fails with the publish's error otherwise. */
function ackOf(result: PublishResult): PublishAck {
  if (!result.ok) throw result.error;
  return result.ack;
}

/** What a publish came to: the stream's ack, or the error it failed with. */
function answerOf(result: PublishResult): PublishAck | PublishError {
  return result.ok ? result.ack : result.error;
}

function connectFast(server: NatsServer): Promise<NatsConnection> {
  return connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100, waitOnFirstConnect: true });
}

function speedUp(channel: string, messageNumber: number): RocketMessage {
  return {
    metadata: { channel, messageNumber, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketSpeedIncreased" },
    message: { by: 10 },
  };
}

describe("EventPublisher (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let provisioned: Provisioned;
  let publisher: EventPublisher;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectFast(server);
    provisioned = await provisionTopology(nc, settings, log);
    publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 2000 });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("stores a message under its channel's subject with the channel:number message id", async () => {
    const channel = randomUUID();
    const ack = ackOf(await publisher.publish(launched(channel)));
    expect(ack.duplicate).toBe(false);
    const stored = await provisioned.jsm.streams.getMessage(STREAM_NAME, { seq: ack.seq });
    expect(stored?.subject).toBe(provisioned.topology.subjectFor(channel));
    expect(stored?.subject).toMatch(new RegExp(`^rockets\\.events\\.\\d+\\.${channel}$`));
    expect(stored?.header.get("Nats-Msg-Id")).toBe(`${channel}:1`);
    expect(stored?.json()).toEqual(launched(channel));
  });

  it("reports a resent message as a duplicate of the stored one", async () => {
    const channel = randomUUID();
    const first = ackOf(await publisher.publish(launched(channel)));
    const again = ackOf(await publisher.publish(launched(channel)));
    expect(again).toEqual({ seq: first.seq, duplicate: true });
  });

  it("publishes many at once and answers each in order, duplicates included", async () => {
    const channel = randomUUID();
    const first = ackOf(await publisher.publish(launched(channel)));
    const more = [2, 3, 4].map((n) => speedUp(channel, n));
    const results = await publisher.publishMany([launched(channel), ...more]);
    expect(results.map((r) => (r.ok ? r.ack.duplicate : r.error.name))).toEqual([true, false, false, false]);
    expect(results[0]).toMatchObject({ ok: true, ack: { seq: first.seq } });
    const seqs = results.slice(1).map((r) => (r.ok ? r.ack.seq : -1));
    for (const [i, seq] of seqs.entries()) {
      const stored = await provisioned.jsm.streams.getMessage(STREAM_NAME, { seq });
      expect(stored?.header.get("Nats-Msg-Id")).toBe(`${channel}:${i + 2}`);
    }
    for (const r of results) expect(r.seconds).toBeGreaterThanOrEqual(0);
  });

  it("reads back the document stored at a sequence, from the stream, and nothing where there is none", async () => {
    const channel = randomUUID();
    const ack = ackOf(await publisher.publish(launched(channel)));
    expect(await publisher.storedAt(ack.seq)).toEqual({ ok: true, document: launched(channel) });
    expect(await publisher.storedAt(ack.seq + 1_000_000)).toEqual({ ok: true, document: undefined });
  });

  it("answers the stream check while the stream exists", async () => {
    expect(publisher.connected).toBe(true);
    expect(await publisher.checkStream()).toBeUndefined();
  });

  it("fails at once with PublishUnavailableError while disconnected, and publishes again after reconnecting", async () => {
    await server.stop();
    await expect.poll(() => publisher.connected, { timeout: 5000 }).toBe(false);
    const started = performance.now();
    expect(answerOf(await publisher.publish(launched(randomUUID())))).toBeInstanceOf(PublishUnavailableError);
    const many = await publisher.publishMany([launched(randomUUID()), launched(randomUUID())]);
    for (const r of many) expect(r).toMatchObject({ ok: false, error: expect.any(PublishUnavailableError) });
    expect(await publisher.checkStream()).toBeInstanceOf(PublishUnavailableError);
    expect(await publisher.storedAt(1)).toMatchObject({ ok: false, error: expect.any(PublishUnavailableError) });
    expect(performance.now() - started).toBeLessThan(100);

    await server.launch();
    await expect.poll(() => publisher.connected, { timeout: 10_000 }).toBe(true);
    expect(ackOf(await publisher.publish(launched(randomUUID())))).toMatchObject({ duplicate: false });
  });
});

describe("EventPublisher when the stream is missing or silent", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let other: NatsConnection;
  let provisioned: Provisioned;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectFast(server);
    other = await connectFast(server);
    provisioned = await provisionTopology(nc, settings, log);
    await provisioned.jsm.streams.delete(STREAM_NAME);
  });
  afterAll(async () => {
    await other?.close();
    await nc?.close();
    await server?.dispose();
  });

  it("says the stream is unavailable when nothing stores its subjects", async () => {
    const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 1000 });
    const err = answerOf(await publisher.publish(launched(randomUUID())));
    expect(err).toBeInstanceOf(PublishUnavailableError);
    expect(err).not.toBeInstanceOf(PublishTimeoutError);
    expect(await publisher.checkStream()).toBeInstanceOf(PublishFailedError);
  });

  it("keeps at most maxInFlight publishes awaiting an ack; the others wait their turn", async () => {
    let received = 0;
    const sub = other.subscribe("rockets.events.>", { callback: () => void received++ });
    await other.flush();
    try {
      const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 1500, maxInFlight: 1 });
      const first = publisher.publish(launched(randomUUID())).then(answerOf);
      await expect.poll(() => received).toBe(1);
      await sleep(300);
      // Called 300 ms after the first, the second still has time left when the first's slot frees up.
      const second = publisher.publish(launched(randomUUID())).then(answerOf);
      await sleep(300);
      expect(received).toBe(1); // the second waits for the first's slot
      expect(await first).toBeInstanceOf(PublishTimeoutError);
      await expect.poll(() => received).toBe(2); // then goes out with what is left of its own timeout
      expect(await second).toBeInstanceOf(PublishTimeoutError);
    } finally {
      sub.unsubscribe();
    }
  });

  it("fails a publish that finds no free slot before its deadline, without sending it", async () => {
    let received = 0;
    const sub = other.subscribe("rockets.events.>", { callback: () => void received++ });
    await other.flush();
    try {
      const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 300, maxInFlight: 1 });
      const [first, second] = await Promise.all(
        [launched(randomUUID()), launched(randomUUID())].map((m) => publisher.publish(m).then(answerOf)),
      );
      expect(first).toBeInstanceOf(PublishTimeoutError);
      expect(second).toBeInstanceOf(PublishTimeoutError);
      expect((second as Error).message).toMatch(/no publish slot/);
      await other.flush();
      expect(received).toBe(1);
    } finally {
      sub.unsubscribe();
    }
  });

  it("answers a resend that races its original on a replicated stream (10158) as retry-later, not as refused", async () => {
    // What a replicated stream's leader answers while the same Nats-Msg-Id is still being stored.
    const sub = other.subscribe("rockets.events.>", {
      callback: (_err, msg) => {
        msg.respond(JSON.stringify({ error: { code: 503, err_code: 10158, description: "duplicate message id is in process" } }));
      },
    });
    await other.flush();
    try {
      const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 1000 });
      const err = answerOf(await publisher.publish(launched(randomUUID())));
      expect(err).toBeInstanceOf(PublishUnavailableError);
      expect(err).not.toBeInstanceOf(PublishTimeoutError);
      const refused = { error: { code: 503, err_code: 10077, description: "maximum messages exceeded" } };
      sub.unsubscribe();
      const other2 = other.subscribe("rockets.events.>", { callback: (_e, msg) => void msg.respond(JSON.stringify(refused)) });
      await other.flush();
      try {
        expect(answerOf(await publisher.publish(launched(randomUUID())))).toBeInstanceOf(PublishFailedError);
      } finally {
        other2.unsubscribe();
      }
    } finally {
      sub.unsubscribe();
    }
  });

  it("times out when the subject is answered by nothing that acks", async () => {
    // A plain subscriber takes the publish and never replies: the ack never comes.
    const sub = other.subscribe("rockets.events.>");
    await other.flush();
    try {
      const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 300 });
      const started = performance.now();
      expect(answerOf(await publisher.publish(launched(randomUUID())))).toBeInstanceOf(PublishTimeoutError);
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    } finally {
      sub.unsubscribe();
    }
  });

  it("fails a publish awaiting its ack as unavailable as soon as the connection drops", async () => {
    let received = 0;
    other.subscribe("rockets.events.>", { callback: () => void received++ });
    await other.flush();
    const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, { timeoutMs: 20_000 });
    const publishing = publisher.publish(launched(randomUUID())).then(answerOf);
    await expect.poll(() => received).toBe(1);
    const started = performance.now();
    await server.stop();
    const err = await publishing;
    expect(err).toBeInstanceOf(PublishUnavailableError);
    expect(err).not.toBeInstanceOf(PublishTimeoutError);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
