// The NATS topology every service agrees on, provisioned idempotently at
// start against a stock `nats-server -js` (no server-side configuration
// needed), on the project's NATS line (>= 2.11, docs/nats.md).
//
// Subjects: `rockets.events.<partition>.<channel>`. The channel is the last
// token (so per-channel filters and dedup ids are natural), the partition the
// one before it, so a sequencer instance that owns partition p consumes
// `rockets.events.<p>.*` through one filtered durable consumer.
//
// Guarantees:
// - The partition count and the replica count are recorded once per
//   deployment in the topology bucket (first writer wins) and every service
//   reads them from there. A service configured with another value refuses to
//   start (TopologyConflictError) instead of publishing to partitions nobody
//   reads, or quietly re-replicating a stream.
// - Provisioning creates what is missing and never changes what exists: an
//   explicitly configured stream setting (retention, duplicate window,
//   compression) that differs from the stream's refuses to start, naming the
//   deliberate way to change it (`npm run topology -- set`, changeTopology).
//   Settings left unset adopt what the deployment has. The state bucket's
//   max bytes (STATE_MAX_BYTES) is handled the same way: the bucket's own
//   config is the record.
// - Asking for more replicas than the servers can place (STREAM_REPLICAS=3
//   on one server) is a configuration error too, said plainly.
// - Creating is the sequencer's right alone where NATS users have
//   permissions (deploy/nats/accounts.conf): ingest and the API only read
//   what exists, so one started first on an empty NATS is refused the
//   creation and says it waits for the sequencer (NotProvisionedError,
//   retried like any transient start failure).

import { jetstream, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, StoreCompression } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import {
  DEFAULT_COMPRESSION,
  DEFAULT_DUPLICATE_WINDOW_SECONDS,
  DEFAULT_MAX_AGE_SECONDS,
  DEFAULT_MAX_BYTES,
  DEFAULT_PARTITIONS,
  DEFAULT_REPLICAS,
  DEFAULT_STATE_MAX_BYTES,
  type StreamCompression,
  type TopologySettings,
} from "../config/common.js";
import type { Logger } from "../observability/logger.js";
import { partitionOf } from "../domain/partition.js";
import { isApiError, isPermissionViolation, isWriteConflict, JetStreamApiCode } from "./jetstream-codes.js";
import { readFromLeader } from "./kv-leader-read.js";
import { eventSubject, SUBJECT_PREFIX } from "../domain/partition.js";

// Where events are addressed is the domain's (every service agrees on it); re-exported for the adapters.
export { eventSubject, SUBJECT_PREFIX };

export const STREAM_NAME = "ROCKETS_EVENTS";
export const STATE_BUCKET = "rockets_state";
export const LEASE_BUCKET = "rockets_leases";
export const TOPOLOGY_BUCKET = "rockets_topology";
/**
 * Where the state bucket republishes every entry it stores (`<prefix>.<key>`,
 * the stream's `republish`): the API follows the bucket there without a
 * consumer (internal/nats/channel-state-watcher.ts).
 */
export const STATE_CHANGES_PREFIX = "rockets.state";
const PARTITIONS_KEY = "partitions";
const REPLICAS_KEY = "replicas";

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

/** Something to provision is missing and this NATS user may not create it: another service (the sequencer) will. */
export class NotProvisionedError extends Error {
  override name = "NotProvisionedError";
}

