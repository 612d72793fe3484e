import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../testing/nats-server.js";
import { directGetSubject, readForward, type StoredEntry } from "./stream-forward-read.js";

describe("readForward: a stream's messages on a filter without a consumer (real nats-server)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let streams = 0;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  /** A fresh stream on subjects `<name>.>`; returns its name. */
  async function stream(direct: boolean): Promise<string> {
    streams += 1;
    const name = `READ_${streams}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`], allow_direct: direct });
    return name;
  }

  async function readAll(name: string, filter: string, fromSeq: number, direct: boolean): Promise<StoredEntry[]> {
    const seen: StoredEntry[] = [];
    await readForward(nc, jsm, { stream: name, filter, fromSeq, direct, timeoutMs: 2000 }, (e) => void seen.push(e));
    return seen;
  }

  for (const direct of [true, false]) {
    it(`returns the filter's messages from a sequence on, in order, skipping removed ones (${direct ? "direct gets, then the leader" : "the leader alone"})`, async () => {
      const name = await stream(direct);
      const seqs: Record<string, number[]> = { a: [], b: [] };
      for (let i = 0; i < 2500; i += 1) {
        const key = i % 3 === 0 ? "b" : "a";
        seqs[key]!.push((await js.publish(`${name}.${key}`, String(i))).seq);
      }
      const removed = seqs["a"]![5]!;
      await jsm.streams.deleteMessage(name, removed);
      const from = seqs["a"]![3]!;
      const read = await readAll(name, `${name}.a`, from, direct);
      expect(read.map((e) => e.seq)).toEqual(seqs["a"]!.filter((s) => s >= from && s !== removed));
      expect(read.every((e) => e.subject === `${name}.a`)).toBe(true);
      // The fourth "a" message was the sixth published (0-based 5: every third went to "b").
      expect(new TextDecoder().decode(read[0]!.data)).toBe("5");
      expect(read[0]!.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/);
      // A wildcard filter, and nothing past the end.
      expect((await readAll(name, `${name}.>`, 1, direct)).length).toBe(2499);
      expect(await readAll(name, `${name}.a`, seqs["b"]!.at(-1)! + 1, direct)).toEqual([]);
    });
  }

  for (const direct of [true, false]) {
    it(`reads no further than toSeq, and goes on after it even where the stream no longer holds it (${direct ? "direct gets" : "the leader alone"})`, async () => {
      const name = await stream(direct);
      const seqs: number[] = [];
      for (let i = 0; i < 30; i += 1) seqs.push((await js.publish(`${name}.${i % 2 === 0 ? "a" : "b"}`, String(i))).seq);
      const read = async (fromSeq: number, toSeq: number) => {
        const seen: number[] = [];
        const result = await readForward(nc, jsm, { stream: name, filter: `${name}.a`, fromSeq, direct, timeoutMs: 2000, toSeq }, (e) => void seen.push(e.seq));
        return { seen, result };
      };
      // "a" holds the odd sequences (1, 3, ...): up to 20 inclusive are 1..19.
      const upTo20 = await read(1, 20);
      expect(upTo20.seen).toEqual(seqs.filter((s) => s % 2 === 1 && s <= 20));
      expect(upTo20.result).toEqual({ next: 21, stopped: false });
      // The last sequence of the range is one "a" no longer holds (removed): the read still goes on after it.
      await jsm.streams.deleteMessage(name, 29);
      const upTo29 = await read(25, 29);
      expect(upTo29.seen).toEqual([25, 27]);
      expect(upTo29.result).toEqual({ next: 30, stopped: false });
      expect(await read(31, 30)).toEqual({ seen: [], result: { next: 31, stopped: false } });
    });
  }

  it("ends at toSeq while the stream is written without pause (an unbounded read would chase the writes)", async () => {
    const name = await stream(true);
    let last = 0;
    for (let i = 0; i < 200; i += 1) last = (await js.publish(`${name}.x`, String(i))).seq;
    let writing = true;
    const writer = (async () => {
      // Many writes in flight at once: faster than one leader request per message.
      while (writing) await Promise.all(Array.from({ length: 50 }, (_, i) => js.publish(`${name}.x`, String(i))));
    })();
    try {
      const seen: number[] = [];
      const result = await readForward(nc, jsm, { stream: name, filter: `${name}.x`, fromSeq: 1, direct: true, timeoutMs: 2000, toSeq: last }, (e) => void seen.push(e.seq));
      expect(seen).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(result).toEqual({ next: last + 1, stopped: false });
    } finally {
      writing = false;
      await writer;
    }
  });

  it("stops where visit says so and says where to go on", async () => {
    const name = await stream(true);
    for (let i = 0; i < 10; i += 1) await js.publish(`${name}.x`, String(i));
    const seen: number[] = [];
    const result = await readForward(nc, jsm, { stream: name, filter: `${name}.x`, fromSeq: 1, direct: true, timeoutMs: 2000 }, (e) => {
      seen.push(e.seq);
      return e.seq < 4;
    });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(result).toEqual({ next: 5, stopped: true });
  });

  it("ends where the leader ends, not where a lagging direct responder stopped", async () => {
    // The stream serves no direct gets itself; a stand-in answers like a replica that has applied only the first 3 messages.
    const name = await stream(false);
    for (let i = 0; i < 8; i += 1) await js.publish(`${name}.x`, String(i));
    const replica = await connect({ servers: server.url });
    try {
      const lagging = replica.subscribe(directGetSubject(name), {
        callback: (_err, msg) => {
          for (let seq = 1; seq <= 3; seq += 1) {
            const h = headers();
            h.set("Nats-Sequence", String(seq));
            h.set("Nats-Subject", `${name}.x`);
            h.set("Nats-Time-Stamp", new Date().toISOString());
            h.set("Nats-Num-Pending", String(3 - seq));
            msg.respond(String(seq - 1), { headers: h });
          }
          msg.respond("", { headers: headers(204, "EOB") });
        },
      });
      await replica.flush();
      const seen = await readAll(name, `${name}.x`, 1, true);
      expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      lagging.unsubscribe();
    } finally {
      await replica.close();
    }
  });

  it("reads from the leader when direct gets find no responder", async () => {
    const name = await stream(false);
    for (let i = 0; i < 3; i += 1) await js.publish(`${name}.x`, String(i));
    expect((await readAll(name, `${name}.x`, 1, true)).map((e) => e.seq)).toEqual([1, 2, 3]);
  });
});
