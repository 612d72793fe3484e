// Sequencer wiring: config -> logger, metrics -> ops server (not ready until
// started) -> NATS connection and topology -> join, take partitions -> ready.
// SIGTERM/SIGINT: not ready -> stop pulling -> finish in-flight state writes
// -> release every lease and leave -> drain NATS -> exit 0.

import { authKeys } from "../../internal/config/common.js";
import { connectNats, type NatsConnection } from "../../internal/nats/connection.js";
import { createLogger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import type { Sequencer } from "../../internal/sequencer/sequencer.js";
import { closeNats, exitOnStartFailure, loadConfigOrExit, onShutdownSignal, provisionUntilStopped, retryUntilStopped } from "../../internal/service/lifecycle.js";
import { buildApp } from "./app.js";
import { loadConfig, SERVICE_NAME } from "./config.js";
import { createSequencer } from "./runtime.js";

const DRAIN_TIMEOUT_MS = 5000;

const config = loadConfigOrExit(loadConfig);
const log = createLogger(SERVICE_NAME, config.logLevel).child({ instanceId: config.instanceId });
const registry = createRegistry(SERVICE_NAME);

let nc: NatsConnection | undefined;
let sequencer: Sequencer | undefined;
let started = false;
let stopping = false;
/** Why the first NATS connection is not there yet (the servers, the error); undefined once it is. */
let waitingForNats: string | undefined = "connecting to NATS";

const app = buildApp({
  registry,
  auth: authKeys(config.auth),
  http: config.http,
  readiness: () => {
    if (stopping) return "shutting down";
    if (waitingForNats !== undefined) return waitingForNats;
    if (!sequencer || !started) return "starting";
    return sequencer.health();
  },
  ownership: () => {
    if (!sequencer || !started) return { instanceId: config.instanceId, partitions: [] };
    const { owned, instanceId, ...cluster } = sequencer.clusterView();
    return { instanceId, partitions: owned, ...cluster };
  },
});

onShutdownSignal(log, config.shutdownTimeoutMs, async () => {
  stopping = true;
  // Stops pulling, lets in-flight writes commit and their messages be acked, releases the leases.
  await sequencer?.stop();
  await app.close();
  await closeNats(nc, log, { drain: true, timeoutMs: DRAIN_TIMEOUT_MS });
});

try {
  await app.listen({ host: config.listen.host, port: config.listen.port });
  log.info({ host: config.listen.host, port: config.listen.port }, "sequencer ops server listening");
  nc = await connectNats(config.nats, log, { onWaiting: (why) => (waitingForNats = why) });
  const provisioned = await provisionUntilStopped(nc, config.topology, log, () => stopping);
  if (provisioned !== undefined && !stopping) {
    const connection = nc;
    sequencer = await retryUntilStopped("opening the sequencer's buckets", () => createSequencer(connection, provisioned, config, registry, log), {
      log,
      stopping: () => stopping,
    });
    // Joining needs the lease bucket to answer: during a NATS failover it may not yet, so retry rather than exit.
    const joined = sequencer && (await retryUntilStopped("joining the sequencer members", () => sequencer!.start().then(() => true), { log, stopping: () => stopping }));
    if (joined === true && !stopping) {
      started = true;
      log.info({ partitions: provisioned.topology.partitions, owned: sequencer!.ownedPartitions() }, "sequencer started");
    }
  }
} catch (err) {
  if (!stopping) {
    exitOnStartFailure(log, "sequencer", err);
  }
}