/** A refused creation becomes the wait it is; anything else stays as it was. */
function notProvisionedOr(err: unknown, what: string): unknown {
  if (!isPermissionViolation(err)) return err;
  return new NotProvisionedError(
    `${what} does not exist yet and this service's NATS user may not create it; ` +
      "waiting for the sequencer, which provisions the deployment (deploy/nats/accounts.conf)",
    { cause: err },
  );
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

const SECOND_NS = 1e9;

/** Turns the server's refusal to place replicas into the configuration error it is. */
function replicasOr(err: unknown, replicas: number): unknown {
  if (isApiError(err, JetStreamApiCode.ReplicasNotSupported) || isApiError(err, JetStreamApiCode.InsufficientResources)) {
    return new TopologyConflictError(
      `STREAM_REPLICAS=${replicas} cannot be placed: ${(err as Error).message}. ` +
        "Replicas need as many JetStream servers in a cluster (use 1 on a single server, 3 on a 3-node cluster)",
      { cause: err },
    );
  }
  return err;
}

export interface BucketOptions {
  history?: number;
  /** Most bytes the bucket holds (a new bucket only); past it writes are refused. */
  maxBytes?: number;
  /**
   * Allow per-key TTLs; the server's delete marker for an expired key stays
   * this long (watchers see it as a deletion).
   */
  markerTtlMs?: number;
  /** Republish every stored entry on `<prefix>.<key>` (a new bucket only). */
  changesPrefix?: string;
}

/** The stream `republish` that puts a bucket's entries on `<prefix>.<key>`. */
export function republishTo(bucket: string, prefix: string): { src: string; dest: string } {
  return { src: `$KV.${bucket}.>`, dest: `${prefix}.>` };
}

/** Opens a KV bucket, creating it when missing; safe when several services race to create it. An existing bucket is never changed. */
export async function openBucket(kvm: Kvm, name: string, replicas: number, { history = 1, markerTtlMs, maxBytes, changesPrefix }: BucketOptions = {}): Promise<KV> {
  const options = {
    history,
    replicas,
    storage: StorageType.File,
    ...(markerTtlMs === undefined ? {} : { markerTTL: markerTtlMs }),
    ...(maxBytes === undefined ? {} : { max_bytes: maxBytes }),
    ...(changesPrefix === undefined ? {} : { republish: republishTo(name, changesPrefix) }),
  };
  try {
    return await kvm.create(name, options);
  } catch (err) {
    // Exists (perhaps with other settings, which stay as they are).
    if (isApiError(err, JetStreamApiCode.StreamNameInUse)) return kvm.open(name);
    throw notProvisionedOr(replicasOr(err, replicas), `KV bucket ${name}`);
  }
}

/**
 * The value recorded under `key`, recording `wanted ?? fallback()` when there
 * is none yet (first writer wins); a `wanted` that differs from the record is
 * a TopologyConflictError with `conflict`'s explanation.
 */
async function recordOnce(
  jsm: JetStreamManager,
  kv: KV,
  key: string,
  wanted: number | undefined,
  fallback: () => Promise<number>,
  conflict: (wanted: number, stored: number) => string,
  log: Logger,
): Promise<number> {
  for (;;) {
    // From the leader: a fresh R3 bucket's replicas may not answer direct gets yet, and may lag.
    const entry = await readFromLeader(jsm, TOPOLOGY_BUCKET, key);
    if (entry.value !== null) {
      const stored = Number(entry.value);
      if (!Number.isSafeInteger(stored) || stored < 1) {
        throw new TopologyConflictError(`the topology bucket holds an invalid ${key} value "${entry.value}"`);
      }
      if (wanted !== undefined && wanted !== stored) throw new TopologyConflictError(conflict(wanted, stored));
      return stored;
    }
    const value = wanted ?? (await fallback());
    try {
      await kv.create(key, String(value));
      log.info({ [key]: value }, `${key} recorded for this deployment`);
      return value;
    } catch (err) {
      // Another service recorded it first: read theirs and compare.
      if (!isWriteConflict(err)) throw notProvisionedOr(err, `the deployment's ${key} record`);
    }
  }
}

async function streamConfig(jsm: JetStreamManager): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(STREAM_NAME)).config;
  } catch (err) {
    if (isApiError(err, JetStreamApiCode.StreamNotFound)) return undefined;
    throw err;
  }
}

/** The stream settings a deployment has, as names an operator sets them by. */
export interface StreamSettings {
  duplicateWindowSeconds: number;
  maxAgeSeconds: number;
  /** -1: unlimited. */
  maxBytes: number;
  compression: StreamCompression;
}

function settingsOf(cfg: StreamConfig): StreamSettings {
  return {
    duplicateWindowSeconds: Math.round(cfg.duplicate_window / SECOND_NS),
    maxAgeSeconds: Math.round(cfg.max_age / SECOND_NS),
    maxBytes: cfg.max_bytes,
    compression: cfg.compression === StoreCompression.S2 ? "s2" : "none",
  };
}

/** What each stream setting is called where an operator sets it. */
const SETTING_NAMES: Record<keyof StreamSettings, { env: string; cli: string }> = {
  duplicateWindowSeconds: { env: "DUPLICATE_WINDOW_SECONDS", cli: "duplicate-window" },
  maxAgeSeconds: { env: "STREAM_MAX_AGE", cli: "max-age" },
  maxBytes: { env: "STREAM_MAX_BYTES", cli: "max-bytes" },
  compression: { env: "STREAM_COMPRESSION", cli: "compression" },
};

