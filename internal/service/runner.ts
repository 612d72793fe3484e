// One service process, run the same way for ingest, the sequencer and the
// API (fastify/demo's server.ts, wild-workouts' RunHTTPServer). The service
// hands over its parts (cmd/<svc>/service.ts): its HTTP app, its start step,
// its stop steps and why it is not ready; the runner owns the order.
//
// Start: listen (probes answer at once; /readyz says 503 "connecting to
// NATS", then why NATS cannot be reached) -> connect to NATS, retrying for as
// long as it takes -> provision the topology, retrying transient failures ->
// the service's start step -> ready as soon as the service's own readiness
// says so. A start failure exits as lifecycle.ts says (78 for a configuration
// the deployment cannot take, 1 otherwise); one that comes while stopping is
// the stop's business, not a failure.
//
// Stop, on the first SIGTERM or SIGINT: not ready ("shutting down") -> the
// service stops taking work (beforeClose) -> the HTTP server stops accepting
// and answers what is in flight (app.close) -> the service lets go of what
// it still holds (afterClose) -> NATS drains within DRAIN_TIMEOUT_MS -> exit
// 0. The whole stop is bounded by the configuration's shutdownTimeoutMs
// (SHUTDOWN_TIMEOUT_MS, the same variable for every service): past it, exit 1.

import type { FastifyInstance } from "fastify";
import type { ListenSettings, NatsSettings, TopologySettings } from "../config/common.js";
import type { Readiness } from "../http/service-routes.js";
import { connectNats, type NatsConnection } from "../nats/connection.js";
import type { Provisioned } from "../nats/topology.js";
import type { Logger } from "../observability/logger.js";
import { closeNats, exitOnStartFailure, onShutdownSignal, provisionUntilStopped } from "./lifecycle.js";

/** Longest the NATS connection may take to deliver what it still buffers before it is closed anyway. */
export const DRAIN_TIMEOUT_MS = 5000;

/** What every service's configuration gives the runner. */
export interface RunnerSettings {
  nats: NatsSettings;
  topology: TopologySettings;
  listen: ListenSettings;
  /** Longest a graceful stop may take before the process exits 1 anyway. */
  shutdownTimeoutMs: number;
}

/** What the service's start step gets: the connection and the provisioned topology, for internal/nats's factories. */
export interface StartContext {
  nc: NatsConnection;
  provisioned: Provisioned;
  /** True once a stop has begun: a start step that retries stops retrying, and one that finishes late does not announce itself. */
  stopping(): boolean;
}

export interface ServiceParts {
  /** The service's name in its start-failure lines ("ingest cannot start with this configuration ..."). */
  name: string;
  log: Logger;
  /** Built with the runner's readiness; never listening yet (the runner listens and closes it). */
  app: FastifyInstance;
  /** The line logged once the HTTP server listens ("ingest listening"), with host and port. */
  listening: string;
  /** Once connected to NATS: undefined when the service can do its work, else why not. */
  notReady(): string | undefined;
  /** Builds what needs NATS and starts the work; resolves once started (or given up because stopping). */
  start(context: StartContext): Promise<void>;
  /** The first stop step, before the HTTP server closes: stop taking work, let in-flight work finish. */
  beforeClose?(): Promise<void> | void;
  /** After the HTTP server has answered its last request. */
  afterClose?(): Promise<void> | void;
  /** Whether to drain NATS (deliver what is buffered) or close it at once; drains unless told otherwise. */
  drainNats?(): boolean;
}

/** Builds a service's parts; `readiness` is what its /readyz must answer. */
export type BuildService<C> = (config: C, readiness: Readiness) => ServiceParts | Promise<ServiceParts>;

export async function runService<C extends RunnerSettings>(config: C, build: BuildService<C>): Promise<void> {
  let stopping = false;
  /** Why the first NATS connection is not there yet (the servers, the error); undefined once it is. */
  let waitingForNats: string | undefined = "connecting to NATS";
  let nc: NatsConnection | undefined;
  const readiness: Readiness = () => (stopping ? "shutting down" : (waitingForNats ?? service.notReady()));
  const service = await build(config, readiness);
  const { log, app } = service;

  onShutdownSignal(log, config.shutdownTimeoutMs, async () => {
    stopping = true;
    await service.beforeClose?.();
    // Stops accepting connections, answers 503 to new requests on open ones, and resolves once every in-flight request is answered.
    await app.close();
    await service.afterClose?.();
    await closeNats(nc, log, { drain: service.drainNats?.() ?? true, timeoutMs: DRAIN_TIMEOUT_MS });
  });

  try {
    const { host, port } = config.listen;
    await app.listen({ host, port });
    log.info({ host, port }, service.listening);
    nc = await connectNats(config.nats, log, { onWaiting: (why) => (waitingForNats = why) });
    const provisioned = await provisionUntilStopped(nc, config.topology, log, () => stopping);
    if (provisioned !== undefined && !stopping) {
      await service.start({ nc, provisioned, stopping: () => stopping });
    }
  } catch (err) {
    if (!stopping) exitOnStartFailure(log, service.name, err);
  }
}
