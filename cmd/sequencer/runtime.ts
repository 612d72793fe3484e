// Wires the sequencer runtime to NATS: channel state store, lease bucket and
// one durable consumer per partition, all on an already provisioned topology.
// main.ts and the in-process tests build the sequencer the same way.

import { Kvm } from "@nats-io/kv";
import type { Registry } from "prom-client";
import { ChannelStateStore } from "../../internal/nats/channel-state-store.js";
import type { NatsConnection } from "../../internal/nats/connection.js";
import { LeaseBucket } from "../../internal/nats/lease-bucket.js";
import { PartitionConsumer } from "../../internal/nats/partition-consumer.js";
import { LEASE_BUCKET, STATE_BUCKET, type Provisioned } from "../../internal/nats/topology.js";
import type { Logger } from "../../internal/observability/logger.js";
import { Sequencer } from "../../internal/sequencer/sequencer.js";
import type { SequencerConfig } from "./config.js";

/** The server's default max_payload, when the connection does not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room in a state write for the rocket, the envelope and the KV headers besides the buffered messages. */
const STATE_HEADROOM_BYTES = 16 * 1024;
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
  const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  const consumerSettings = { ackWaitMs: config.ackWaitMs, maxAckPending: config.maxAckPending };
  return new Sequencer(
    {
      states,
      leases,
      partition: (p) => new PartitionConsumer(js, jsm, p, consumerSettings),
    },
    {
      instanceId: config.instanceId,
      partitions: provisioned.topology.partitions,
      leaseTtlMs: config.leaseTtlMs,
      heartbeatMs: config.heartbeatMs,
      maxPendingPerChannel: config.maxPendingPerChannel,
      maxPendingBytes: maxPayload - STATE_HEADROOM_BYTES,
      retryDelayMs: config.retryDelayMs,
      maxActors: config.maxActors,
      actorIdleMs: config.actorIdleMs,
      kvConcurrency: config.kvConcurrency,
      fetchBatch: config.fetchBatch,
      fetchExpiresMs: FETCH_EXPIRES_MS,
      maxInFlightPerPartition: config.maxAckPending,
      lagPollMs: config.lagPollMs,
    },
    registry,
    log,
  );
}
