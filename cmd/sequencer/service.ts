// Wires the sequencer runtime to NATS: channel state store, lease bucket and
// one durable consumer per partition, all on an already provisioned topology.
// main.ts and the in-process tests build the sequencer the same way.

import { Kvm } from "@nats-io/kv";
import type { Registry } from "prom-client";
import { ChannelStateStore } from "../../internal/nats/channel-state-store.js";
import type { NatsConnection } from "../../internal/nats/connection.js";
import { LeaseBucket } from "../../internal/nats/lease-bucket.js";
import { StreamParkedMessages } from "../../internal/nats/parked-messages.js";
import { PartitionConsumer } from "../../internal/nats/partition-consumer.js";
import { LEASE_BUCKET, STATE_BUCKET, STREAM_NAME, TopologyConflictError, type Provisioned } from "../../internal/nats/topology.js";
import type { Logger } from "../../internal/observability/logger.js";
import { Sequencer } from "../../internal/sequencer/sequencer.js";
import type { SequencerConfig } from "./config.js";

/** How long one fetch of a re-read may wait for messages the stream said it has. */
const REREAD_FETCH_TIMEOUT_MS = 5000;
const MIN_LEASE_TIMEOUT_MS = 500;
/** A fetch that finds nothing ends after this; it bounds how long a release waits for the current pull. */
const FETCH_EXPIRES_MS = 1000;

export type RuntimeConfig = Omit<SequencerConfig, "nats" | "listen" | "logLevel" | "topology" | "shutdownTimeoutMs" | "http" | "auth">;

export async function createSequencer(
  nc: NatsConnection,
  provisioned: Provisioned,
  config: RuntimeConfig,
  registry: Registry,
  log: Logger,
): Promise<Sequencer> {
  const { js, jsm } = provisioned;
  const kvm = new Kvm(js);
  const states = new ChannelStateStore(await kvm.open(STATE_BUCKET));
  // Lease writes give up after about a heartbeat: one stuck request must not hold back the
  // renewals of every lease until they expire (the default request timeout is 5 s).
  const leaseTimeoutMs = Math.min(Math.max(config.heartbeatMs, MIN_LEASE_TIMEOUT_MS), config.leaseTtlMs / 2);
  const leases = await LeaseBucket.open(nc, LEASE_BUCKET, leaseTimeoutMs);
  // Messages behind a gap wait in the stream: a deadline past its retention would review gaps whose messages are gone.
  const maxAge = Math.round((await jsm.streams.info(STREAM_NAME)).config.max_age / 1e9);
  if (maxAge > 0 && config.gapDeadlineSeconds >= maxAge) {
    throw new TopologyConflictError(
      `GAP_DEADLINE_SECONDS (${config.gapDeadlineSeconds}s) must be shorter than stream ${STREAM_NAME}'s retention (max_age ${maxAge}s)`,
    );
  }
  const consumerSettings = { ackWaitMs: config.ackWaitMs, maxAckPending: config.maxAckPending };
  return new Sequencer(
    {
      states,
      parked: new StreamParkedMessages(js, jsm, REREAD_FETCH_TIMEOUT_MS),
      leases,
      partition: (p) => new PartitionConsumer(js, jsm, p, consumerSettings),
    },
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
      fetchExpiresMs: FETCH_EXPIRES_MS,
      maxInFlightPerPartition: config.maxAckPending,
      lagPollMs: config.lagPollMs,
    },
    registry,
    log,
  );
}
