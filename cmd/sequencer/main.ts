// Sequencer wiring: config -> logger, metrics -> ops server (not ready until
// started) -> NATS connection and topology -> join, take partitions -> ready.
// SIGTERM/SIGINT: not ready -> stop pulling -> finish in-flight state writes
// -> release every lease and leave -> drain NATS -> exit 0.

import { ConfigError } from "../../internal/config/env-reader.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { provisionTopology, TopologyConflictError, type Provisioned } from "../../internal/nats/topology.js";
import { createLogger, type Logger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import type { Sequencer } from "../../internal/sequencer/sequencer.js";
import { buildApp } from "./app.js";
import { loadConfig, SERVICE_NAME, type SequencerConfig } from "./config.js";
import { createSequencer } from "./runtime.js";

const DRAIN_TIMEOUT_MS = 5000;

function readConfig(): SequencerConfig {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Provisions the topology, retrying transient failures (JetStream still starting); a conflict is fatal. */
async function provision(nc: NatsConnection, config: SequencerConfig, log: Logger, stopping: () => boolean): Promise<Provisioned | undefined> {
  for (let attempt = 0; !stopping(); attempt++) {
    try {
      return await provisionTopology(nc, config.topology, log);
    } catch (err) {
      if (err instanceof TopologyConflictError || stopping()) throw err;
      log.warn({ err, attempt }, "topology provisioning failed, retrying");
      await sleep(Math.min(10_000, 500 * 2 ** attempt));
    }
  }
  return undefined;
}

const config = readConfig();
const log = createLogger(SERVICE_NAME, config.logLevel).child({ instanceId: config.instanceId });
const registry = createRegistry(SERVICE_NAME);

let nc: NatsConnection | undefined;
let sequencer: Sequencer | undefined;
let started = false;
let stopping = false;

const app = buildApp({
  registry,
  readiness: () => {
    if (stopping) return "shutting down";
    if (!sequencer || !started) return "starting";
    return sequencer.health();
  },
  ownership: () => ({ instanceId: config.instanceId, partitions: sequencer?.ownedPartitions() ?? [] }),
});

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down");
  setTimeout(() => {
    log.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown took too long, exiting");
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
  await sequencer?.stop();
  await app.close();
  if (nc !== undefined && !nc.isClosed()) {
    const drained = nc.drain().catch((err: unknown) => log.warn({ err }, "nats drain failed"));
    await Promise.race([drained, sleep(DRAIN_TIMEOUT_MS)]);
    if (!nc.isClosed()) await nc.close();
  }
  log.info("stopped");
  process.exit(0);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    shutdown(signal).catch((err: unknown) => {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    });
  });
}

try {
  await app.listen({ host: config.listen.host, port: config.listen.port });
  log.info({ host: config.listen.host, port: config.listen.port }, "sequencer ops server listening");
  nc = await connectNats(config.nats, log);
  const provisioned = await provision(nc, config, log, () => stopping);
  if (provisioned !== undefined && !stopping) {
    sequencer = await createSequencer(nc, provisioned, config, registry, log);
    await sequencer.start();
    started = true;
    log.info({ partitions: provisioned.topology.partitions, owned: sequencer.ownedPartitions() }, "sequencer started");
  }
} catch (err) {
  if (!stopping) {
    log.fatal({ err }, "sequencer failed to start");
    process.exit(1);
  }
}
