// Query API wiring: config -> logger, metrics -> HTTP server (503 on /readyz
// and data routes until the view is loaded) -> NATS connection -> state
// bucket watch feeding the view -> ready once the first sync pass is done.
// Rocket histories are read from the events stream once connected (503 before).
// SIGTERM/SIGINT: not ready -> close event streams and stop accepting
// requests -> finish in-flight ones -> stop the watch -> drain NATS -> exit 0.

import { authKeys } from "../../internal/config/common.js";
import type { ChannelHistorySource } from "../../internal/domain/history.js";
import { StreamChannelHistory } from "../../internal/nats/channel-history.js";
import { ChannelStateWatcher } from "../../internal/nats/channel-state-watcher.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { STATE_BUCKET } from "../../internal/nats/topology.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import { buildApp } from "./app.js";
import { defaultConsoleDir, loadConsoleAssets } from "./console-assets.js";
import { closeNats, exitOnStartFailure, loadConfigOrExit, onShutdownSignal, provisionUntilStopped } from "../../internal/service/lifecycle.js";
import { loadConfig, SERVICE_NAME } from "./config.js";
import { createApiMetrics } from "./metrics.js";
import { ViewFeed } from "./view-feed.js";

/** Past this, shutdown gives up waiting for in-flight requests. */
const SHUTDOWN_GRACE_MS = 10_000;
const DRAIN_TIMEOUT_MS = 5000;

const config = loadConfigOrExit(loadConfig);
const log = createLogger(SERVICE_NAME, config.logLevel);
const registry = createRegistry(SERVICE_NAME);
const view = new FleetView(config.summaryTopLabels);
const metrics = createApiMetrics(registry, { rocketsInView: () => view.size, viewReady: () => view.ready, summary: () => view.summary() });
let stopping = false;
let streamHistory: StreamChannelHistory | undefined;
const history: ChannelHistorySource = {
  read: (channel) => (streamHistory ? streamHistory.read(channel) : Promise.reject(new Error("not connected to NATS yet"))),
};
const consoleDir = config.consoleDir ?? defaultConsoleDir();
const consoleAssets = loadConsoleAssets(consoleDir);
if (consoleAssets === undefined) log.warn({ dir: consoleDir }, "operator console not built (npm run build); / says so");
/** Why the first NATS connection is not there yet (the servers, the error); undefined once it is. */
let waitingForNats: string | undefined = "connecting to NATS";
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
  ready: () => (stopping ? "shutting down" : view.ready ? undefined : (waitingForNats ?? "loading the view of the state bucket")),
});

let nc: NatsConnection | undefined;
let watcher: ChannelStateWatcher | undefined;

onShutdownSignal(log, SHUTDOWN_GRACE_MS, async () => {
  stopping = true;
  // Ends event streams, stops accepting connections, and resolves once in-flight requests are answered.
  await app.close();
  await watcher?.stop();
  await closeNats(nc, log, { drain: true, timeoutMs: DRAIN_TIMEOUT_MS });
});

try {
  await app.listen({ host: config.listen.host, port: config.listen.port });
  log.info({ host: config.listen.host, port: config.listen.port }, "api listening");
  nc = await connectNats(config.nats, log, { onWaiting: (why) => (waitingForNats = why) });
  // The same agreement on the deployment's shape as the other services (creating it when the API starts first).
  const provisioned = await provisionUntilStopped(nc, config.topology, log, () => stopping);
  if (provisioned !== undefined) {
    streamHistory = new StreamChannelHistory(nc, provisioned.jsm, config.history, log, config.nats.inboxPrefix);
    const kv = await provisioned.kvm.open(STATE_BUCKET);
    watcher = new ChannelStateWatcher(kv, new ViewFeed(view, metrics, log), log);
  }
  if (!stopping) {
    watcher?.start();
    log.info({ bucket: STATE_BUCKET }, "api watching the state bucket");
  }
} catch (err) {
  if (!stopping) {
    exitOnStartFailure(log, "api", err);
  }
}
