// The ingest service's configuration: the shared NATS, topology, listen and
// log settings plus its own limits, read once at start with every problem
// listed together.

import { readAuth, readHttpBounds, readListen, readLogLevel, readNats, readShutdownTimeout, readTopology } from "../../internal/config/common.js";
import type { AuthSettings, ListenSettings, LogLevel, NatsSettings, TopologySettings } from "../../internal/config/common.js";
import { EnvReader, type Env } from "../../internal/config/env-reader.js";
import { DEFAULT_ADMISSION } from "./unlaunched-admission.js";
import type { HttpBounds } from "../../internal/http/request-bounds.js";

export const SERVICE_NAME = "ingest";
export const DEFAULT_PORT = 8088;

export interface IngestConfig {
  nats: NatsSettings;
  topology: TopologySettings;
  listen: ListenSettings;
  /** Which keys may call which routes (AUTH, AUTH_KEYS_FILE); on by default. */
  auth: AuthSettings;
  logLevel: LogLevel;
  /** Largest body accepted for a single message (413 above it). */
  bodyLimitBytes: number;
  /** Largest body accepted for a batch (a JSON array); batches carry up to maxBatch messages. */
  batchBodyLimitBytes: number;
  /** Most messages in one batch. */
  maxBatch: number;
  /** How long a publish waits for the stream's ack before answering 503; well under a client's 10 s give-up. */
  publishTimeoutMs: number;
  /** Most publishes awaiting the stream's ack at once; more wait their turn (within publishTimeoutMs). */
  publishMaxInFlight: number;
  /** The Retry-After a 503 carries. */
  retryAfterSeconds: number;
  /** The HTTP server's timeouts, connection and in-flight limits. */
  http: HttpBounds;
  /** Per-client rate limit on POST /messages (429 above it). */
  rateLimit: RateLimitSettings;
  /** Processes serving the port (node:cluster); more than one lets one instance use more than one core. */
  workers: number;
  /** Channels that have not launched one process takes messages for: at once, then per second (unlaunched-admission.ts). */
  unlaunchedAdmission: { burst: number; perSecond: number };
  /** Longest the graceful stop of one ingest process may take (SHUTDOWN_TIMEOUT_MS). */
  shutdownTimeoutMs: number;
}

/**
 * Each client (by IP address) may post `max` requests per window of
 * `windowSeconds` (a batch counts once); `max` 0 turns the limit off. Each
 * worker process counts on its own, so an instance with WORKERS=N allows up
 * to N times as much. The default, 100,000 per 10 s, is about twice what one
 * client can send here (the operators' program: ~5,000 messages/s).
 */
export interface RateLimitSettings {
  max: number;
  windowSeconds: number;
}

/** Past the publish timeout, shutdown gives up on in-flight work (publishes are bounded by it well before). */
const SHUTDOWN_GRACE_MS = 10_000;

export function loadConfig(env: Env): IngestConfig {
  const r = new EnvReader(env);
  const publishTimeoutMs = r.int("PUBLISH_TIMEOUT_MS", 5000, { min: 100, max: 60_000 });
  const config: IngestConfig = {
    nats: readNats(r, SERVICE_NAME),
    topology: readTopology(r),
    listen: readListen(r, DEFAULT_PORT),
    auth: readAuth(r),
    logLevel: readLogLevel(r),
    bodyLimitBytes: r.int("BODY_LIMIT_BYTES", 65_536, { min: 1024, max: 16 * 1024 * 1024 }),
    batchBodyLimitBytes: r.int("BATCH_BODY_LIMIT_BYTES", 1_048_576, { min: 1024, max: 64 * 1024 * 1024 }),
    maxBatch: r.int("MAX_BATCH", 1000, { min: 1, max: 100_000 }),
    publishTimeoutMs,
    publishMaxInFlight: r.int("PUBLISH_MAX_IN_FLIGHT", 512, { min: 1, max: 100_000 }),
    retryAfterSeconds: r.int("RETRY_AFTER_SECONDS", 1, { min: 1, max: 3600 }),
    workers: r.int("WORKERS", 1, { min: 1, max: 64 }),
    unlaunchedAdmission: {
      burst: r.int("UNLAUNCHED_ADMISSION_BURST", DEFAULT_ADMISSION.burst, { min: 0, max: 10_000_000 }),
      perSecond: r.int("UNLAUNCHED_ADMISSION_PER_SECOND", DEFAULT_ADMISSION.perSecond, { min: 1, max: 1_000_000 }),
    },
    http: readHttpBounds(r),
    rateLimit: {
      // Above what one worker can serve (~10k single-message requests/s here): by default only a runaway client meets it.
      max: r.int("RATE_LIMIT_MAX", 300_000, { min: 0, max: 100_000_000 }),
      windowSeconds: r.int("RATE_LIMIT_WINDOW_SECONDS", 10, { min: 1, max: 3600 }),
    },
    shutdownTimeoutMs: readShutdownTimeout(r, publishTimeoutMs + SHUTDOWN_GRACE_MS),
  };
  r.done();
  return config;
}
