// Ingest service wiring: config -> logger, metrics -> HTTP server (answering
// 503 until NATS is reachable) -> NATS connection and topology -> ready.
// SIGTERM/SIGINT: not ready -> stop accepting requests -> finish in-flight
// publishes -> drain NATS -> exit 0.

import { ConfigError } from "../../internal/config/env-reader.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { EventPublisher } from "../../internal/nats/event-publisher.js";
import { provisionTopology, TopologyConflictError, type Provisioned } from "../../internal/nats/topology.js";
import { createLogger, type Logger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { buildApp } from "./app.js";
import { loadConfig, SERVICE_NAME, type IngestConfig } from "./config.js";
import { IngestMetrics } from "./metrics.js";
import { StreamGateway } from "./stream-gateway.js";

const STREAM_CHECK_TIMEOUT_MS = 2000;
/** Past this, shutdown gives up on in-flight work (publishes are bounded by PUBLISH_TIMEOUT_MS well before). */
const SHUTDOWN_GRACE_MS = 10_000;
const DRAIN_TIMEOUT_MS = 5000;

function readConfig(): IngestConfig {
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
async function provision(nc: NatsConnection, config: IngestConfig, log: Logger, stopping: () => boolean): Promise<Provisioned | undefined> {
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
const log = createLogger(SERVICE_NAME, config.logLevel);
const registry = createRegistry(SERVICE_NAME);
const gateway = new StreamGateway(log);
const metrics = new IngestMetrics(registry, () => gateway.connected);
const app = buildApp({
  publisher: gateway,
  readiness: () => gateway.notReadyReason(),
  registry,
  metrics,
  log,
  limits: config,
});

let nc: NatsConnection | undefined;
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down");
  setTimeout(() => {
    log.error({ graceMs: config.publishTimeoutMs + SHUTDOWN_GRACE_MS }, "shutdown took too long, exiting");
    process.exit(1);
  }, config.publishTimeoutMs + SHUTDOWN_GRACE_MS).unref();
  gateway.close();
  // Stops accepting connections, answers 503 to new requests on open ones,
  // and resolves once every in-flight request (and so its publish) is answered.
  await app.close();
  if (nc !== undefined && !nc.isClosed()) {
    // Draining needs a server to flush to: while disconnected (or if the
    // server stops answering) there is nothing left to deliver, so close.
    if (gateway.connected) {
      const drained = nc.drain().catch((err: unknown) => log.warn({ err }, "nats drain failed"));
      await Promise.race([drained, sleep(DRAIN_TIMEOUT_MS)]);
    }
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
  log.info({ host: config.listen.host, port: config.listen.port }, "ingest listening");
  nc = await connectNats(config.nats, log);
  const provisioned = await provision(nc, config, log, () => stopping);
  if (provisioned !== undefined && !stopping) {
    const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, {
      timeoutMs: config.publishTimeoutMs,
      maxInFlight: config.publishMaxInFlight,
      checkTimeoutMs: STREAM_CHECK_TIMEOUT_MS,
    });
    await gateway.attach(publisher);
    log.info({ partitions: provisioned.topology.partitions, ready: gateway.notReadyReason() === undefined }, "ingest started");
  }
} catch (err) {
  if (!stopping) {
    log.fatal({ err }, "ingest failed to start");
    process.exit(1);
  }
}
