// The NATS side of the sequencer's ports (SequencerPorts,
// internal/sequencer/sequencer.ts) on a provisioned topology: the state
// bucket as the channel-state store, the lease bucket, the events stream for
// re-reading parked messages, and one durable pull consumer per partition.
// cmd/sequencer builds the core from these without touching a NATS client.
//
// Guarantees:
// - Lease writes give up after about a heartbeat (never more than half the
//   lease TTL): one stuck request must not hold back the renewals of every
//   lease until they expire (the client's default request timeout is 5 s).
// - The stream's retention is read from the server, not from the
//   configuration: it is the deployment's, whoever created the stream.

import { ChannelStateStore } from "./channel-state-store.js";
import type { NatsConnection } from "./connection.js";
import { LeaseBucket } from "./lease-bucket.js";
import { StreamParkedMessages } from "./parked-messages.js";
import { PartitionConsumer } from "./partition-consumer.js";
import { LEASE_BUCKET, STATE_BUCKET, STREAM_NAME, type Provisioned } from "./topology.js";
import type { SequencerPorts } from "../sequencer/sequencer.js";

/** How long one fetch of a re-read may wait for messages the stream said it has. */
const REREAD_FETCH_TIMEOUT_MS = 5000;
const MIN_LEASE_TIMEOUT_MS = 500;

export interface SequencerAdapterSettings {
  leaseTtlMs: number;
  heartbeatMs: number;
  /** The partition consumers' redelivery delay of an unacked message. */
  ackWaitMs: number;
  /** The partition consumers' max_ack_pending. */
  maxAckPending: number;
}

export interface SequencerAdapters {
  ports: SequencerPorts;
  /** The events stream's max_age in whole seconds; 0 when it keeps messages forever. */
  retentionSeconds: number;
}

export async function openSequencerAdapters(nc: NatsConnection, provisioned: Provisioned, settings: SequencerAdapterSettings): Promise<SequencerAdapters> {
  const { js, jsm, kvm } = provisioned;
  // Loads after a refused write, and of quarantined entries, go to the bucket's leader.
  const states = new ChannelStateStore(await kvm.open(STATE_BUCKET), { js, jsm });
  const leaseTimeoutMs = Math.min(Math.max(settings.heartbeatMs, MIN_LEASE_TIMEOUT_MS), settings.leaseTtlMs / 2);
  const leases = await LeaseBucket.open(nc, LEASE_BUCKET, leaseTimeoutMs);
  const retentionSeconds = Math.round((await jsm.streams.info(STREAM_NAME)).config.max_age / 1e9);
  const consumerSettings = { ackWaitMs: settings.ackWaitMs, maxAckPending: settings.maxAckPending };
  return {
    ports: {
      states,
      parked: new StreamParkedMessages(js, jsm, REREAD_FETCH_TIMEOUT_MS),
      leases,
      partition: (p) => new PartitionConsumer(js, jsm, p, consumerSettings),
    },
    retentionSeconds,
  };
}
