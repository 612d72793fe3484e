// One way to connect to NATS for every service: the configured servers and
// credentials, reconnecting forever with capped exponential backoff, and every
// connection state change logged.

import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { NatsSettings } from "../config/common.js";
import type { Logger } from "../observability/logger.js";

export type { NatsConnection };

const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/** Capped exponential backoff with jitter; reset once a reconnect succeeds. */
export class ReconnectBackoff {
  private attempt = 0;
  next(): number {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.min(this.attempt, 16));
    this.attempt += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
  reset(): void {
    this.attempt = 0;
  }
}

export async function connectionOptions(settings: NatsSettings, backoff = new ReconnectBackoff()): Promise<ConnectionOptions> {
  const options: ConnectionOptions = {
    servers: settings.servers,
    name: settings.name,
    maxReconnectAttempts: -1,
    // A service started before NATS waits for it instead of exiting.
    waitOnFirstConnect: true,
    reconnectDelayHandler: () => backoff.next(),
    pingInterval: 10_000,
    maxPingOut: 3,
    // Otherwise every request (each JetStream publish, each KV update) builds
    // two Error objects with stack traces up front, in case it fails: a
    // measured ~20% of ingest's CPU. Failures still carry their message and cause.
    noAsyncTraces: true,
  };
  if (settings.user !== undefined) {
    options.user = settings.user;
    options.pass = settings.password;
  }
  if (settings.token !== undefined) options.token = settings.token;
  if (settings.credsFile !== undefined) {
    options.authenticator = credsAuthenticator(await readFile(settings.credsFile));
  }
  if (settings.tls) options.tls = { ...settings.tls };
  return options;
}

/** Connects (waiting for a first server if none is up yet) and logs status changes until closed. */
export async function connectNats(settings: NatsSettings, log: Logger): Promise<NatsConnection> {
  const backoff = new ReconnectBackoff();
  const options = await connectionOptions(settings, backoff);
  const nc = await connect(options);
  log.info({ server: nc.getServer(), name: settings.name }, "nats connected");
  void (async () => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case "disconnect":
          log.warn({ server: status.server }, "nats disconnected");
          break;
        case "reconnect":
          backoff.reset();
          log.info({ server: status.server }, "nats reconnected");
          break;
        case "error":
          log.error({ err: status.error }, "nats async error");
          break;
        case "staleConnection":
          log.warn("nats connection stale");
          break;
        case "ldm":
          log.warn({ server: status.server }, "nats server entering lame duck mode");
          break;
        case "slowConsumer":
          log.warn({ subject: status.sub.getSubject() }, "nats slow consumer");
          break;
        default:
          log.debug({ status: status.type }, "nats status");
      }
    }
  })();
  return nc;
}
