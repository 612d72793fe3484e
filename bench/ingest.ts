// npm run bench:ingest
//
// Measures, in one run against one fresh nats-server (R1, file store):
//   raw     JetStream publishes from this process, 512 in flight, awaiting each ack:
//           with the NATS client's js.publish (the baseline the goals refer to)
//           and with ingest's own EventPublisher;
//   single  POST /messages, one message per request, 64 keep-alive clients;
//   batch   POST /messages, 100 messages per request, 64 keep-alive clients;
// with the same kind of payloads, every message unique (dedup never flatters
// a figure), ingest in its own process and the HTTP load generator in
// another. Goals: single >= 0.6 x raw, batch >= 0.9 x raw (messages/s).
//
// Environment: BENCH_SECONDS (per HTTP phase, default 10), BENCH_RAW_MESSAGES
// (default 100000), BENCH_CONNECTIONS (default 64), BENCH_BATCH (default 100).

import { spawn } from "node:child_process";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import type { RocketMessage } from "../internal/domain/message.js";
import { connectionOptions } from "../internal/nats/connection.js";
import { EventPublisher } from "../internal/nats/event-publisher.js";
import { messageId, provisionTopology, STREAM_NAME } from "../internal/nats/topology.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { REPO_ROOT, ServiceProcess } from "../internal/testing/service-process.js";
import { messageSet } from "./ingest-messages.js";

const env = process.env;
const SECONDS = Number(env["BENCH_SECONDS"] ?? 10);
const RAW_MESSAGES = Number(env["BENCH_RAW_MESSAGES"] ?? 100_000);
const CONNECTIONS = Number(env["BENCH_CONNECTIONS"] ?? 64);
const BATCH = Number(env["BENCH_BATCH"] ?? 100);
const IN_FLIGHT = 512;
const WARMUP_SECONDS = 2;

interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function runLoad(url: string, seconds: number, batch: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join("bench", "ingest-load.ts"), url, String(CONNECTIONS), String(seconds), String(batch)],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}") as LoadResult);
    });
  });
}

const round = (n: number) => Math.round(n);

const server = await NatsServer.start();
// The raw client is configured exactly as the services configure theirs.
const nc = await connect(await connectionOptions({ servers: [server.url], name: "bench-raw" }));
let ingest: ServiceProcess | undefined;
try {
  const log = pino({ level: "warn" });
  const { topology } = await provisionTopology(nc, { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 }, log);
  const js = jetstream(nc, { timeout: 10_000 });
  const jsm = await jetstreamManager(nc);
  const storedCount = async () => (await jsm.streams.info(STREAM_NAME)).state.messages;

  // Raw: the same payloads the HTTP phases send, published from this process
  // with IN_FLIGHT awaiting their ack at once; once with the NATS client's
  // JetStream publish (the baseline), once with ingest's own publisher.
  const publisher = new EventPublisher(nc, jsm, topology, { timeoutMs: 10_000, maxInFlight: IN_FLIGHT });
  const viaClient = (m: RocketMessage) =>
    js.publish(topology.subjectFor(m.metadata.channel), JSON.stringify(m), { msgID: messageId(m.metadata.channel, m.metadata.messageNumber) });
  const viaPublisher = (m: RocketMessage) => publisher.publish(m);
  const rawPublish = async (count: number, publish: (m: RocketMessage) => Promise<unknown>) => {
    const set = messageSet();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) await publish(set.message(i) as RocketMessage);
    };
    const start = await storedCount();
    const started = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const rate = count / ((performance.now() - started) / 1000);
    return { rate, stored: (await storedCount()) - start };
  };
  await rawPublish(Math.min(20_000, RAW_MESSAGES), viaClient);
  await rawPublish(Math.min(20_000, RAW_MESSAGES), viaPublisher);
  const raw = await rawPublish(RAW_MESSAGES, viaClient);
  const rawOwn = await rawPublish(RAW_MESSAGES, viaPublisher);
  const rawRate = raw.rate;

  ingest = await ServiceProcess.start("ingest", { natsUrl: server.url, env: { LOG_LEVEL: "warn" } });
  const phase = async (batch: number) => {
    await runLoad(ingest!.url, WARMUP_SECONDS, batch);
    const start = await storedCount();
    const r = await runLoad(ingest!.url, SECONDS, batch);
    const stored = (await storedCount()) - start;
    return { ...r, stored, messagesPerSecond: (r.ok * batch) / r.seconds };
  };
  const single = await phase(1);
  const batched = await phase(BATCH);

  const line = (name: string, rate: number, extra: string) => console.log(`${name.padEnd(28)} ${String(round(rate)).padStart(8)} msg/s  ${extra}`);
  console.log(`\ningest benchmark: ${CONNECTIONS} connections, ${SECONDS}s per HTTP phase, raw ${RAW_MESSAGES} messages with ${IN_FLIGHT} in flight`);
  line("raw js.publish (baseline)", raw.rate, `(stored ${raw.stored})`);
  line("raw ingest EventPublisher", rawOwn.rate, `(stored ${rawOwn.stored})`);
  line("POST single message", single.messagesPerSecond, `(${single.ok} x 2xx, ${single.non2xx} non-2xx, ${single.errors} errors, p50 ${single.latencyP50Ms} ms, p99 ${single.latencyP99Ms} ms, stored ${single.stored})`);
  line(`POST batch of ${BATCH}`, batched.messagesPerSecond, `(${batched.ok} x 2xx, ${batched.non2xx} non-2xx, ${batched.errors} errors, p50 ${batched.latencyP50Ms} ms, p99 ${batched.latencyP99Ms} ms, stored ${batched.stored})`);
  console.log(`ratio single/raw ${(single.messagesPerSecond / rawRate).toFixed(2)} (goal >= 0.6)`);
  console.log(`ratio batch/raw  ${(batched.messagesPerSecond / rawRate).toFixed(2)} (goal >= 0.9)`);
  console.log(
    `against ingest's own publisher: single ${(single.messagesPerSecond / rawOwn.rate).toFixed(2)}, batch ${(batched.messagesPerSecond / rawOwn.rate).toFixed(2)}`,
  );
  if (raw.stored !== RAW_MESSAGES || rawOwn.stored !== RAW_MESSAGES || single.stored < single.ok || batched.stored < batched.ok * BATCH) {
    console.log("WARNING: fewer messages stored than acknowledged");
    process.exitCode = 1;
  }
} finally {
  await ingest?.stop("SIGTERM");
  await nc.close();
  await server.dispose();
}
