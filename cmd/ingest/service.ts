// Ingest's parts for the service runner (internal/service/runner.ts): the
// HTTP server, answering 503 until NATS is reachable, and once it is the
// publisher and the resend check on the NATS adapters
// (internal/nats/ingest-adapters.ts) -> ready once the events stream answers
// (and, as one of several workers, once every worker has started). Stop:
// not ready -> the runner stops accepting requests and finishes the ones in
// flight, and so their publishes -> drain NATS while a server is there to
// flush to. main.ts runs it directly, or as each of several workers.

import cluster from "node:cluster";
import { authKeys } from "../../internal/config/common.js";
import type { Readiness } from "../../internal/http/service-routes.js";
import { openIngestAdapters } from "../../internal/nats/ingest-adapters.js";
import { clusterMetricsSource } from "../../internal/observability/cluster-metrics.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import type { ServiceParts } from "../../internal/service/runner.js";
import { WorkerStartBarrier } from "../../internal/service/workers.js";
import { buildApp } from "./app.js";
import { SERVICE_NAME, type IngestConfig } from "./config.js";
import { IngestMetrics } from "./metrics.js";
import { ResendCheck } from "./resend-check.js";
import { DEFAULT_ADMISSION, UnlaunchedAdmission } from "./unlaunched-admission.js";
import { StreamGateway } from "./stream-gateway.js";

export function buildIngestService(config: IngestConfig, readiness: Readiness): ServiceParts {
  const root = createLogger(SERVICE_NAME, config.logLevel);
  const log = cluster.isWorker ? root.child({ worker: cluster.worker?.id }) : root;
  const registry = createRegistry(SERVICE_NAME);
  const gateway = new StreamGateway(log);
  const metrics = new IngestMetrics(registry, () => gateway.connected);
  const resends = new ResendCheck();
  const admission = new UnlaunchedAdmission({ ...DEFAULT_ADMISSION, ...config.unlaunchedAdmission });
  const siblings = new WorkerStartBarrier();
  const app = buildApp({
    publisher: gateway,
    readiness,
    registry,
    exposition: cluster.isWorker ? clusterMetricsSource(registry) : registry,
    metrics,
    log,
    limits: config,
    auth: authKeys(config.auth),
    resends,
    admission,
  });

  return {
    name: SERVICE_NAME,
    log,
    app,
    listening: "ingest listening",
    notReady: () => gateway.notReadyReason() ?? (siblings.allStarted ? undefined : "other workers still starting"),
    async start({ nc, provisioned }) {
      const nats = await openIngestAdapters(
        nc,
        provisioned,
        { publishTimeoutMs: config.publishTimeoutMs, publishMaxInFlight: config.publishMaxInFlight, inboxPrefix: config.nats.inboxPrefix },
        log,
      );
      resends.attach({ numbers: nats.storedNumbers, duplicateWindowMs: nats.duplicateWindowMs });
      await gateway.attach(nats.publisher);
      siblings.started();
      log.info({ partitions: provisioned.topology.partitions, ready: gateway.notReadyReason() === undefined }, "ingest started");
    },
    // From now on readiness says "shutting down"; publishing goes on for the requests in flight.
    beforeClose: () => gateway.close(),
    // Draining needs a server to flush to: while disconnected there is nothing left to deliver.
    drainNats: () => gateway.connected,
  };
}
