// The query API's parts for the service runner (internal/service/runner.ts):
// the HTTP server (503 on /readyz and the data routes until the view has
// loaded), and once NATS is there the state bucket's watch feeding the view
// and the events stream for histories (internal/nats/api-adapters.ts);
// ready once the first sync pass is done. Histories answer 503 until
// connected. Stop: not ready -> the runner closes event streams, stops
// accepting requests and finishes in-flight ones -> stop the watch -> drain
// NATS.

import { authKeys } from "../../internal/config/common.js";
import type { ChannelHistorySource } from "../../internal/domain/history.js";
import type { Readiness } from "../../internal/http/service-routes.js";
import { openApiAdapters, type ApiAdapters } from "../../internal/nats/api-adapters.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import type { ServiceParts } from "../../internal/service/runner.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import { buildApp } from "./app.js";
import { defaultConsoleDir, loadConsoleAssets } from "./console-assets.js";
import { SERVICE_NAME, type ApiConfig } from "./config.js";
import { createApiMetrics } from "./metrics.js";
import { ViewFeed } from "./view-feed.js";

export async function buildApiService(config: ApiConfig, readiness: Readiness): Promise<ServiceParts> {
  const log = createLogger(SERVICE_NAME, config.logLevel);
  const registry = createRegistry(SERVICE_NAME);
  const view = new FleetView(config.summaryTopLabels);
  const metrics = createApiMetrics(registry, { rocketsInView: () => view.size, viewReady: () => view.ready, summary: () => view.summary() });
  let nats: ApiAdapters | undefined;
  const history: ChannelHistorySource = {
    read: (channel) => (nats ? nats.history.read(channel) : Promise.reject(new Error("not connected to NATS yet"))),
  };
  const consoleDir = config.consoleDir ?? defaultConsoleDir();
  const consoleAssets = loadConsoleAssets(consoleDir);
  if (consoleAssets === undefined) log.warn({ dir: consoleDir }, "operator console not built (npm run build); / says so");
  const app = await buildApp({
    view,
    history,
    console: consoleAssets,
    registry,
    metrics,
    log,
    sse: config.sse,
    http: config.http,
    auth: authKeys(config.auth),
    ready: readiness,
  });

  return {
    name: SERVICE_NAME,
    log,
    app,
    listening: "api listening",
    notReady: () => (view.ready ? undefined : "loading the view of the state bucket"),
    // The same agreement on the deployment's shape as the other services (the runner provisions it, creating it when the API starts first).
    async start({ nc, provisioned, stopping }) {
      nats = await openApiAdapters(nc, provisioned, { history: config.history, inboxPrefix: config.nats.inboxPrefix }, new ViewFeed(view, metrics, log), log);
      if (!stopping()) {
        nats.watcher.start();
        log.info({ bucket: nats.bucket }, "api watching the state bucket");
      }
    },
    afterClose: () => nats?.watcher.stop(),
  };
}
