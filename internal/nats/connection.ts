// One way to connect to NATS for every service: the configured servers and
// credentials, reconnecting forever with capped exponential backoff, and every
// connection state change logged.
//
// A service started before NATS (or pointed at the wrong place) keeps trying
// instead of exiting, and says so: the first failed attempt is logged at once
// with the servers and the error, and again every STILL_WAITING_LOG_MS while
// it lasts; the caller's onWaiting hears the same reason after every attempt,
// so that /readyz can tell why the service is not ready. A connection lost
// later is said at once too, and again every STILL_WAITING_LOG_MS until it is
// back.

import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { NatsSettings } from "../config/common.js";
import type { Logger } from "../observability/logger.js";

export type { NatsConnection };

const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** How often a service still waiting for its first connection says so again. */
export const STILL_WAITING_LOG_MS = 15_000;

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

/**
 * The reconnect delay nats.js asks for. It asks on every pass of its dial
 * loop, waiting passes included, not once per attempt: a backoff that counted
 * the calls reached its 10 s cap within a few seconds of an outage, so a
 * service reconnected up to 10 s after NATS was back. This one grows with how
 * long the outage has lasted instead (half of it, with jitter, within
 * 250 ms..10 s), however often it is asked.
 */
export class OutageBackoff {
  private since: number | undefined;
  constructor(private readonly now: () => number = () => performance.now()) {}
  next(): number {
    const t = this.now();
    this.since ??= t;
    const ceiling = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_START_MS, (t - this.since) / 2));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
  reset(): void {
    this.since = undefined;
  }
}

export async function connectionOptions(settings: NatsSettings, backoff: { next(): number } = new OutageBackoff()): Promise<ConnectionOptions> {
  const options: ConnectionOptions = {
    servers: settings.servers,
    name: settings.name,
    maxReconnectAttempts: -1,
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
  if (settings.inboxPrefix !== undefined) options.inboxPrefix = settings.inboxPrefix;
  return options;
}

export interface ConnectProgress {
  /** Why the service is not connected yet, after each failed first attempt; undefined once connected. */
  onWaiting?: (reason: string | undefined) => void;
  /** How often a lasting outage is said again (STILL_WAITING_LOG_MS). */
  stillWaitingLogMs?: number;
}

/** The error as one line: nats.js wraps the socket's error (ECONNREFUSED, ENOTFOUND...) as the cause. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? ` (${err.cause.message})` : "";
  return `${err.message}${cause}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Tries until one of the servers answers, backing off, and says so while it cannot. */
async function firstConnection(options: ConnectionOptions, settings: NatsSettings, log: Logger, progress: ConnectProgress): Promise<NatsConnection> {
  const servers = settings.servers.join(",");
  const backoff = new ReconnectBackoff();
  const startedAt = performance.now();
  let attempts = 0;
  let saidAt = -Infinity;
  log.info({ servers, name: settings.name }, "connecting to nats");
  for (;;) {
    try {
      const nc = await connect({ ...options, waitOnFirstConnect: false });
      progress.onWaiting?.(undefined);
      if (attempts > 0) log.info({ servers, attempts, waitedSeconds: Math.round((performance.now() - startedAt) / 1000) }, "nats reachable after failed attempts");
      return nc;
    } catch (err) {
      attempts += 1;
      const error = describe(err);
      const waitedSeconds = Math.round((performance.now() - startedAt) / 1000);
      progress.onWaiting?.(`cannot reach NATS at ${servers}: ${error}; retrying`);
      if (performance.now() - saidAt >= (progress.stillWaitingLogMs ?? STILL_WAITING_LOG_MS)) {
        saidAt = performance.now();
        log.warn({ servers, error, attempts, waitedSeconds }, attempts === 1 ? "cannot reach nats; retrying until it answers" : "still cannot reach nats; retrying");
      }
      await sleep(backoff.next());
    }
  }
}

/**
 * Connects, retrying for as long as it takes (a service may start before
 * NATS), and logs status changes until the connection closes.
 */
export async function connectNats(settings: NatsSettings, log: Logger, progress: ConnectProgress = {}): Promise<NatsConnection> {
  const backoff = new OutageBackoff();
  const options = await connectionOptions(settings, backoff);
  const nc = await firstConnection(options, settings, log, progress);
  log.info({ server: nc.getServer(), name: settings.name }, "nats connected");
  const repeatMs = progress.stillWaitingLogMs ?? STILL_WAITING_LOG_MS;
  let lostAt: number | undefined;
  let saidAt = 0;
  let attempts = 0;
  const downSeconds = () => Math.round((performance.now() - (lostAt ?? performance.now())) / 1000);
  void (async () => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case "disconnect":
          lostAt = saidAt = performance.now();
          attempts = 0;
          log.warn({ server: status.server }, "nats disconnected; reconnecting");
          break;
        case "reconnecting":
          attempts += 1;
          if (lostAt !== undefined && performance.now() - saidAt >= repeatMs) {
            saidAt = performance.now();
            log.warn({ servers: settings.servers.join(","), attempts, downSeconds: downSeconds() }, "still disconnected from nats; reconnecting");
          }
          break;
        case "reconnect":
          backoff.reset();
          log.info({ server: status.server, attempts, downSeconds: downSeconds() }, "nats reconnected");
          lostAt = undefined;
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
