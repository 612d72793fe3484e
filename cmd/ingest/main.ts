// The ingest service: POST /messages into the events stream.
//
// WORKERS=1 (the default) runs the service in this process. WORKERS=N runs
// it as N worker processes sharing the port (node:cluster), so that one
// instance can use N cores: HTTP handling, not publishing, is what limits a
// single Node process (see README, measured figures). This process then
// only supervises them (internal/service/workers.ts), and /metrics on any
// worker answers for all of them.

import cluster from "node:cluster";
import { createLogger } from "../../internal/observability/logger.js";
import { serveClusterMetrics } from "../../internal/observability/cluster-metrics.js";
import { loadConfigOrExit } from "../../internal/service/lifecycle.js";
import { superviseWorkers } from "../../internal/service/workers.js";
import { loadConfig, SERVICE_NAME, shutdownDeadlineMs } from "./config.js";

const config = loadConfigOrExit(loadConfig);
if (config.workers > 1 && cluster.isPrimary) {
  const log = createLogger(SERVICE_NAME, config.logLevel).child({ role: "primary" });
  serveClusterMetrics();
  // The workers' own deadline, plus time for the last of them to exit.
  superviseWorkers({ workers: config.workers, log, deadlineMs: shutdownDeadlineMs(config) + 2000 });
  log.info({ workers: config.workers, port: config.listen.port }, "ingest supervising workers");
} else {
  // Imported here so that a supervising primary never loads the HTTP server and NATS client it does not run.
  const { runIngest } = await import("./service.js");
  await runIngest(config);
}
