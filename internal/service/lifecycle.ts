// The start and stop steps every service shares (runner.ts runs them in
// order), so that the three behave alike: a bad configuration (invalid
// variables, or a partition or replica count the deployment cannot take)
// exits 78 (ExitCode.Config) saying what to change, without a stack trace,
// so that supervisors do not restart it; transient start failures (JetStream
// still electing, a bucket being created by a sibling) are retried with
// backoff until the service is told to stop; any other start failure exits 1
// with its stack; a SIGTERM or SIGINT runs the service's shutdown once, and a
// shutdown that hangs cannot keep the process alive past its deadline.

import type { NatsConnection } from "@nats-io/transport-node";
import type { TopologySettings } from "../config/common.js";
import { ConfigError, type Env } from "../config/env-reader.js";
import { provisionTopology, TopologyConflictError, type Provisioned } from "../nats/topology.js";
import type { Logger } from "../observability/logger.js";
import { ExitCode } from "./exit-codes.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Loads the configuration; on a ConfigError prints every problem and exits ExitCode.Config. */
export function loadConfigOrExit<T>(load: (env: Env) => T): T {
  try {
    return load(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(ExitCode.Config);
    }
    throw err;
  }
}

/**
 * True for a failure that only a configuration change can fix: an invalid
 * variable, or a topology conflict (a partition count, replica count or
 * stream setting that differs from the deployment's, more replicas than
 * there are servers).
 */
export function isConfigurationError(err: unknown): err is ConfigError | TopologyConflictError {
  return err instanceof ConfigError || err instanceof TopologyConflictError;
}

/**
 * Ends a service whose start failed. A configuration error is logged as the
 * problem to fix (no stack: it is not a bug) and exits ExitCode.Config, which
 * supervisors treat as final; anything else is logged with its stack and
 * exits ExitCode.Failure.
 */
export function exitOnStartFailure(log: Logger, service: string, err: unknown): never {
  if (isConfigurationError(err)) {
    log.fatal({ problem: err.message, exitCode: ExitCode.Config }, `${service} cannot start with this configuration; fix it and start again`);
    process.exit(ExitCode.Config);
  }
  log.fatal({ err }, `${service} failed to start`);
  process.exit(ExitCode.Failure);
}

export interface RetryOptions {
  log: Logger;
  /** Stop retrying (and resolve undefined) once this says so. */
  stopping: () => boolean;
  /** Failures that retrying cannot fix; they are thrown at once. A configuration error always is. */
  fatal?: (err: unknown) => boolean;
  maxDelayMs?: number;
}

/** Runs `attempt` until it succeeds, backing off exponentially; undefined if stopped first. */
export async function retryUntilStopped<T>(what: string, attempt: () => Promise<T>, options: RetryOptions): Promise<T | undefined> {
  const { log, stopping, fatal = () => false, maxDelayMs = 10_000 } = options;
  for (let n = 0; !stopping(); n++) {
    try {
      return await attempt();
    } catch (err) {
      if (isConfigurationError(err) || fatal(err) || stopping()) throw err;
      // Expected while NATS elects or fails over: the reason without a stack, louder only once it lasts.
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      if (n < 3) log.info({ reason, attempt: n }, `${what} failed, retrying`);
      else log.warn({ reason, attempt: n }, `${what} failed, retrying`);
      await sleep(Math.min(maxDelayMs, 500 * 2 ** n));
    }
  }
  return undefined;
}

/**
 * Runs `shutdown` once on the first SIGTERM or SIGINT and exits 0 when it
 * resolves; exits 1 if it fails or takes longer than `deadlineMs`.
 */
export function onShutdownSignal(log: Logger, deadlineMs: number, shutdown: () => Promise<void>): void {
  let started = false;
  const run = (signal: NodeJS.Signals) => {
    if (started) return;
    started = true;
    log.info({ signal }, "shutting down");
    setTimeout(() => {
      log.error({ deadlineMs }, "shutdown took too long, exiting");
      process.exit(ExitCode.Failure);
    }, deadlineMs).unref();
    shutdown().then(
      () => {
        log.info("stopped");
        process.exit(ExitCode.Ok);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(ExitCode.Failure);
      },
    );
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, run);
}

/**
 * Drains the connection (delivering what is buffered, then closing) when a
 * server is there to flush to, within `timeoutMs`; closes it in any case.
 */
export async function closeNats(nc: NatsConnection | undefined, log: Logger, options: { drain: boolean; timeoutMs: number }): Promise<void> {
  if (nc === undefined || nc.isClosed()) return;
  if (options.drain) {
    const drained = nc.drain().catch((err: unknown) => log.warn({ err }, "nats drain failed"));
    await Promise.race([drained, sleep(options.timeoutMs)]);
  }
  if (!nc.isClosed()) await nc.close();
}

/**
 * Provisions the shared topology, retrying transient failures (JetStream
 * still starting or electing) until stopped; a topology conflict is fatal,
 * since retrying cannot fix a configuration.
 */
export function provisionUntilStopped(nc: NatsConnection, settings: TopologySettings, log: Logger, stopping: () => boolean): Promise<Provisioned | undefined> {
  return retryUntilStopped("topology provisioning", () => provisionTopology(nc, settings, log), { log, stopping });
}
