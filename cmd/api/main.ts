// Query API wiring: config -> logger, metrics -> HTTP server (503 on /readyz
// and data routes until the view is loaded) -> NATS connection -> state
// bucket watch feeding the view -> ready once the first sync pass is done.
// SIGTERM/SIGINT: not ready -> close event streams and stop accepting
// requests -> finish in-flight ones -> stop the watch -> drain NATS -> exit 0.

import { Kvm } from "@nats-io/kv";
import { ConfigError } from "../../internal/config/env-reader.js";
import { ChannelStateWatcher } from "../../internal/nats/channel-state-watcher.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { openBucket, STATE_BUCKET } from "../../internal/nats/topology.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import { buildApp } from "./app.js";
import { loadConfig, SERVICE_NAME, type ApiConfig } from "./config.js";
import { createApiMetrics } from "./metrics.js";
import { ViewFeed } from "./view-feed.js";

/** Past this, shutdown gives up waiting for in-flight requests. */
const SHUTDOWN_GRACE_MS = 10_000;
const DRAIN_TIMEOUT_MS = 5000;

function readConfig(): ApiConfig {
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

const config = readConfig();
const log = createLogger(SERVICE_NAME, config.logLevel);
const registry = createRegistry(SERVICE_NAME);
const view = new FleetView();
const metrics = createApiMetrics(registry, { rocketsInView: () => view.size, viewReady: () => view.ready });
let stopping = false;
const app = await buildApp({
  view,
  registry,
  metrics,
  log,
  sse: config.sse,
  ready: () => (stopping ? "shutting down" : view.ready ? undefined : "loading the view of the state bucket"),
});

let nc: NatsConnection | undefined;
let watcher: ChannelStateWatcher | undefined;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down");
  setTimeout(() => {
    log.error({ graceMs: SHUTDOWN_GRACE_MS }, "shutdown took too long, exiting");
    process.exit(1);
  }, SHUTDOWN_GRACE_MS).unref();
  // Ends event streams, stops accepting connections, and resolves once in-flight requests are answered.
  await app.close();
  await watcher?.stop();
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
  log.info({ host: config.listen.host, port: config.listen.port }, "api listening");
  nc = await connectNats(config.nats, log);
  const kvm = new Kvm(nc);
  for (let attempt = 0; !stopping && watcher === undefined; attempt += 1) {
    try {
      // Creates the bucket when the API starts first; the sequencer opens the same one.
      const kv = await openBucket(kvm, STATE_BUCKET, config.topology.replicas);
      watcher = new ChannelStateWatcher(kv, new ViewFeed(view, metrics, log), log);
    } catch (err) {
      log.warn({ err, attempt }, "opening the state bucket failed, retrying");
      await sleep(Math.min(10_000, 500 * 2 ** attempt));
    }
  }
  if (!stopping) {
    watcher?.start();
    log.info({ bucket: STATE_BUCKET }, "api watching the state bucket");
  }
} catch (err) {
  if (!stopping) {
    log.fatal({ err }, "api failed to start");
    process.exit(1);
  }
}
