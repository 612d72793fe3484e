// The ingest service: POST /messages into the events stream (service.ts),
// run by the service runner (internal/service/runner.ts).
//
// WORKERS=1 (the default) runs the service in this process. WORKERS=N runs
// it as N worker processes sharing the port (node:cluster), so that one
// instance can use N cores: HTTP handling, not publishing, is what limits a
// single Node process (see README, measured figures). This process then
// only supervises them (internal/service/workers.ts), and /metrics on any
// worker answers for all of them.

import cluster from "node:cluster";
import { loadConfigOrExit } from "../../internal/service/lifecycle.js";
import { superviseServiceWorkers } from "../../internal/service/workers.js";
import { loadConfig, SERVICE_NAME } from "./config.js";

const config = loadConfigOrExit(loadConfig);
if (config.workers > 1 && cluster.isPrimary) {
  superviseServiceWorkers(SERVICE_NAME, config);
} else {
  // Imported here so that a supervising primary never loads the HTTP server and NATS client it does not run.
  const [{ runService }, { buildIngestService }] = await Promise.all([import("../../internal/service/runner.js"), import("./service.js")]);
  await runService(config, buildIngestService);
}
