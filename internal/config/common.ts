// Settings every service shares: how to reach NATS, the topology it expects,
// logging, and where it listens.

import type { EnvReader } from "./env-reader.js";

export interface NatsSettings {
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
  /** Path to a .creds file (JWT + nkey seed). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Shown by the server's monitoring endpoints. */
  name: string;
}

export interface TopologySettings {
  /** Undefined means "whatever the deployment already uses, else the default". */
  partitions: number | undefined;
  replicas: number;
  duplicateWindowSeconds: number;
}

export interface ListenSettings {
  host: string;
  port: number;
}

export const DEFAULT_PARTITIONS = 16;
export const MAX_PARTITIONS = 1024;

export function readNats(r: EnvReader, serviceName: string): NatsSettings {
  const settings: NatsSettings = {
    servers: r.list("NATS_URL", ["nats://127.0.0.1:4222"]),
    user: r.string("NATS_USER"),
    password: r.string("NATS_PASSWORD"),
    token: r.string("NATS_TOKEN"),
    credsFile: r.string("NATS_CREDS"),
    name: r.string("NATS_CLIENT_NAME", serviceName),
  };
  const caFile = r.string("NATS_TLS_CA");
  const certFile = r.string("NATS_TLS_CERT");
  const keyFile = r.string("NATS_TLS_KEY");
  if (caFile || certFile || keyFile) settings.tls = { caFile, certFile, keyFile };
  if ((certFile === undefined) !== (keyFile === undefined)) {
    r.problem("NATS_TLS_CERT and NATS_TLS_KEY go together: set both or neither");
  }
  if ((settings.user === undefined) !== (settings.password === undefined)) {
    r.problem("NATS_USER and NATS_PASSWORD go together: set both or neither");
  }
  const methods = [settings.user, settings.token, settings.credsFile].filter((v) => v !== undefined).length;
  if (methods > 1) r.problem("choose one NATS authentication: NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS");
  return settings;
}

export function readTopology(r: EnvReader): TopologySettings {
  return {
    partitions: r.int("PARTITIONS", undefined, { min: 1, max: MAX_PARTITIONS }),
    replicas: r.int("STREAM_REPLICAS", 1, { min: 1, max: 5 }),
    duplicateWindowSeconds: r.int("DUPLICATE_WINDOW_SECONDS", 120, { min: 120, max: 86_400 }),
  };
}

export function readListen(r: EnvReader, defaultPort: number): ListenSettings {
  return { host: r.string("HOST", "0.0.0.0"), port: r.int("PORT", defaultPort, { min: 0, max: 65_535 }) };
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function readLogLevel(r: EnvReader): LogLevel {
  return r.oneOf("LOG_LEVEL", "info", LOG_LEVELS);
}
