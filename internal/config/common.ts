// Settings every service shares: how to reach NATS, the topology it expects,
// logging, and where it listens.

import { accessSync, constants, readFileSync } from "node:fs";
import { ApiKeys, parseApiKeys } from "../http/api-keys.js";
import { DEFAULT_HTTP_BOUNDS, type HttpBounds } from "../http/request-bounds.js";
import type { EnvReader } from "./env-reader.js";

export interface NatsSettings {
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
  /** Path to a .creds file (JWT + nkey seed). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /**
   * Where replies to this client go (`<prefix>.<id>`): requests, JetStream
   * acks, consumer deliveries. A per-user prefix (`_INBOX_ingest`) lets the
   * server's permissions keep each service's replies from the others
   * (deploy/nats/accounts.conf).
   */
  inboxPrefix?: string;
  /** Shown by the server's monitoring endpoints. */
  name: string;
}

/**
 * How the deployment's stream and buckets are shaped. Every field left
 * undefined means "whatever the deployment already has, else the default";
 * a value set explicitly that differs from what the deployment has refuses
 * to start (provisioning never changes an existing stream or bucket: that is
 * `npm run topology -- set ...`, on purpose).
 */
export interface TopologySettings {
  partitions: number | undefined;
  /** Replicas of the stream and every bucket (3 in a cluster). */
  replicas: number | undefined;
  duplicateWindowSeconds?: number | undefined;
  /** The events stream's retention: the history kept, never the state (that lives in KV). */
  maxAgeSeconds?: number | undefined;
  maxBytes?: number | undefined;
  /** S2 compression of the events stream's file store. */
  compression?: StreamCompression | undefined;
  /** Most bytes the state bucket may hold; past it every state write is refused (nothing acked, nothing lost). */
  stateMaxBytes?: number | undefined;
}

export const STREAM_COMPRESSIONS = ["s2", "none"] as const;
export type StreamCompression = (typeof STREAM_COMPRESSIONS)[number];

export interface ListenSettings {
  host: string;
  port: number;
}

export const DEFAULT_PARTITIONS = 16;
export const DEFAULT_REPLICAS = 1;
export const DEFAULT_DUPLICATE_WINDOW_SECONDS = 120;
/** A week of history for replay and audit. */
export const DEFAULT_MAX_AGE_SECONDS = 7 * 86_400;
/**
 * Sized to the Kubernetes volume (10 GiB, of which nats-server may use 8 GB
 * for files): 6 GiB of history leaves room for the state and lease buckets.
 */
export const DEFAULT_MAX_BYTES = 6 * 2 ** 30;
export const DEFAULT_COMPRESSION: StreamCompression = "s2";
/**
 * The state bucket's cap, within the same volume: 6 GiB of history plus 1 GiB
 * of state stays under the 8 GB nats-server may use. A rocket's state is
 * under 1 KB without a gap, so this holds a million rockets, or fewer with
 * large gap buffers; reaching it stops the sequencer's writes (alerted), it
 * never drops state.
 */
export const DEFAULT_STATE_MAX_BYTES = 2 ** 30;
/** The smallest STATE_MAX_BYTES taken (small ones are for tests). */
export const MIN_STATE_MAX_BYTES = 2 ** 16;
export const MAX_PARTITIONS = 1024;

/** nats.js's own inbox prefix. */
export const DEFAULT_INBOX_PREFIX = "_INBOX";
/** Subject tokens without wildcards or whitespace, as nats.js requires of an inbox prefix. */
const INBOX_PREFIX = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

