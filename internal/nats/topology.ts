// The NATS topology every service agrees on, provisioned idempotently at
// start against a stock `nats-server -js` (no server-side configuration), and
// only with features a 2.9 server has.
//
// Subjects: `rockets.events.<partition>.<channel>`. The channel is the last
// token (so per-channel filters and dedup ids are natural), the partition the
// one before it, so a sequencer instance that owns partition p consumes
// `rockets.events.<p>.*` through one filtered durable consumer.
//
// The partition count is the one setting that must never differ between
// services: it is written once into the topology bucket (first writer wins)
// and every service reads it from there. A service configured with another
// count refuses to start instead of publishing to partitions nobody reads.

import { jetstream, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_PARTITIONS, type TopologySettings } from "../config/common.js";
import type { Logger } from "../observability/logger.js";
import { partitionOf } from "../domain/partition.js";

export const STREAM_NAME = "ROCKETS_EVENTS";
export const SUBJECT_PREFIX = "rockets.events";
export const STATE_BUCKET = "rockets_state";
export const LEASE_BUCKET = "rockets_leases";
export const TOPOLOGY_BUCKET = "rockets_topology";
const PARTITIONS_KEY = "partitions";

/** The events stream keeps a week of history for replay and audit; state lives in KV. */
export const STREAM_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export function eventSubject(partition: number, channel: string): string {
  return `${SUBJECT_PREFIX}.${partition}.${channel}`;
}

export function partitionFilter(partition: number): string {
  return `${SUBJECT_PREFIX}.${partition}.*`;
}

/** The Nats-Msg-Id that makes a resent message a duplicate inside the stream's window. */
export function messageId(channel: string, messageNumber: number): string {
  return `${channel}:${messageNumber}`;
}

export class TopologyConflictError extends Error {
  override name = "TopologyConflictError";
}

export interface Topology {
  readonly partitions: number;
  readonly replicas: number;
  subjectFor(channel: string): string;
}

export interface Provisioned {
  topology: Topology;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
}

function makeTopology(partitions: number, replicas: number): Topology {
  return {
    partitions,
    replicas,
    subjectFor: (channel) => eventSubject(partitionOf(channel, partitions), channel),
  };
}

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const WRONG_LAST_SEQUENCE = 10071;

/** Opens a KV bucket, creating it when missing; safe when several services race to create it. */
export async function openBucket(kvm: Kvm, name: string, replicas: number, history = 1): Promise<KV> {
  // Never pass `compression`: a 2.9 server rejects the field.
  const options = { history, replicas, storage: StorageType.File };
  try {
    return await kvm.create(name, options);
  } catch (err) {
    if (!isApiError(err, STREAM_NAME_IN_USE)) throw err;
    return kvm.open(name);
  }
}

async function agreePartitions(kv: KV, wanted: number | undefined, log: Logger): Promise<number> {
  for (;;) {
    const entry = await kv.get(PARTITIONS_KEY);
    if (entry && entry.operation === "PUT") {
      const stored = Number(entry.string());
      if (!Number.isSafeInteger(stored) || stored < 1) {
        throw new TopologyConflictError(`the topology bucket holds an invalid partition count "${entry.string()}"`);
      }
      if (wanted !== undefined && wanted !== stored) {
        throw new TopologyConflictError(
          `PARTITIONS=${wanted} conflicts with this deployment's ${stored} partitions ` +
            `(stored in KV bucket ${TOPOLOGY_BUCKET}); unset PARTITIONS or set it to ${stored}`,
        );
      }
      return stored;
    }
    const count = wanted ?? DEFAULT_PARTITIONS;
    try {
      await kv.create(PARTITIONS_KEY, String(count));
      log.info({ partitions: count }, "partition count recorded for this deployment");
      return count;
    } catch (err) {
      // Another service recorded it first: read theirs and compare.
      if (!isApiError(err, WRONG_LAST_SEQUENCE)) throw err;
    }
  }
}

async function ensureStream(jsm: JetStreamManager, settings: TopologySettings, log: Logger): Promise<void> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: STREAM_NAME,
    description: "Rocket telemetry messages, subject rockets.events.<partition>.<channel>",
    subjects: [`${SUBJECT_PREFIX}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(STREAM_MAX_AGE_MS),
    duplicate_window: nanos(settings.duplicateWindowSeconds * 1000),
    num_replicas: settings.replicas,
  };
  try {
    const info = await jsm.streams.info(STREAM_NAME);
    const cfg = info.config;
    if (!cfg.subjects?.includes(`${SUBJECT_PREFIX}.>`)) {
      throw new TopologyConflictError(
        `stream ${STREAM_NAME} exists with subjects ${JSON.stringify(cfg.subjects)}, expected ${SUBJECT_PREFIX}.>`,
      );
    }
    if (cfg.duplicate_window < (wanted.duplicate_window ?? 0) || cfg.num_replicas !== settings.replicas) {
      await jsm.streams.update(STREAM_NAME, {
        ...cfg,
        duplicate_window: Math.max(cfg.duplicate_window, wanted.duplicate_window ?? 0),
        num_replicas: settings.replicas,
      });
      log.info({ replicas: settings.replicas }, "events stream updated");
    }
  } catch (err) {
    if (!isApiError(err, STREAM_NOT_FOUND)) throw err;
    try {
      await jsm.streams.add(wanted);
      log.info({ stream: STREAM_NAME, replicas: settings.replicas }, "events stream created");
    } catch (addErr) {
      if (!isApiError(addErr, STREAM_NAME_IN_USE)) throw addErr;
    }
  }
}

/**
 * Creates what is missing (stream, state, lease and topology buckets) and
 * agrees on the partition count. Safe to run from every service at every start.
 */
export async function provisionTopology(nc: NatsConnection, settings: TopologySettings, log: Logger): Promise<Provisioned> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const topologyKv = await openBucket(kvm, TOPOLOGY_BUCKET, settings.replicas);
  const partitions = await agreePartitions(topologyKv, settings.partitions, log);
  await ensureStream(jsm, settings, log);
  await openBucket(kvm, STATE_BUCKET, settings.replicas);
  await openBucket(kvm, LEASE_BUCKET, settings.replicas);
  return { topology: makeTopology(partitions, settings.replicas), js, jsm, kvm };
}
