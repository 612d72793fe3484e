import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import type { RocketMessage } from "../domain/message.js";
import { NatsServer } from "../testing/nats-server.js";
import { HistoryTooLongError } from "../domain/history.js";
import { receiveTime, StreamChannelHistory } from "./channel-history.js";
import { messageId, provisionTopology, STREAM_NAME, type Provisioned } from "./topology.js";

const log = pino({ level: "silent" });
const settings = { partitions: 4, replicas: 1, duplicateWindowSeconds: 120 };

function message(channel: string, n: number): RocketMessage {
  const metadata = { channel, messageNumber: n, messageTime: `2025-04-02T09:21:${String(n).padStart(2, "0")}.458989221+02:00` };
  if (n === 1) {
    return { metadata: { ...metadata, messageType: "RocketLaunched" }, message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } };
  }
  return { metadata: { ...metadata, messageType: "RocketSpeedIncreased" }, message: { by: n } };
}

describe("StreamChannelHistory (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let provisioned: Provisioned;
  let history: StreamChannelHistory;

  async function publish(channel: string, payload: unknown, id: string): Promise<number> {
    const subject = provisioned.topology.subjectFor(channel);
    const ack = await provisioned.js.publish(subject, JSON.stringify(payload), { msgID: id });
    return ack.seq;
  }

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    provisioned = await provisionTopology(nc, settings, log);
    history = new StreamChannelHistory(nc, provisioned.jsm, { maxMessages: 50, fetchTimeoutMs: 2000 }, log);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it("returns the channel's stored messages in stream order with sequence and receive time, and nothing of other channels", async () => {
    const channel = randomUUID();
    const other = randomUUID();
    const before = new Date().toISOString();
    const seqs: number[] = [];
    for (const n of [2, 1, 3]) {
      seqs.push(await publish(channel, message(channel, n), messageId(channel, n)));
      await publish(other, message(other, n), messageId(other, n));
    }
    // A resend after the duplicate window: the same number stored again.
    seqs.push(await publish(channel, message(channel, 2), `${messageId(channel, 2)}:again`));
    const read = await history.read(channel);
    expect(read.messages.map((m) => [m.seq, m.message.metadata.messageNumber])).toEqual([
      [seqs[0], 2],
      [seqs[1], 1],
      [seqs[2], 3],
      [seqs[3], 2],
    ]);
    expect(read.messages[1]!.message).toEqual(message(channel, 1));
    expect(read.rejected).toBe(0);
    const times = read.messages.map((m) => m.receivedAt);
    for (const t of times) expect(t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
    expect([...times].sort()).toEqual(times);
    expect(times[0]! >= before.replace("Z", "000000Z")).toBe(true);
    expect(read.heldSince !== null && read.heldSince <= times[0]!).toBe(true);
  });

  it("counts stored messages that are not valid rocket messages, or name another channel, as rejected", async () => {
    const channel = randomUUID();
    await publish(channel, message(channel, 1), messageId(channel, 1));
    await publish(channel, { metadata: { channel, messageNumber: 0 } }, "bad-1");
    await publish(channel, message(randomUUID(), 2), "bad-2");
    const read = await history.read(channel);
    expect(read.messages.map((m) => m.message.metadata.messageNumber)).toEqual([1]);
    expect(read.rejected).toBe(2);
  });

  it("answers an empty history for a channel the stream never saw, and creates no consumer", async () => {
    const read = await history.read(randomUUID());
    expect(read.messages).toEqual([]);
    // Every read above and here went without one: ingest's and the API's NATS users may not create any.
    expect((await provisioned.jsm.streams.info(STREAM_NAME)).state.consumer_count).toBe(0);
  });

  it("reads the same history from the stream's leader alone when the stream allows no direct gets", async () => {
    const channel = randomUUID();
    for (const n of [1, 3, 2]) await publish(channel, message(channel, n), messageId(channel, n));
    const direct = await history.read(channel);
    const info = await provisioned.jsm.streams.info(STREAM_NAME);
    expect(info.config.allow_direct).toBe(true);
    await provisioned.jsm.streams.update(STREAM_NAME, { ...info.config, allow_direct: false });
    try {
      const fromLeader = await history.read(channel);
      expect(fromLeader).toEqual(direct);
      expect(fromLeader.messages.map((m) => m.message.metadata.messageNumber)).toEqual([1, 3, 2]);
    } finally {
      await provisioned.jsm.streams.update(STREAM_NAME, { ...info.config, allow_direct: true });
    }
  });

  it("refuses a channel holding more messages than one read may return", async () => {
    const channel = randomUUID();
    for (let n = 1; n <= 51; n += 1) await publish(channel, message(channel, n), messageId(channel, n));
    await expect(history.read(channel)).rejects.toBeInstanceOf(HistoryTooLongError);
  });

  it("no longer returns what the stream removed, and moves heldSince to the oldest message it keeps", async () => {
    const channel = randomUUID();
    const first = await publish(channel, message(channel, 1), messageId(channel, 1));
    const second = await publish(channel, message(channel, 2), messageId(channel, 2));
    await provisioned.jsm.streams.purge(STREAM_NAME, { seq: second });
    const read = await history.read(channel);
    expect(read.messages.map((m) => m.seq)).toEqual([second]);
    expect(first).toBeLessThan(second);
    expect(read.heldSince).toBe(read.messages[0]!.receivedAt);
  });

  it("writes receive times with every nanosecond digit, from the server's shortest form", () => {
    expect(receiveTime("2025-04-02T07:21:50.458989221Z")).toBe("2025-04-02T07:21:50.458989221Z");
    expect(receiveTime("2025-04-02T07:21:50.000000001Z")).toBe("2025-04-02T07:21:50.000000001Z");
    expect(receiveTime("2025-04-02T07:21:50.4589Z")).toBe("2025-04-02T07:21:50.458900000Z");
    expect(receiveTime("2025-04-02T07:21:50Z")).toBe("2025-04-02T07:21:50.000000000Z");
    expect(() => receiveTime("2025-04-02T09:21:50+02:00")).toThrow(/not a server timestamp/);
  });
});

describe("StreamChannelHistory before anything was ingested", () => {
  it("answers an empty history when the events stream does not exist yet", async () => {
    const server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    try {
      const reader = new StreamChannelHistory(nc, await jetstreamManager(nc), { maxMessages: 10, fetchTimeoutMs: 1000 }, log);
      expect(await reader.read(randomUUID())).toEqual({ messages: [], rejected: 0, heldSince: null });
    } finally {
      await nc.close();
      await server.dispose();
    }
  });
});