function wantedStreamSettings(settings: TopologySettings): Partial<StreamSettings> {
  const wanted: Partial<StreamSettings> = {};
  if (settings.duplicateWindowSeconds !== undefined) wanted.duplicateWindowSeconds = settings.duplicateWindowSeconds;
  if (settings.maxAgeSeconds !== undefined) wanted.maxAgeSeconds = settings.maxAgeSeconds;
  if (settings.maxBytes !== undefined) wanted.maxBytes = settings.maxBytes;
  if (settings.compression !== undefined) wanted.compression = settings.compression;
  return wanted;
}

function streamConfigFor(replicas: number, s: StreamSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: STREAM_NAME,
    description: "Rocket telemetry messages, subject rockets.events.<partition>.<channel>",
    subjects: [`${SUBJECT_PREFIX}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    // When full, the oldest history goes: the state lives in KV and stays exact.
    discard: DiscardPolicy.Old,
    max_age: nanos(s.maxAgeSeconds * 1000),
    max_bytes: s.maxBytes,
    duplicate_window: nanos(s.duplicateWindowSeconds * 1000),
    compression: s.compression === "s2" ? StoreCompression.S2 : StoreCompression.None,
    num_replicas: replicas,
    // Readers hold no consumer (deploy/nats/accounts.conf): they read a channel's messages with batched direct gets.
    allow_direct: true,
  };
}

async function ensureStream(jsm: JetStreamManager, existing: StreamConfig | undefined, replicas: number, settings: TopologySettings, log: Logger): Promise<void> {
  const wanted = wantedStreamSettings(settings);
  if (existing) {
    if (!existing.subjects?.includes(`${SUBJECT_PREFIX}.>`)) {
      throw new TopologyConflictError(
        `stream ${STREAM_NAME} exists with subjects ${JSON.stringify(existing.subjects)}, expected ${SUBJECT_PREFIX}.>`,
      );
    }
    const actual = settingsOf(existing);
    const conflicts = (Object.keys(wanted) as Array<keyof StreamSettings>)
      .filter((k) => wanted[k] !== actual[k])
      .map((k) => `${SETTING_NAMES[k].env}=${String(wanted[k])} but stream ${STREAM_NAME} has ${String(actual[k])}`);
    if (conflicts.length > 0) {
      const cli = (Object.keys(wanted) as Array<keyof StreamSettings>)
        .filter((k) => wanted[k] !== actual[k])
        .map((k) => `${SETTING_NAMES[k].cli}=${String(wanted[k])}`);
      throw new TopologyConflictError(
        `${conflicts.join("; ")}. Provisioning never changes an existing stream: unset these to keep what the stream has, ` +
          `or change it deliberately with \`npm run topology -- set ${cli.join(" ")}\``,
      );
    }
    if (existing.num_replicas !== replicas) {
      log.warn({ stream: STREAM_NAME, recorded: replicas, actual: existing.num_replicas }, "the events stream's replicas differ from the deployment's record; left as they are");
    }
    return;
  }
  const config = streamConfigFor(replicas, {
    duplicateWindowSeconds: DEFAULT_DUPLICATE_WINDOW_SECONDS,
    maxAgeSeconds: DEFAULT_MAX_AGE_SECONDS,
    maxBytes: DEFAULT_MAX_BYTES,
    compression: DEFAULT_COMPRESSION,
    ...wanted,
  });
  try {
    await jsm.streams.add(config);
    log.info({ stream: STREAM_NAME, replicas, ...settingsOf(config as StreamConfig) }, "events stream created");
  } catch (err) {
    // Created by a sibling meanwhile: compare against theirs.
    if (isApiError(err, JetStreamApiCode.StreamNameInUse)) return ensureStream(jsm, await streamConfig(jsm), replicas, settings, log);
    throw notProvisionedOr(replicasOr(err, replicas), `stream ${STREAM_NAME}`);
  }
}

/**
 * The state bucket, created with STATE_MAX_BYTES (else the default). An
 * existing one keeps its cap: unset adopts it, a different explicit value
 * refuses to start, naming the deliberate way to change it.
 */
