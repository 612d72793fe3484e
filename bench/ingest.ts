// npm run bench:ingest
//
// Measures, in one run against one fresh nats-server (R1, file store):
//   raw     JetStream publishes from this process, 512 in flight, awaiting each ack:
//           with the NATS client's js.publish (the baseline the goals refer to)
//           and with ingest's own EventPublisher;
//   single  POST /messages, one message per request, 64 keep-alive clients;
//   batch   POST /messages, 100 messages per request, 64 keep-alive clients;
// with the same kind of payloads, every message unique (dedup never flatters
// a figure), ingest in its own process(es) and the HTTP load generator (wrk
// if installed, see runLoad) in another, each phase on an emptied stream.
//   bare    POST /messages to a bare fastify route that only parses the JSON
//           (bench/bare-fastify-server.ts), single messages, same load: the
//           yardstick of issue 11's firehose goal.
// Goals: single >= 0.6 x raw, batch >= 0.9 x raw (messages/s); issue 11:
// ingest CPU per single-message POST <= 1.3 x the bare route's, and <= 20 us
// of ingest CPU per message in batches of 100.
//
// The phases run in rounds (raw, raw, single, batch, again...) and the
// figures are the medians, so that a load spike from elsewhere on the machine
// skews one round, not a whole phase. Next to each rate: the CPU time the
// publishing process spent per message (this process for raw, ingest for
// HTTP), which busy neighbours distort less than rates.
//
// Environment: BENCH_SECONDS (per phase and round, default 5), BENCH_ROUNDS
// (default 3), BENCH_WARMUP_SECONDS (per phase, once, default 10), BENCH_CONNECTIONS (default 64), BENCH_BATCH (default 100),
// BENCH_LOADGEN (wrk or autocannon; default wrk when installed),
// BENCH_INGEST_WORKERS (ingest's WORKERS, default 2), BENCH_PROFILE_DIR (writes
// V8 CPU profiles of ingest's processes there).

import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
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
import { benchServer, type BenchServer } from "./bench-server.js";
import { cpuSeconds } from "./process-cpu.js";
import { TEST_KEYS } from "../internal/testing/api-keys.js";
import { scrape as scrapeMetrics } from "../internal/testing/metrics.js";

const env = process.env;
const SECONDS = Number(env["BENCH_SECONDS"] ?? 5);
const ROUNDS = Number(env["BENCH_ROUNDS"] ?? 3);
const CONNECTIONS = Number(env["BENCH_CONNECTIONS"] ?? 64);
const BATCH = Number(env["BENCH_BATCH"] ?? 100);
/** Ingest's WORKERS: two processes for two cores (see cmd/ingest/main.ts). */
const INGEST_WORKERS = env["BENCH_INGEST_WORKERS"] ?? "2";
const IN_FLIGHT = 512;
/**
 * Each phase runs this long once before the rounds: V8 needs some seconds of
 * load to optimise the hot paths, and two workers each see half of it
 * (measured: a cold ingest does ~12.5k single-message requests/s in its first
 * 4 s and ~16k from its third run of 5 s on).
 */
const WARMUP_SECONDS = Number(env["BENCH_WARMUP_SECONDS"] ?? 10);

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

interface Figure {
  rate: number;
  /** CPU microseconds per message in the publishing process. */
  cpuUs: number;
  note: string;
}

/**
 * The HTTP load generator: wrk (C, Debian's package `wrk`) when it is on the
 * PATH, else autocannon. Both share the machine's two cores with ingest and
 * nats-server, so the generator's own CPU per request is taken from what
 * ingest can get: autocannon spends ~60 us per request, wrk ~17, and with
 * autocannon the single-message figure measures the generator as much as ingest.
 */
const LOADGEN = env["BENCH_LOADGEN"] ?? (spawnSync("wrk", ["--version"]).error === undefined ? "wrk" : "autocannon");

