// The query API's configuration: the shared NATS, topology, listen and log
// settings plus its Server-Sent Events, history and summary limits, read once
// at start with every problem listed together.

import { readAuth, readHttpBounds, readListen, readLogLevel, readNats, readShutdownTimeout, readTopology } from "../../internal/config/common.js";
import type { AuthSettings, ListenSettings, LogLevel, NatsSettings, TopologySettings } from "../../internal/config/common.js";
import { EnvReader, type Env } from "../../internal/config/env-reader.js";
import type { HttpBounds } from "../../internal/http/request-bounds.js";
import { DEFAULT_SUMMARY_TOP_LABELS } from "../../internal/view/fleet-summary.js";

export const SERVICE_NAME = "api";
export const DEFAULT_PORT = 8080;

export interface SseSettings {
  /** Interval between heartbeat comments on an otherwise quiet stream (keeps proxies from closing it). */
  heartbeatMs: number;
  /** Most streams open at once; more are refused with 503. */
  maxClients: number;
  /**
   * Most streams one client (IP address) may hold, so that one client cannot
   * take every slot; more are refused with 429. Unset: maxClients. Behind a
   * proxy every client shares the proxy's address: raise it there.
   */
  maxClientsPerClient?: number;
  /**
   * Most bytes of events one stream may hold back for a client that reads
   * slower than rockets change (latest event per rocket only); past it the
   * client is disconnected. Bounds memory at about maxClients * this.
   */
  maxQueuedBytes: number;
}

export interface HistorySettings {
  /** Most stored messages one history read may fold; a channel holding more is refused (422). */
  maxMessages: number;
  /** How long one fetch of stored messages may take. */
  fetchTimeoutMs: number;
}

export interface ApiConfig {
  nats: NatsSettings;
  topology: TopologySettings;
  listen: ListenSettings;
  /** Which keys may call which routes (AUTH, AUTH_KEYS_FILE); on by default. */
  auth: AuthSettings;
  logLevel: LogLevel;
  /** The HTTP server's timeouts, connection and in-flight limits. */
  http: HttpBounds;
  sse: SseSettings;
  history: HistorySettings;
  /** Types and missions /rockets/summary lists by name (SUMMARY_TOP_LABELS); the rest are summed under "other". */
  summaryTopLabels: number;
  /** Where the built operator console is (CONSOLE_DIR); undefined: where `npm run build` puts it. */
  consoleDir: string | undefined;
  /** Longest a graceful stop may take (SHUTDOWN_TIMEOUT_MS); past it the API gives up waiting for in-flight requests. */
  shutdownTimeoutMs: number;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export function loadConfig(env: Env): ApiConfig {
  const r = new EnvReader(env);
  const config: ApiConfig = {
    nats: readNats(r, SERVICE_NAME),
    topology: readTopology(r),
    listen: readListen(r, DEFAULT_PORT),
    auth: readAuth(r),
    logLevel: readLogLevel(r),
    http: readHttpBounds(r),
    sse: {
      heartbeatMs: r.int("SSE_HEARTBEAT_SECONDS", 15, { min: 1, max: 300 }) * 1000,
      maxClients: r.int("SSE_MAX_CLIENTS", 256, { min: 1, max: 100_000 }),
      maxClientsPerClient: r.int("SSE_MAX_CLIENTS_PER_CLIENT", 32, { min: 1, max: 100_000 }),
      maxQueuedBytes: r.int("SSE_MAX_QUEUED_BYTES", 1_048_576, { min: 4096, max: 256 * 1_048_576 }),
    },
    history: {
      maxMessages: r.int("HISTORY_MAX_MESSAGES", 100_000, { min: 1, max: 10_000_000 }),
      fetchTimeoutMs: 5000,
    },
    summaryTopLabels: r.int("SUMMARY_TOP_LABELS", DEFAULT_SUMMARY_TOP_LABELS, { min: 0, max: 1000 }),
    consoleDir: r.string("CONSOLE_DIR"),
    shutdownTimeoutMs: readShutdownTimeout(r, DEFAULT_SHUTDOWN_TIMEOUT_MS),
  };
  r.done();
  return config;
}