async function ensureStateBucket(jsm: JetStreamManager, kvm: Kvm, replicas: number, wanted: number | undefined): Promise<void> {
  let existing: StreamConfig | undefined;
  try {
    existing = (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCode.StreamNotFound)) throw err;
  }
  if (existing) {
    if (wanted !== undefined && wanted !== existing.max_bytes) throw stateBytesConflict(wanted, existing.max_bytes);
    return;
  }
  await openBucket(kvm, STATE_BUCKET, replicas, { maxBytes: wanted ?? DEFAULT_STATE_MAX_BYTES, changesPrefix: STATE_CHANGES_PREFIX });
  // Created by a sibling with another cap meanwhile: the same refusal as above.
  const created = (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config.max_bytes;
  if (wanted !== undefined && wanted !== created) throw stateBytesConflict(wanted, created);
}

function stateBytesConflict(wanted: number, actual: number): TopologyConflictError {
  return new TopologyConflictError(
    `STATE_MAX_BYTES=${wanted} but bucket ${STATE_BUCKET} has ${actual}${actual === -1 ? " (unlimited)" : ""}. ` +
      "Provisioning never changes an existing bucket: unset it to keep what the bucket has, " +
      `or change it deliberately with \`npm run topology -- set state-max-bytes=${wanted}\``,
  );
}

/** How long the server's marker for an expired lease-bucket key stays: long enough for every watcher to see it live. */
const LEASE_MARKER_TTL_MS = 60_000;

/**
 * The lease bucket is the code's own coordination space (nothing an operator
 * configures): one created before per-key TTLs were used gets them turned on,
 * once, said in the log. (A server can turn them on, never off.)
 */
async function allowKeyTtls(jsm: JetStreamManager, bucket: string, log: Logger): Promise<void> {
  const name = `KV_${bucket}`;
  const cfg = (await jsm.streams.info(name)).config;
  if (cfg.allow_msg_ttl) return;
  await jsm.streams.update(name, { ...cfg, allow_msg_ttl: true, subject_delete_marker_ttl: nanos(LEASE_MARKER_TTL_MS) });
  log.info({ bucket }, "per-key TTLs enabled on the lease bucket");
}

/**
 * Creates what is missing (stream, state, lease and topology buckets) and
 * agrees on the partition and replica counts. Safe to run from every service
 * at every start; never changes what exists.
 */
export async function provisionTopology(nc: NatsConnection, settings: TopologySettings, log: Logger): Promise<Provisioned> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const topologyKv = await openBucket(kvm, TOPOLOGY_BUCKET, settings.replicas ?? DEFAULT_REPLICAS);
  const partitions = await recordOnce(
    jsm,
    topologyKv,
    PARTITIONS_KEY,
    settings.partitions,
    async () => DEFAULT_PARTITIONS,
    (wanted, stored) =>
      `PARTITIONS=${wanted} conflicts with this deployment's ${stored} partitions ` +
      `(stored in KV bucket ${TOPOLOGY_BUCKET}); unset PARTITIONS or set it to ${stored}`,
    log,
  );
  const existing = await streamConfig(jsm);
  const replicas = await recordOnce(
    jsm,
    topologyKv,
    REPLICAS_KEY,
    settings.replicas,
    // A deployment from before replicas were recorded: what its stream has is the record.
    async () => existing?.num_replicas ?? DEFAULT_REPLICAS,
    (wanted, stored) =>
      `STREAM_REPLICAS=${wanted} conflicts with this deployment's ${stored} replicas ` +
      `(stored in KV bucket ${TOPOLOGY_BUCKET}); unset STREAM_REPLICAS or set it to ${stored}, ` +
      `or change it deliberately with \`npm run topology -- set replicas=${wanted}\``,
    log,
  );
  await ensureStream(jsm, existing, replicas, settings, log);
  await ensureStateBucket(jsm, kvm, replicas, settings.stateMaxBytes);
  await openBucket(kvm, LEASE_BUCKET, replicas, { markerTtlMs: LEASE_MARKER_TTL_MS });
  await allowKeyTtls(jsm, LEASE_BUCKET, log);
  return { topology: makeTopology(partitions, replicas), js, jsm, kvm };
}

/**
 * Gives a deployment created before its readers held no consumer what their
 * reads need: direct gets on the events stream (histories read in batches,
 * not one message per request from the leader) and the state bucket's
 * republishing (the API follows changes as they are written, not once a
 * second). Run by an operator (`npm run topology -- upgrade`, the admin
 * user): the sequencer, which creates what is missing, may not update the
 * state bucket, since whoever sets a republish destination could point it at
 * the events stream. Says what it changed; changes nothing twice.
 */
