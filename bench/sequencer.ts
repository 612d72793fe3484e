// npm run bench:sequencer
//
// Drain rate of one sequencer instance: preloads the events stream of a
// fresh nats-server with 200,000 messages over 1,000 channels, shuffled, plus
// 5% duplicates (published without a Nats-Msg-Id so the stream keeps them),
// then starts one sequencer process and measures how fast it turns the
// backlog into final KV state: messages/s until every consumer has nothing
// pending or unacknowledged (an ack follows the KV write that holds the
// message), and KV writes per message from the sequencer's /metrics. Checks
// every channel's final state against the in-order result before printing.
//
// Environment: BENCH_CHANNELS (1000), BENCH_PER_CHANNEL (200),
// BENCH_DUPLICATES (0.05); anything else (KV_WRITE_CONCURRENCY, FETCH_BATCH,
// MAX_ACK_PENDING, PARTITIONS, ...) is passed to the sequencer.
// BENCH_PROFILE_DIR=<dir> writes a CPU profile of the sequencer there (a heap profile with BENCH_PROFILE=heap);
// BENCH_NODE_ARGS adds node flags to the sequencer process.
// BENCH_TAKEN_LATE=1: first a sequencer drains as many other channels' messages
// and hands its partitions over (SIGTERM), then the measured one takes them:
// a takeover after the stream already holds a history, not a fresh start.

import { cpus, loadavg } from "node:os";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { ChannelStateStore } from "../internal/nats/channel-state-store.js";
import { consumerName } from "../internal/nats/partition-consumer.js";
import { messageId, provisionTopology, STATE_BUCKET, STREAM_NAME } from "../internal/nats/topology.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { makeTraffic, Rng, shuffle, subjectOf } from "../internal/testing/rocket-traffic.js";
import { ServiceProcess } from "../internal/testing/service-process.js";
import type { RocketMessage } from "../internal/domain/message.js";
import { cpuSeconds } from "./process-cpu.js";
import { scrape as scrapeMetrics } from "../internal/testing/metrics.js";

/** Issue 11: messages/s one sequencer instance drains (200k over 1000 channels). */
const DRAIN_GOAL = 60_000;

const env = process.env;
const CHANNELS = Number(env["BENCH_CHANNELS"] ?? 1000);
const PER_CHANNEL = Number(env["BENCH_PER_CHANNEL"] ?? 200);
const DUPLICATE_RATE = Number(env["BENCH_DUPLICATES"] ?? 0.05);
const PUBLISH_WINDOW = 512;
const log = pino({ level: "warn" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await scrapeMetrics(url);
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at).replace(/,?service="sequencer"/, "").replace("{}", ""), Number(line.slice(at + 1)));
  }
  return values;
}

function handled(m: Map<string, number>): number {
  let sum = 0;
  for (const outcome of ["applied", "duplicate", "buffered", "rejected"]) {
    sum += m.get(`rockets_sequencer_messages_total{outcome="${outcome}"}`) ?? 0;
  }
  return sum;
}

