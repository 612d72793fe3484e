// Re-reads of parked messages against a real nats-server: what a read hands
// over, and that it stops at the last message the partition's consumer has
// delivered (what lies beyond was never delivered, so never parked, and
// reaches the actor through the consumer; reading it as well made a launch
// inside a burst re-read the burst once per window).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsServer } from "../testing/nats-server.js";
import { StreamParkedMessages } from "./parked-messages.js";
import { consumerName } from "./partition-consumer.js";
import { eventSubject, provisionTopology, STREAM_NAME, type Provisioned } from "./topology.js";

const log = pino({ level: "silent" });

describe("StreamParkedMessages (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let p: Provisioned;
  let js: JetStreamClient;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    p = await provisionTopology(nc, { partitions: 2, replicas: 1, duplicateWindowSeconds: 120 }, log);
    js = p.js;
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  const publish = async (partition: number, channel: string, n: number) => (await js.publish(eventSubject(partition, channel), JSON.stringify({ n }))).seq;

  it("reads the channel's messages from a sequence on, to the stream's end while the partition has no consumer", async () => {
    const reader = new StreamParkedMessages(js, p.jsm, 2000);
    const seqs = [await publish(1, "a", 1), await publish(1, "b", 1), await publish(1, "a", 2), await publish(1, "a", 3)];
    const seen: number[] = [];
    await reader.read(1, "a", seqs[2]!, (m) => seen.push(m.seq));
    expect(seen).toEqual([seqs[2], seqs[3]]);
  });

  it("stops at the last message the partition's consumer delivered", async () => {
    const reader = new StreamParkedMessages(js, p.jsm, 2000);
    const first = await publish(0, "c", 1);
    await publish(0, "c", 2);
    await p.jsm.consumers.add(STREAM_NAME, { durable_name: consumerName(0), filter_subject: eventSubject(0, "*"), ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get(STREAM_NAME, consumerName(0));
    // The consumer delivers the first two; three more are stored behind them, never delivered.
    const delivered = await consumer.fetch({ max_messages: 2, expires: 2000 });
    const deliveredSeqs: number[] = [];
    for await (const m of delivered) deliveredSeqs.push(m.seq);
    const later = [await publish(0, "c", 3), await publish(0, "c", 4), await publish(0, "c", 5)];
    const seen: number[] = [];
    await reader.read(0, "c", first, (m) => seen.push(m.seq));
    expect(seen).toEqual(deliveredSeqs);
    expect(seen).not.toContain(later[0]);
  });
});