export async function upgradeReadPaths(nc: NatsConnection, log: Logger): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const changed: string[] = [];
  const events = await streamConfig(jsm);
  if (!events) throw new TopologyConflictError(`stream ${STREAM_NAME} does not exist yet: start the services once first`);
  if (events.allow_direct !== true) {
    await jsm.streams.update(STREAM_NAME, { ...events, allow_direct: true });
    changed.push(`stream ${STREAM_NAME}: direct gets allowed`);
  }
  const state = (await jsm.streams.info(`KV_${STATE_BUCKET}`)).config;
  if (!state.republish) {
    await jsm.streams.update(`KV_${STATE_BUCKET}`, { ...state, republish: republishTo(STATE_BUCKET, STATE_CHANGES_PREFIX) });
    changed.push(`bucket ${STATE_BUCKET}: entries republished on ${STATE_CHANGES_PREFIX}.>`);
  }
  for (const change of changed) log.info({ change }, "read paths upgraded");
  return changed;
}

/** What `npm run topology -- set` may change on a running deployment. */
export interface TopologyChange extends Partial<StreamSettings> {
  replicas?: number;
  /** The state bucket's max bytes (-1: unlimited). */
  stateMaxBytes?: number;
}

/** The deployment's recorded counts and its stream's settings, for `npm run topology`. */
export async function describeTopology(
  nc: NatsConnection,
): Promise<{ partitions?: number; replicas?: number; stream?: StreamSettings & { replicas: number }; state?: { maxBytes: number; bytes: number } }> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(`KV_${TOPOLOGY_BUCKET}`);
  } catch (err) {
    if (isApiError(err, JetStreamApiCode.StreamNotFound)) {
      throw new TopologyConflictError(`no Rockets deployment on this NATS yet (no ${TOPOLOGY_BUCKET} bucket): start the services once first`);
    }
    throw err;
  }
  const read = async (key: string) => {
    const { value } = await readFromLeader(jsm, TOPOLOGY_BUCKET, key);
    return value === null ? undefined : Number(value);
  };
  const cfg = await streamConfig(jsm);
  let state: { maxBytes: number; bytes: number } | undefined;
  try {
    const info = await jsm.streams.info(`KV_${STATE_BUCKET}`);
    state = { maxBytes: info.config.max_bytes, bytes: info.state.bytes };
  } catch (err) {
    if (!isApiError(err, JetStreamApiCode.StreamNotFound)) throw err;
  }
  return {
    partitions: await read(PARTITIONS_KEY),
    replicas: await read(REPLICAS_KEY),
    stream: cfg ? { ...settingsOf(cfg), replicas: cfg.num_replicas } : undefined,
    state,
  };
}

/**
 * Changes the deployment on purpose: the stream's settings, and the replicas
 * of the stream and every bucket together with their record. The server
 * moves the data; nothing is lost. Used by `npm run topology -- set`.
 */
export async function changeTopology(nc: NatsConnection, change: TopologyChange, log: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(jetstream(nc));
  const cfg = await streamConfig(jsm);
  if (!cfg) throw new TopologyConflictError(`stream ${STREAM_NAME} does not exist yet: start the services once first`);
  const replicas = change.replicas ?? cfg.num_replicas;
  const { stateMaxBytes, ...streamChange } = change;
  const next = streamConfigFor(replicas, { ...settingsOf(cfg), ...streamChange });
  try {
    await jsm.streams.update(STREAM_NAME, { ...cfg, ...next });
    if (stateMaxBytes !== undefined) {
      // Raising it lets the refused writes through on their next redelivery: nothing was acked meanwhile.
      const name = `KV_${STATE_BUCKET}`;
      const info = await jsm.streams.info(name);
      await jsm.streams.update(name, { ...info.config, max_bytes: stateMaxBytes });
    }
    if (change.replicas !== undefined) {
      for (const bucket of [TOPOLOGY_BUCKET, STATE_BUCKET, LEASE_BUCKET]) {
        const name = `KV_${bucket}`;
        const info = await jsm.streams.info(name);
        if (info.config.num_replicas !== replicas) await jsm.streams.update(name, { ...info.config, num_replicas: replicas });
      }
      await (await kvm.open(TOPOLOGY_BUCKET)).put(REPLICAS_KEY, String(replicas));
    }
  } catch (err) {
    throw replicasOr(err, replicas);
  }
  log.info({ change }, "topology changed");
}
