// The sequencer's parts for the service runner (internal/service/runner.ts):
// the ops server, and once NATS is there the sequencer core on the NATS
// adapters (internal/nats/sequencer-adapters.ts) -> join the members, take
// partitions -> ready while it renews its membership. Stop: stop pulling,
// let in-flight state writes commit and their messages be acked, release
// every lease and leave; the runner then closes the ops server and drains
// NATS. main.ts and the in-process tests build the sequencer the same way
// (createSequencer).

import type { Registry } from "prom-client";
import { authKeys } from "../../internal/config/common.js";
import type { Readiness } from "../../internal/http/service-routes.js";
import type { NatsConnection } from "../../internal/nats/connection.js";
import { openSequencerAdapters } from "../../internal/nats/sequencer-adapters.js";
import { STREAM_NAME, TopologyConflictError, type Provisioned } from "../../internal/nats/topology.js";
import { createLogger, type Logger } from "../../internal/observability/logger.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { Sequencer } from "../../internal/sequencer/sequencer.js";
import { retryUntilStopped } from "../../internal/service/lifecycle.js";
import type { ServiceParts } from "../../internal/service/runner.js";
import { buildApp } from "./app.js";
import { SERVICE_NAME, type SequencerConfig } from "./config.js";

export type RuntimeConfig = Omit<SequencerConfig, "nats" | "listen" | "logLevel" | "topology" | "shutdownTimeoutMs" | "http" | "auth">;

export async function createSequencer(
  nc: NatsConnection,
  provisioned: Provisioned,
  config: RuntimeConfig,
  registry: Registry,
  log: Logger,
): Promise<Sequencer> {
  const nats = await openSequencerAdapters(nc, provisioned, config);
  // Messages behind a gap wait in the stream: a deadline past its retention would review gaps whose messages are gone.
  if (nats.retentionSeconds > 0 && config.gapDeadlineSeconds >= nats.retentionSeconds) {
    throw new TopologyConflictError(
      `GAP_DEADLINE_SECONDS (${config.gapDeadlineSeconds}s) must be shorter than stream ${STREAM_NAME}'s retention (max_age ${nats.retentionSeconds}s)`,
    );
  }
  return new Sequencer(
    nats.ports,
    {
      instanceId: config.instanceId,
      partitions: provisioned.topology.partitions,
      leaseTtlMs: config.leaseTtlMs,
      heartbeatMs: config.heartbeatMs,
      maxPendingPerChannel: config.maxPendingPerChannel,
      retryDelayMs: config.retryDelayMs,
      gapPolicy: config.gapPolicy,
      gapDeadlineMs: config.gapDeadlineSeconds * 1000,
      maxBufferedMessages: config.maxBufferedMessages,
      maxBufferedBytes: config.maxBufferedBytes,
      maxUnlaunchedChannels: config.maxUnlaunchedChannels,
      maxActors: config.maxActors,
      actorIdleMs: config.actorIdleMs,
      kvConcurrency: config.kvConcurrency,
      writeLingerMs: config.writeLingerMs,
      fetchBatch: config.fetchBatch,
      fetchExpiresMs: config.fetchExpiresMs,
      maxInFlightPerPartition: config.maxAckPending,
      lagPollMs: config.lagPollMs,
    },
    registry,
    log,
  );
}

export function buildSequencerService(config: SequencerConfig, readiness: Readiness): ServiceParts {
  const log = createLogger(SERVICE_NAME, config.logLevel).child({ instanceId: config.instanceId });
  const registry = createRegistry(SERVICE_NAME);
  let sequencer: Sequencer | undefined;
  let started = false;

  const app = buildApp({
    registry,
    auth: authKeys(config.auth),
    http: config.http,
    readiness,
    ownership: () => {
      if (!sequencer || !started) return { instanceId: config.instanceId, partitions: [] };
      const { owned, instanceId, ...cluster } = sequencer.clusterView();
      return { instanceId, partitions: owned, ...cluster };
    },
  });

  return {
    name: SERVICE_NAME,
    log,
    app,
    listening: "sequencer ops server listening",
    notReady: () => (sequencer && started ? sequencer.health() : "starting"),
    async start({ nc, provisioned, stopping }) {
      const created = await retryUntilStopped("opening the sequencer's buckets", () => createSequencer(nc, provisioned, config, registry, log), { log, stopping });
      if (created === undefined) return;
      sequencer = created;
      // Joining needs the lease bucket to answer: during a NATS failover it may not yet, so retry rather than exit.
      const joined = await retryUntilStopped("joining the sequencer members", () => created.start().then(() => true), { log, stopping });
      if (joined === true && !stopping()) {
        started = true;
        log.info({ partitions: provisioned.topology.partitions, owned: created.ownedPartitions() }, "sequencer started");
      }
    },
    // Stops pulling, lets in-flight writes commit and their messages be acked, releases the leases.
    beforeClose: () => sequencer?.stop(),
  };
}
