// The sequencer's configuration: the shared NATS, topology, listen and log
// settings plus ownership timing and processing limits, read once at start
// with every problem listed together.

import { hostname } from "node:os";
import { DEFAULT_MAX_AGE_SECONDS, readAuth, readHttpBounds, readListen, readLogLevel, readNats, readShutdownTimeout, readTopology } from "../../internal/config/common.js";
import type { AuthSettings, ListenSettings, LogLevel, NatsSettings, TopologySettings } from "../../internal/config/common.js";
import { EnvReader, type Env } from "../../internal/config/env-reader.js";
import type { HttpBounds } from "../../internal/http/request-bounds.js";
import { GapPolicy } from "../../internal/sequencer/channel-actor.js";
import { INSTANCE_ID_PATTERN } from "../../internal/sequencer/membership.js";

export const SERVICE_NAME = "sequencer";
export const DEFAULT_PORT = 9090;
/** A day: long past any delay of a retried message, far inside the week of retention. */
export const DEFAULT_GAP_DEADLINE_SECONDS = 86_400;

export interface SequencerConfig {
  nats: NatsSettings;
  topology: TopologySettings;
  listen: ListenSettings;
  /** Which keys may call which routes (AUTH, AUTH_KEYS_FILE); on by default. */
  auth: AuthSettings;
  logLevel: LogLevel;
  /** The ops server's timeouts, connection and in-flight limits. */
  http: HttpBounds;
  /** This instance's member id: unique among running instances, one KV key token. */
  instanceId: string;
  /**
   * Parked messages one channel keeps in memory behind a gap, and the
   * numbers one re-read from the stream keeps; past it they stay parked in
   * the stream only (never nak'ed, never lost).
   */
  maxPendingPerChannel: number;
  /** What a gap older than gapDeadlineSeconds does: keep waiting, or skip the missing numbers. */
  gapPolicy: GapPolicy;
  /** Age at which a gap is reviewed by the policy, and a channel that never launched is given up; below STREAM_MAX_AGE. */
  gapDeadlineSeconds: number;
  /** Parked messages held in memory over every channel of this instance. */
  maxBufferedMessages: number;
  /** Their encoded bytes. */
  maxBufferedBytes: number;
  /** Channels with a state entry but no launch this instance keeps (past it: parked in the stream only). */
  maxUnlaunchedChannels: number;
  /** A lease or member unchanged this long (as observed locally) is considered dead. */
  leaseTtlMs: number;
  /** How often the member key and the leases are rewritten. */
  heartbeatMs: number;
  /** An actor with nothing to do for this long is evicted (its state stays in KV). */
  actorIdleMs: number;
  /** Soft cap on channel actors in memory. */
  maxActors: number;
  /** KV reads and writes in flight at once, over all channels. */
  kvConcurrency: number;
  /** How long an idle channel's state write may wait to leave together with other channels' (internal/sequencer/write-linger.ts). */
  writeLingerMs: number;
  /** Messages asked for per pull. */
  fetchBatch: number;
  /** How long a pull waits at the server for messages; a release waits up to five of these for the current pull. */
  fetchExpiresMs: number;
  /** Delivered-but-unacked messages per partition (the consumer's max_ack_pending). */
  maxAckPending: number;
  /** Redelivery delay of an unacked message, e.g. after its owner died. */
  ackWaitMs: number;
  /** Delay before a nak'ed message (overflow, KV failure) is redelivered. */
  retryDelayMs: number;
  /** How often consumer lag is read. */
  lagPollMs: number;
  /** Longest a graceful stop waits for in-flight work before exiting anyway (SHUTDOWN_TIMEOUT_MS). */
  shutdownTimeoutMs: number;
}

/** hostname-pid, with anything a KV key cannot hold replaced. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^-_=A-Za-z0-9]/g, "-").slice(-64);
}

export function loadConfig(env: Env): SequencerConfig {
  const r = new EnvReader(env);
  const config: SequencerConfig = {
    nats: readNats(r, SERVICE_NAME),
    topology: readTopology(r),
    listen: readListen(r, DEFAULT_PORT),
    auth: readAuth(r),
    logLevel: readLogLevel(r),
    http: readHttpBounds(r),
    instanceId: r.string("INSTANCE_ID", defaultInstanceId()),
    maxPendingPerChannel: r.int("MAX_PENDING_PER_CHANNEL", 10_000, { min: 1, max: 1_000_000 }),
    gapPolicy: r.oneOf("GAP_POLICY", GapPolicy.Wait, Object.values(GapPolicy)),
    gapDeadlineSeconds: r.duration("GAP_DEADLINE_SECONDS", DEFAULT_GAP_DEADLINE_SECONDS, { min: 1, max: 10 * 365 * 86_400 })!,
    maxBufferedMessages: r.int("MAX_BUFFERED_MESSAGES", 200_000, { min: 1, max: 100_000_000 }),
    maxBufferedBytes: r.bytes("MAX_BUFFERED_BYTES", 64 * 2 ** 20, { min: 1024, max: 2 ** 40 })!,
    maxUnlaunchedChannels: r.int("MAX_UNLAUNCHED_CHANNELS", 10_000, { min: 0, max: 10_000_000 }),
    leaseTtlMs: r.int("LEASE_TTL_MS", 5000, { min: 500, max: 600_000 }),
    heartbeatMs: r.int("HEARTBEAT_MS", 1000, { min: 100, max: 60_000 }),
    actorIdleMs: r.int("ACTOR_IDLE_MS", 60_000, { min: 100, max: 86_400_000 }),
    maxActors: r.int("MAX_ACTORS", 20_000, { min: 1, max: 10_000_000 }),
    kvConcurrency: r.int("KV_WRITE_CONCURRENCY", 64, { min: 1, max: 10_000 }),
    writeLingerMs: r.int("STATE_WRITE_LINGER_MS", 5, { min: 0, max: 1000 }),
    fetchBatch: r.int("FETCH_BATCH", 500, { min: 1, max: 10_000 }),
    fetchExpiresMs: r.int("FETCH_EXPIRES_MS", 1000, { min: 1000, max: 30_000 }),
    maxAckPending: r.int("MAX_ACK_PENDING", 5000, { min: 1, max: 1_000_000 }),
    ackWaitMs: r.int("ACK_WAIT_MS", 30_000, { min: 1000, max: 3_600_000 }),
    retryDelayMs: r.int("RETRY_DELAY_MS", 1000, { min: 10, max: 600_000 }),
    lagPollMs: r.int("LAG_POLL_MS", 5000, { min: 100, max: 600_000 }),
    shutdownTimeoutMs: readShutdownTimeout(r, 20_000),
  };
  if (!INSTANCE_ID_PATTERN.test(config.instanceId)) {
    r.problem(`INSTANCE_ID must be 1 to 64 characters of A-Z a-z 0-9 - _ =, got "${config.instanceId}"`);
  }
  const retention = config.topology.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  if (config.gapDeadlineSeconds >= retention) {
    r.problem(
      `GAP_DEADLINE_SECONDS (${config.gapDeadlineSeconds}s) must be shorter than the stream's retention STREAM_MAX_AGE (${retention}s): ` +
        "messages behind a gap wait in the stream, and would expire before the gap policy looked at them",
    );
  }
  // Two renewals may be missed (a slow server, a pause of the process) before a lease expires under its owner.
  if (config.heartbeatMs * 3 > config.leaseTtlMs) {
    r.problem(`HEARTBEAT_MS (${config.heartbeatMs}) must be at most a third of LEASE_TTL_MS (${config.leaseTtlMs}), so that a lease outlives two missed renewals`);
  }
  r.done();
  return config;
}