/** The variable's file, when it names one this process cannot read (said at start, not at the first connection). */
function readableFile(r: EnvReader, name: string): string | undefined {
  const path = r.string(name);
  if (path === undefined) return undefined;
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    r.problem(`${name} names a file that cannot be read: ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return path;
}

export function readNats(r: EnvReader, serviceName: string): NatsSettings {
  const credsFile = readableFile(r, "NATS_CREDS_FILE");
  const legacyCreds = readableFile(r, "NATS_CREDS");
  if (credsFile !== undefined && legacyCreds !== undefined && credsFile !== legacyCreds) {
    r.problem("NATS_CREDS_FILE and NATS_CREDS (its older name) name different files: set one");
  }
  const settings: NatsSettings = {
    servers: r.list("NATS_URL", ["nats://127.0.0.1:4222"]),
    user: r.string("NATS_USER"),
    password: r.string("NATS_PASSWORD"),
    token: r.string("NATS_TOKEN"),
    credsFile: credsFile ?? legacyCreds,
    inboxPrefix: r.string("NATS_INBOX_PREFIX", DEFAULT_INBOX_PREFIX),
    name: r.string("NATS_CLIENT_NAME", serviceName),
  };
  if (!INBOX_PREFIX.test(settings.inboxPrefix ?? DEFAULT_INBOX_PREFIX)) {
    // The value is a subject, never a secret: safe to echo.
    r.problem(`NATS_INBOX_PREFIX must be subject tokens (letters, digits, _ $ -, separated by dots), got "${settings.inboxPrefix ?? ""}"`);
  }
  const caFile = readableFile(r, "NATS_TLS_CA");
  const certFile = readableFile(r, "NATS_TLS_CERT");
  const keyFile = readableFile(r, "NATS_TLS_KEY");
  if (caFile || certFile || keyFile) settings.tls = { caFile, certFile, keyFile };
  if ((certFile === undefined) !== (keyFile === undefined)) {
    r.problem("NATS_TLS_CERT and NATS_TLS_KEY go together: set both or neither");
  }
  if ((settings.user === undefined) !== (settings.password === undefined)) {
    r.problem("NATS_USER and NATS_PASSWORD go together: set both or neither");
  }
  const methods = [settings.user, settings.token, settings.credsFile].filter((v) => v !== undefined).length;
  if (methods > 1) r.problem("choose one NATS authentication: NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS_FILE");
  return settings;
}

export function readTopology(r: EnvReader): TopologySettings {
  const compression = r.string("STREAM_COMPRESSION");
  if (compression !== undefined && !(STREAM_COMPRESSIONS as readonly string[]).includes(compression)) {
    r.problem(`STREAM_COMPRESSION must be one of ${STREAM_COMPRESSIONS.join(", ")}, got "${compression}"`);
  }
  return {
    partitions: r.int("PARTITIONS", undefined, { min: 1, max: MAX_PARTITIONS }),
    replicas: r.int("STREAM_REPLICAS", undefined, { min: 1, max: 5 }),
    duplicateWindowSeconds: r.int("DUPLICATE_WINDOW_SECONDS", undefined, { min: 120, max: 86_400 }),
    maxAgeSeconds: r.duration("STREAM_MAX_AGE", undefined, { min: 60, max: 10 * 365 * 86_400 }),
    maxBytes: r.bytes("STREAM_MAX_BYTES", undefined, { min: 2 ** 20, max: 2 ** 50 }),
    stateMaxBytes: r.bytes("STATE_MAX_BYTES", undefined, { min: MIN_STATE_MAX_BYTES, max: 2 ** 50 }),
    compression: (STREAM_COMPRESSIONS as readonly string[]).includes(compression ?? "") ? (compression as StreamCompression) : undefined,
  };
}

export function readListen(r: EnvReader, defaultPort: number): ListenSettings {
  return { host: r.string("HOST", "0.0.0.0"), port: r.int("PORT", defaultPort, { min: 0, max: 65_535 }) };
}

/** The HTTP server's timeouts and limits (internal/http/request-bounds.ts), the same variables for every service. */
export function readHttpBounds(r: EnvReader): HttpBounds {
  const d = DEFAULT_HTTP_BOUNDS;
  const requestTimeoutMs = r.int("HTTP_REQUEST_TIMEOUT_MS", d.requestTimeoutMs, { min: 100, max: 3_600_000 });
  const bounds: HttpBounds = {
    // Unset, it follows a request timeout set shorter than its default.
    headersTimeoutMs: r.int("HTTP_HEADERS_TIMEOUT_MS", Math.min(d.headersTimeoutMs, requestTimeoutMs), { min: 100, max: 600_000 }),
    requestTimeoutMs,
    keepAliveTimeoutMs: r.int("HTTP_KEEP_ALIVE_TIMEOUT_MS", d.keepAliveTimeoutMs, { min: 100, max: 600_000 }),
    idleTimeoutMs: r.int("HTTP_IDLE_TIMEOUT_MS", d.idleTimeoutMs, { min: 100, max: 3_600_000 }),
    maxConnections: r.int("HTTP_MAX_CONNECTIONS", d.maxConnections, { min: 1, max: 1_000_000 }),
    maxInFlight: r.int("HTTP_MAX_IN_FLIGHT", d.maxInFlight, { min: 1, max: 1_000_000 }),
  };
  if (bounds.headersTimeoutMs > bounds.requestTimeoutMs) {
    r.problem(`HTTP_HEADERS_TIMEOUT_MS (${bounds.headersTimeoutMs}) must be at most HTTP_REQUEST_TIMEOUT_MS (${bounds.requestTimeoutMs})`);
  }
  return bounds;
}

/**
 * Who may call the HTTP routes (internal/http/api-auth.ts). `AUTH=on`, the
 * default everywhere, needs AUTH_KEYS_FILE; the file is read and checked
 * here, once, so that a missing or malformed file is a configuration error
 * naming every bad line (exit 78), never a service that starts and refuses
 * everyone. The file is read again only on restart (that is how keys are
 * reloaded: docs/security.md).
 */
export type AuthSettings = { mode: "off" } | { mode: "on"; keysFile: string; keys: ApiKeys };

export const AUTH_MODES = ["on", "off"] as const;

export function readAuth(r: EnvReader, readText: (path: string) => string = (path) => readFileSync(path, "utf8")): AuthSettings {
  const mode = r.oneOf("AUTH", "on", AUTH_MODES);
  const keysFile = r.string("AUTH_KEYS_FILE");
  if (mode === "off") return { mode };
  if (keysFile === undefined) {
    r.problem("AUTH_KEYS_FILE must name the API keys file (lines of <name> <scopes> <sha256 hex of the key>; see docs/security.md), or set AUTH=off");
    return { mode, keysFile: "", keys: new ApiKeys([]) };
  }
  let text: string;
  try {
    text = readText(keysFile);
  } catch (err) {
    r.problem(`AUTH_KEYS_FILE "${keysFile}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return { mode, keysFile, keys: new ApiKeys([]) };
  }
  const parsed = parseApiKeys(text);
  for (const problem of parsed.problems) r.problem(`AUTH_KEYS_FILE "${keysFile}" ${problem}`);
  return { mode, keysFile, keys: new ApiKeys(parsed.entries) };
}

/** The keys a service's app checks, or undefined when AUTH=off. */
export const authKeys = (auth: AuthSettings): ApiKeys | undefined => (auth.mode === "on" ? auth.keys : undefined);

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function readLogLevel(r: EnvReader): LogLevel {
  return r.oneOf("LOG_LEVEL", "info", LOG_LEVELS);
}

/**
 * Longest a graceful stop may take (SHUTDOWN_TIMEOUT_MS, the same variable
 * for every service) before the process exits 1 anyway; each service gives
 * its own default, long enough for the in-flight work it lets finish.
 */
export function readShutdownTimeout(r: EnvReader, defaultMs: number): number {
  return r.int("SHUTDOWN_TIMEOUT_MS", defaultMs, { min: 100, max: 600_000 });
}
