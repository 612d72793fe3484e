// npm run bench:nats-sync
//
// What JetStream's `sync_interval` costs, measured side by side in one run:
// the server's default (flush to disk every 2 minutes: an acknowledged
// message survives a process crash, not an OS crash or power loss of the
// node) against `always` (fsync before every ack: it survives power loss)
// and a short group-commit interval. On one server (R1) and a 3-node cluster
// on this machine (R3, where an ack means a majority stored it).
//
// Two loads of ~250-byte messages on fresh streams:
//   c3      3 publishers each awaiting its ack before the next (the operators'
//           test program at its default concurrency, one message at a time);
//   w256    256 publishes in flight (ingest under load, batches).
// Rounds interleave the modes, so drift on a shared machine spreads over all
// of them; each figure is the median over rounds, with nats-server's CPU per
// message (all nodes together for R3).
//
// Environment: BENCH_SECONDS (per load, mode and round, default 3),
// BENCH_ROUNDS (default 2), BENCH_MODES (default "default,always,100ms").

import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsCluster, NatsServer } from "../internal/testing/nats-server.js";
import { cpuSeconds } from "./process-cpu.js";

const env = process.env;
const SECONDS = Number(env["BENCH_SECONDS"] ?? 3);
const ROUNDS = Number(env["BENCH_ROUNDS"] ?? 2);
const MODES = (env["BENCH_MODES"] ?? "default,always,100ms").split(",");
const PAYLOAD = new TextEncoder().encode(
  JSON.stringify({
    metadata: { channel: "193270a9-c9cf-404a-8f83-838e71d9ae67", messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketSpeedIncreased" },
    message: { by: 3000 },
  }).padEnd(250, " "),
);

interface Target {
  name: string;
  servers: NatsServer[];
  nc: NatsConnection;
  js: JetStreamClient;
}

interface Sample {
  rate: number;
  cpuUs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function target(mode: string, replicas: number): Promise<Target> {
  const syncInterval = mode === "default" ? undefined : mode;
  const servers = replicas === 1 ? [await NatsServer.start({ syncInterval })] : (await NatsCluster.start(3, { syncInterval })).servers;
  const nc = await connect({ servers: servers.map((s) => s.url) });
  return { name: `${mode} R${replicas}`, servers, nc, js: jetstream(nc) };
}

async function freshStream(t: Target, replicas: number): Promise<string> {
  const jsm = await jetstreamManager(t.nc);
  const name = "BENCH";
  await jsm.streams.delete(name).catch(() => undefined);
  await jsm.streams.add({ name, subjects: ["bench.>"], num_replicas: replicas });
  return name;
}

/** Publishes for SECONDS with `publishers` loops keeping `window` acks outstanding each; returns the rate and server CPU per message. */
async function load(t: Target, publishers: number, window: number): Promise<Sample> {
  const cpuBefore = t.servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0);
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let sent = 0;
  const loop = async () => {
    const inFlight = new Set<Promise<unknown>>();
    while (performance.now() < deadline) {
      const p: Promise<unknown> = t.js.publish(`bench.${sent % 64}`, PAYLOAD).then((): boolean => inFlight.delete(p));
      inFlight.add(p);
      sent += 1;
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  };
  await Promise.all(Array.from({ length: publishers }, loop));
  const seconds = (performance.now() - started) / 1000;
  const cpu = t.servers.reduce((sum, s) => sum + cpuSeconds(s.pid), 0) - cpuBefore;
  return { rate: sent / seconds, cpuUs: (cpu / sent) * 1e6 };
}

const LOADS = [
  { name: "c3", publishers: 3, window: 1 },
  { name: "w256", publishers: 1, window: 256 },
] as const;

async function main(): Promise<void> {
  const targets: Array<{ t: Target; replicas: number }> = [];
  try {
    for (const replicas of [1, 3]) for (const mode of MODES) targets.push({ t: await target(mode, replicas), replicas });
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const { t, replicas } of targets) {
        for (const l of LOADS) {
          await freshStream(t, replicas);
          const s = await load(t, l.publishers, l.window);
          const key = `${t.name} ${l.name}`;
          samples.set(key, [...(samples.get(key) ?? []), s]);
          process.stderr.write(`round ${round + 1} ${key}: ${Math.round(s.rate)} msg/s, ${Math.round(s.cpuUs)} us nats CPU/msg\n`);
        }
      }
    }
    console.log(`\nsync_interval cost (medians of ${ROUNDS} rounds x ${SECONDS} s; nats-server CPU per message, all nodes)`);
    console.log("| mode | replicas | load | msg/s | vs default | nats CPU us/msg |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const replicas of [1, 3]) {
      for (const l of LOADS) {
        const base = median((samples.get(`default R${replicas} ${l.name}`) ?? []).map((s) => s.rate));
        for (const mode of MODES) {
          const list = samples.get(`${mode} R${replicas} ${l.name}`) ?? [];
          const rate = median(list.map((s) => s.rate));
          const ratio = Number.isFinite(base) ? (rate / base).toFixed(2) : "-";
          console.log(`| ${mode} | R${replicas} | ${l.name} | ${Math.round(rate)} | ${ratio} | ${Math.round(median(list.map((s) => s.cpuUs)))} |`);
        }
      }
    }
  } finally {
    for (const { t } of targets) {
      await t.nc.close().catch(() => undefined);
      await Promise.all(t.servers.map((s) => s.dispose()));
    }
  }
}

await main();