function runLoad(url: string, seconds: number, batch: number): Promise<LoadResult> {
  const [command, args] =
    LOADGEN === "wrk"
      ? ["wrk", ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "-s", join("bench", "ingest-load.lua"), url, "--", randomUUID(), String(batch), TEST_KEYS.writer]]
      : [process.execPath, ["--import", "tsx", join("bench", "ingest-load.ts"), url, String(CONNECTIONS), String(seconds), String(batch), TEST_KEYS.writer]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}") as LoadResult);
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

const server = await NatsServer.start();
// The raw client is configured exactly as the services configure theirs.
const nc = await connect(await connectionOptions({ servers: [server.url], name: "bench-raw" }));
let ingest: ServiceProcess | undefined;
let bare: BenchServer | undefined;
try {
  const log = pino({ level: "warn" });
  const settings = { partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 };
  const { topology } = await provisionTopology(nc, settings, log);
  const js = jetstream(nc, { timeout: 10_000 });
  const jsm = await jetstreamManager(nc);
  const storedCount = async () => (await jsm.streams.info(STREAM_NAME)).state.messages;
  /** The count once requests still in flight when a load generator stopped have landed, so the next phase starts clean. */
  const settledCount = async () => {
    for (let last = -1; ; ) {
      const count = await storedCount();
      if (count === last) return count;
      last = count;
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  /**
   * Every phase starts on an empty stream: the stream's store and its
   * duplicate-window index grow with every message, and nats-server's cost
   * per message with them, so phases measured later would otherwise pay for
   * the messages of the phases before (the order, not the path, would decide).
   */
  // Every phase ends settled (raw awaits each ack, HTTP waits for settledCount), so nothing is in flight here.
  const freshStream = async () => {
    await jsm.streams.delete(STREAM_NAME);
    await provisionTopology(nc, settings, log);
  };
  let problems = 0;

  const publisher = new EventPublisher(nc, jsm, topology, { timeoutMs: 10_000, maxInFlight: IN_FLIGHT });
  const viaClient = (m: RocketMessage) =>
    js.publish(topology.subjectFor(m.metadata.channel), JSON.stringify(m), { msgID: messageId(m.metadata.channel, m.metadata.messageNumber) });
  // A failure ends the run as the client's rejection would: the publisher reports failures as values.
  const viaPublisher = async (m: RocketMessage) => {
    const result = await publisher.publish(m);
    if (!result.ok) throw result.error;
  };

  const raw = async (seconds: number, publish: (m: RocketMessage) => Promise<unknown>): Promise<Figure> => {
    await freshStream();
    const set = messageSet();
    let next = 0;
    const start = await storedCount();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const until = started + seconds * 1000;
    const worker = async () => {
      while (performance.now() < until) await publish(set.message(next++) as RocketMessage);
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const elapsed = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const stored = (await storedCount()) - start;
    if (stored !== next) problems++;
    return { rate: next / elapsed, cpuUs: (used.user + used.system) / next, note: `${next} sent, ${stored} stored` };
  };

  ingest = await ServiceProcess.start("ingest", {
    natsUrl: server.url,
    env: { LOG_LEVEL: "warn", WORKERS: INGEST_WORKERS },
    nodeArgs: env["BENCH_PROFILE_DIR"] ? ["--cpu-prof", `--diagnostic-dir=${env["BENCH_PROFILE_DIR"]}`] : [],
  });
  const ingestUrl = ingest.url;
  const ingestCpuSeconds = async () => {
    const text = await scrapeMetrics(ingestUrl);
    const line = text.split("\n").find((l) => l.startsWith("process_cpu_seconds_total"));
    return Number(line?.slice(line.lastIndexOf(" ") + 1));
  };
  const http = async (seconds: number, batch: number): Promise<Figure> => {
    await freshStream();
    const start = await storedCount();
    const cpu = await ingestCpuSeconds();
    const r = await runLoad(ingestUrl, seconds, batch);
    const used = (await ingestCpuSeconds()) - cpu;
    const stored = (await settledCount()) - start;
    const messages = r.ok * batch;
    // Requests still in flight when the generator stops are stored but not counted: stored >= acknowledged.
    if (stored < messages || r.non2xx > 0 || r.errors > 0) problems++;
    return {
      rate: messages / r.seconds,
      cpuUs: (used * 1e6) / stored,
      note: `${r.ok} x 2xx, ${r.non2xx} non-2xx, ${r.errors} errors, p50 ${r.latencyP50Ms} ms, p99 ${r.latencyP99Ms} ms, ${stored} stored`,
    };
  };

  bare = await benchServer("bare-fastify-server.ts");
  const bareRoute = async (seconds: number): Promise<Figure> => {
    const cpu = cpuSeconds(bare!.pid);
    const r = await runLoad(bare!.base, seconds, 1);
    const used = cpuSeconds(bare!.pid) - cpu;
    return { rate: r.ok / r.seconds, cpuUs: (used * 1e6) / r.ok, note: `${r.ok} x 2xx, ${r.non2xx} non-2xx, p50 ${r.latencyP50Ms} ms, p99 ${r.latencyP99Ms} ms` };
  };

  await bareRoute(WARMUP_SECONDS);
  await raw(WARMUP_SECONDS, viaClient);
  await raw(WARMUP_SECONDS, viaPublisher);
  await http(WARMUP_SECONDS, 1);
  await http(WARMUP_SECONDS, BATCH);

  const phases = {
    "raw js.publish (baseline)": [] as Figure[],
    "raw ingest EventPublisher": [] as Figure[],
    "POST single message": [] as Figure[],
    [`POST batch of ${BATCH}`]: [] as Figure[],
    "POST bare parse-only route": [] as Figure[],
  };
  const names = Object.keys(phases);
  const show = (name: string, f: Figure) =>
    console.log(`  ${name.padEnd(27)} ${String(Math.round(f.rate)).padStart(7)} msg/s ${f.cpuUs.toFixed(0).padStart(5)} us CPU/msg  (${f.note})`);

  console.log(`ingest benchmark: ${ROUNDS} rounds of ${SECONDS}s per phase, ${CONNECTIONS} HTTP connections (${LOADGEN}), ingest WORKERS=${INGEST_WORKERS}, raw with ${IN_FLIGHT} in flight`);
  if (LOADGEN !== "wrk") console.log("note: wrk is not installed (apt-get install wrk); autocannon's own CPU cost lowers the HTTP figures");
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}`);
    const figures = [
      await raw(SECONDS, viaClient),
      await raw(SECONDS, viaPublisher),
      await http(SECONDS, 1),
      await http(SECONDS, BATCH),
      await bareRoute(SECONDS),
    ];
    figures.forEach((f, i) => {
      phases[names[i]!]!.push(f);
      show(names[i]!, f);
    });
  }

  const med = names.map((n) => ({ rate: median(phases[n]!.map((f) => f.rate)), cpuUs: median(phases[n]!.map((f) => f.cpuUs)) }));
  const [client, own, single, batched, bareFigure] = med as [Figure, Figure, Figure, Figure, Figure];
  console.log("medians");
  names.forEach((n, i) => show(n, { ...med[i]!, note: "median" }));
  console.log(`ratio single/raw ${(single.rate / client.rate).toFixed(2)} (goal >= 0.6)`);
  console.log(`ratio batch/raw  ${(batched.rate / client.rate).toFixed(2)} (goal >= 0.9)`);
  const overBare = single.cpuUs / bareFigure.cpuUs;
  console.log(`single POST CPU / bare route CPU ${overBare.toFixed(2)} (issue 11 goal <= 1.3: ${overBare <= 1.3 ? "met" : "NOT met"})`);
  console.log(`batch CPU per message ${batched.cpuUs.toFixed(1)} us (issue 11 goal <= 20 us: ${batched.cpuUs <= 20 ? "met" : "NOT met"})`);
  console.log(`against ingest's own publisher: single ${(single.rate / own.rate).toFixed(2)}, batch ${(batched.rate / own.rate).toFixed(2)}`);
  if (problems > 0) {
    console.log(`WARNING: ${problems} phase(s) with failed requests or fewer messages stored than acknowledged`);
    process.exitCode = 1;
  }
} finally {
  await ingest?.stop("SIGTERM");
  bare?.stop();
  await nc.close();
  await server.dispose();
}