const server = await NatsServer.start();
const nc = await connect({ servers: server.url });
let sequencer: ServiceProcess | undefined;
try {
  const provisioned = await provisionTopology(
    nc,
    {
      partitions: env["PARTITIONS"] ? Number(env["PARTITIONS"]) : undefined,
      replicas: 1,
      duplicateWindowSeconds: 120,
      // s2 (the default) or none: what compressing the stream costs the drain.
      compression: env["STREAM_COMPRESSION"] === "none" ? "none" : "s2",
    },
    log,
  );
  const partitions = provisioned.topology.partitions;
  const js = jetstream(nc);
  /** Publishes in windows of PUBLISH_WINDOW; a duplicate goes without a Nats-Msg-Id, so the stream keeps it. */
  const publishAll = async (items: Array<{ m: RocketMessage; duplicate: boolean }>) => {
    let inFlight: Array<Promise<unknown>> = [];
    for (const { m, duplicate } of items) {
      const options = duplicate ? undefined : { msgID: messageId(m.metadata.channel, m.metadata.messageNumber) };
      inFlight.push(js.publish(subjectOf(m, partitions), JSON.stringify(m), options));
      if (inFlight.length >= PUBLISH_WINDOW) {
        await Promise.all(inFlight);
        inFlight = [];
      }
    }
    await Promise.all(inFlight);
  };

  let history = 0;
  if (env["BENCH_TAKEN_LATE"] === "1") {
    const earlier = makeTraffic({ channels: CHANNELS, perChannel: PER_CHANNEL, seed: 41 });
    const messages = shuffle([...earlier.byChannel.values()].flat(), new Rng(40));
    await publishAll(messages.map((m) => ({ m, duplicate: false })));
    history = messages.length;
    const first = await ServiceProcess.start("sequencer", { natsUrl: server.url, env: { LOG_LEVEL: "warn", INSTANCE_ID: "bench-earlier" } });
    while (handled(await scrape(first.url)) < history) await sleep(100);
    await first.stop("SIGTERM");
    console.log(`taken late: an earlier sequencer drained ${history} messages of ${CHANNELS} other channels and handed its partitions over`);
  }

  const traffic = makeTraffic({ channels: CHANNELS, perChannel: PER_CHANNEL, seed: 42 });
  const rng = new Rng(43);
  const originals = [...traffic.byChannel.values()].flat().map((m) => ({ m, duplicate: false }));
  const copies = originals.filter(() => rng.next() < DUPLICATE_RATE).map(({ m }) => ({ m, duplicate: true }));
  const stream = shuffle([...originals, ...copies], rng);

  const publishStarted = performance.now();
  await publishAll(stream);
  const publishSeconds = (performance.now() - publishStarted) / 1000;
  const info = await (await jetstreamManager(nc)).streams.info(STREAM_NAME);
  console.log(
    `preloaded ${info.state.messages - history} messages (${originals.length} distinct + ${copies.length} duplicates) ` +
      `over ${CHANNELS} channels, ${partitions} partitions, in ${publishSeconds.toFixed(1)} s (nats-server pid ${server.pid})`,
  );

  const passThrough: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && /^(KV_WRITE_CONCURRENCY|STATE_WRITE_LINGER_MS|FETCH_BATCH|MAX_ACK_PENDING|MAX_ACTORS|ACK_WAIT_MS)$/.test(k)) {
      passThrough[k] = v;
    }
  }
  sequencer = await ServiceProcess.start("sequencer", {
    natsUrl: server.url,
    env: { LOG_LEVEL: "warn", INSTANCE_ID: "bench", ...passThrough },
    nodeArgs: [
      ...(env["BENCH_NODE_ARGS"]?.split(" ").filter((a) => a !== "") ?? []),
      ...(env["BENCH_PROFILE_DIR"]
        ? [env["BENCH_PROFILE"] === "heap" ? "--heap-prof" : "--cpu-prof", `--diagnostic-dir=${env["BENCH_PROFILE_DIR"]}`]
        : []),
    ],
  });
  const t0 = performance.now();
  const atReady = handled(await scrape(sequencer.url));
  const cpu0 = { sequencer: cpuSeconds(sequencer.pid), server: cpuSeconds(server.pid) };

  // Every message gets exactly one outcome, counted once its ack (or term) is sent: poll the
  // sequencer's own counters (cheap), then confirm with the consumers (consumer info is costly on
  // 2.9 with wildcard filters, so polling it would slow the server we are measuring).
  const jsm = await jetstreamManager(nc);
  const expected = info.state.messages - history;
  while (handled(await scrape(sequencer.url)) < expected) await sleep(50);
  for (;;) {
    let outstanding = 0;
    for (let p = 0; p < partitions; p += 1) {
      const ci = await jsm.consumers.info(STREAM_NAME, consumerName(p)).catch(() => undefined);
      outstanding += ci ? ci.num_pending + ci.num_ack_pending : Number.POSITIVE_INFINITY;
    }
    if (outstanding === 0) break;
    await sleep(200);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = { sequencer: cpuSeconds(sequencer.pid) - cpu0.sequencer, server: cpuSeconds(server.pid) - cpu0.server };
  const metrics = await scrape(sequencer.url);
  const total = handled(metrics);
  const writes = metrics.get("rockets_sequencer_kv_writes_total") ?? 0;
  const conflicts = metrics.get("rockets_sequencer_revision_conflicts_total") ?? 0;

  const store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET));
  let wrong = 0;
  for (const [channel, rocket] of traffic.expected) {
    const stored = await store.load(channel);
    const ok =
      stored?.state.lastApplied === PER_CHANNEL &&
      stored.state.pending.length === 0 &&
      JSON.stringify(stored.state.rocket) === JSON.stringify(rocket);
    if (!ok) wrong += 1;
  }

  const drained = total - atReady;
  console.log(`drained ${drained} messages after readiness (${atReady} before it) in ${seconds.toFixed(2)} s`);
  const drainRate = drained / seconds;
  console.log(`drain rate: ${Math.round(drainRate)} messages/s (issue 11 goal >= ${DRAIN_GOAL}: ${drainRate >= DRAIN_GOAL ? "met" : "NOT met"})`);
  console.log(
    `CPU during the drain: sequencer ${cpu.sequencer.toFixed(1)} s (${Math.round((cpu.sequencer * 1e6) / drained)} µs/message), ` +
      `nats-server ${cpu.server.toFixed(1)} s (${Math.round((cpu.server * 1e6) / drained)} µs/message); ` +
      `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`,
  );
  console.log(`KV writes: ${writes} (${(writes / total).toFixed(3)} per message), revision conflicts: ${conflicts}`);
  console.log(`messages read back from the stream to close gaps: ${metrics.get("rockets_sequencer_reread_messages_total") ?? 0}`);
  console.log(
    `outcomes: applied ${metrics.get('rockets_sequencer_messages_total{outcome="applied"}')}, ` +
      `buffered ${metrics.get('rockets_sequencer_messages_total{outcome="buffered"}')}, ` +
      `duplicate ${metrics.get('rockets_sequencer_messages_total{outcome="duplicate"}')}, ` +
      `overflow ${metrics.get('rockets_sequencer_messages_total{outcome="overflow"}')}`,
  );
  console.log(`final state: ${CHANNELS - wrong}/${CHANNELS} channels exact`);
  if (wrong > 0) process.exitCode = 1;
} finally {
  await sequencer?.stop("SIGTERM");
  await nc.close();
  await server.dispose();
}
