// One ingest service process: config -> logger, metrics -> HTTP server
// (answering 503 until NATS is reachable) -> NATS connection and topology ->
// ready. SIGTERM/SIGINT: not ready -> stop accepting requests -> finish
// in-flight publishes -> drain NATS -> exit 0. main.ts runs it directly, or
// as each of several workers.

import cluster from "node:cluster";
import { authKeys } from "../../internal/config/common.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { EventPublisher } from "../../internal/nats/event-publisher.js";
import { clusterMetricsSource } from "../../internal/observability/cluster-metrics.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { buildApp } from "./app.js";
import { closeNats, exitOnStartFailure, onShutdownSignal, provisionUntilStopped } from "../../internal/service/lifecycle.js";
import { WorkerStartBarrier } from "../../internal/service/workers.js";
import { SERVICE_NAME, shutdownDeadlineMs, type IngestConfig } from "./config.js";
import { IngestMetrics } from "./metrics.js";
import { ResendCheck } from "./resend-check.js";
import { StreamGateway } from "./stream-gateway.js";
import { StreamChannelHistory } from "../../internal/nats/channel-history.js";
import { StreamStoredNumbers } from "../../internal/nats/stored-numbers.js";
import { STATE_BUCKET, STREAM_NAME } from "../../internal/nats/topology.js";

const STREAM_CHECK_TIMEOUT_MS = 2000;
const DRAIN_TIMEOUT_MS = 5000;
/** A late resend's read of what is stored under its number: bounded like the API's history read. */
const RESEND_SCAN = { maxMessages: 100_000, fetchTimeoutMs: 5000 };

export async function runIngest(config: IngestConfig): Promise<void> {
  const root = createLogger(SERVICE_NAME, config.logLevel);
  const log = cluster.isWorker ? root.child({ worker: cluster.worker?.id }) : root;
  const registry = createRegistry(SERVICE_NAME);
  const gateway = new StreamGateway(log);
  const metrics = new IngestMetrics(registry, () => gateway.connected);
  const resends = new ResendCheck();
  const siblings = new WorkerStartBarrier();
  /** Why the first NATS connection is not there yet (the servers, the error); undefined once it is. */
  let waitingForNats: string | undefined = "connecting to NATS";
  const app = buildApp({
    publisher: gateway,
    readiness: () => waitingForNats ?? gateway.notReadyReason() ?? (siblings.allStarted ? undefined : "other workers still starting"),
    registry,
    exposition: cluster.isWorker ? clusterMetricsSource(registry) : registry,
    metrics,
    log,
    limits: config,
    auth: authKeys(config.auth),
    resends,
  });

  let nc: NatsConnection | undefined;
  let stopping = false;

  onShutdownSignal(log, shutdownDeadlineMs(config), async () => {
    stopping = true;
    gateway.close();
    // Stops accepting connections, answers 503 to new requests on open ones,
    // and resolves once every in-flight request (and so its publish) is answered.
    await app.close();
    // Draining needs a server to flush to: while disconnected there is nothing left to deliver.
    await closeNats(nc, log, { drain: gateway.connected, timeoutMs: DRAIN_TIMEOUT_MS });
  });

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
    log.info({ host: config.listen.host, port: config.listen.port }, "ingest listening");
    nc = await connectNats(config.nats, log, { onWaiting: (why) => (waitingForNats = why) });
    const provisioned = await provisionUntilStopped(nc, config.topology, log, () => stopping);
    if (provisioned !== undefined && !stopping) {
      const publisher = new EventPublisher(nc, provisioned.jsm, provisioned.topology, {
        timeoutMs: config.publishTimeoutMs,
        maxInFlight: config.publishMaxInFlight,
        checkTimeoutMs: STREAM_CHECK_TIMEOUT_MS,
        inboxPrefix: config.nats.inboxPrefix,
      });
      const stream = await provisioned.jsm.streams.info(STREAM_NAME);
      resends.attach({
        numbers: new StreamStoredNumbers(
          // Direct gets: any replica may answer (a lagging one only leaves a resend to the stream's deduplication).
          await provisioned.kvm.open(STATE_BUCKET, { allow_direct: true }),
          new StreamChannelHistory(nc, provisioned.jsm, RESEND_SCAN, log, config.nats.inboxPrefix),
        ),
        duplicateWindowMs: stream.config.duplicate_window / 1e6,
      });
      await gateway.attach(publisher);
      siblings.started();
      log.info({ partitions: provisioned.topology.partitions, ready: gateway.notReadyReason() === undefined }, "ingest started");
    }
  } catch (err) {
    if (!stopping) {
      exitOnStartFailure(log, "ingest", err);
    }
  }
}
