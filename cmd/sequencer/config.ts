// The sequencer's configuration: the shared NATS, topology, listen and log
// settings plus ownership timing and processing limits, read once at start
// with every problem listed together.

import { hostname } from "node:os";
import { readAuth, readHttpBounds, readListen, readLogLevel, readNats, readTopology } from "../../internal/config/common.js";
import type { AuthSettings, ListenSettings, LogLevel, NatsSettings, TopologySettings } from "../../internal/config/common.js";
import { EnvReader, type Env } from "../../internal/config/env-reader.js";
import type { HttpBounds } from "../../internal/http/request-bounds.js";
import { INSTANCE_ID_PATTERN } from "../../internal/sequencer/membership.js";

export const SERVICE_NAME = "sequencer";
export const DEFAULT_PORT = 9090;

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
  /** Messages one channel may hold behind a gap; past it they are nak'ed with a delay. */
  maxPendingPerChannel: number;
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
  /** Messages asked for per pull. */
  fetchBatch: number;
  /** Delivered-but-unacked messages per partition (the consumer's max_ack_pending). */
  maxAckPending: number;
  /** Redelivery delay of an unacked message, e.g. after its owner died. */
  ackWaitMs: number;
  /** Delay before a nak'ed message (overflow, KV failure) is redelivered. */
  retryDelayMs: number;
  /** How often consumer lag is read. */
  lagPollMs: number;
  /** Longest a graceful stop waits for in-flight work before exiting anyway. */
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
    leaseTtlMs: r.int("LEASE_TTL_MS", 5000, { min: 500, max: 600_000 }),
    heartbeatMs: r.int("HEARTBEAT_MS", 1000, { min: 100, max: 60_000 }),
    actorIdleMs: r.int("ACTOR_IDLE_MS", 60_000, { min: 100, max: 86_400_000 }),
    maxActors: r.int("MAX_ACTORS", 20_000, { min: 1, max: 10_000_000 }),
    kvConcurrency: r.int("KV_WRITE_CONCURRENCY", 64, { min: 1, max: 10_000 }),
    fetchBatch: r.int("FETCH_BATCH", 500, { min: 1, max: 10_000 }),
    maxAckPending: r.int("MAX_ACK_PENDING", 5000, { min: 1, max: 1_000_000 }),
    ackWaitMs: r.int("ACK_WAIT_MS", 30_000, { min: 1000, max: 3_600_000 }),
    retryDelayMs: r.int("RETRY_DELAY_MS", 1000, { min: 10, max: 600_000 }),
    lagPollMs: r.int("LAG_POLL_MS", 5000, { min: 100, max: 600_000 }),
    shutdownTimeoutMs: r.int("SHUTDOWN_TIMEOUT_MS", 20_000, { min: 100, max: 600_000 }),
  };
  if (!INSTANCE_ID_PATTERN.test(config.instanceId)) {
    r.problem(`INSTANCE_ID must be 1 to 64 characters of A-Z a-z 0-9 - _ =, got "${config.instanceId}"`);
  }
  if (config.heartbeatMs * 2 > config.leaseTtlMs) {
    r.problem(`HEARTBEAT_MS (${config.heartbeatMs}) must be at most half of LEASE_TTL_MS (${config.leaseTtlMs})`);
  }
  r.done();
  return config;
}
