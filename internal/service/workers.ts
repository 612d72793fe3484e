// The primary of a service run as several worker processes (node:cluster)
// sharing one listening port, so that one instance can use more than one
// core. Each worker is the whole service (its own NATS connection and
// publisher); the primary only starts, watches and stops them.
//
// Guarantees:
// - SIGTERM or SIGINT: every worker gets SIGTERM and runs its own graceful
//   shutdown; the primary exits 0 once all exited 0, else 1, and exits 1
//   (after SIGKILLing what is left) if they take longer than `deadlineMs`.
// - A worker that dies after it has been up `minUptimeMs` is replaced, and
//   the exit is logged; the others keep serving meanwhile.
// - A worker that dies sooner (a port in use, a conflicting topology: what
//   restarting cannot fix) stops the whole service, as a single process
//   would, so the failure is seen rather than retried forever here: exit 1,
//   or ExitCode.Config when that is how the worker exited, so that whatever
//   supervises the primary knows not to restart it either.
// - Readiness is the service's, not one worker's: through WorkerStartBarrier
//   a worker says ready only once every worker has started, so a client that
//   waited for /readyz is never sent to a sibling still connecting.

import cluster, { type Worker } from "node:cluster";
import type { ListenSettings, LogLevel } from "../config/common.js";
import { serveClusterMetrics } from "../observability/cluster-metrics.js";
import { createLogger, type Logger } from "../observability/logger.js";
import { ExitCode } from "./exit-codes.js";
import { isIpcMessage } from "./ipc-message.js";

export interface WorkerPoolOptions {
  workers: number;
  log: Logger;
  /** Longest a stop may take before the remaining workers are killed. */
  deadlineMs: number;
  /** A worker dying sooner than this after its start is a start failure. */
  minUptimeMs?: number;
}

const DEFAULT_MIN_UPTIME_MS = 5000;
/** Time past the workers' own shutdown deadline for the last of them to exit. */
const WORKER_EXIT_MARGIN_MS = 2000;
const STARTED = "rockets:worker-started";
const ALL_STARTED = "rockets:all-workers-started";

/**
 * A worker's side of the start barrier. Outside a cluster it is open from
 * the start; in a worker it opens once the primary says every worker has
 * called started(), and stays open (a replacement worker joins an open one).
 */
export class WorkerStartBarrier {
  private open = !cluster.isWorker;

  constructor() {
    if (cluster.isWorker) {
      process.on("message", (message: unknown) => {
        if (isIpcMessage(message, ALL_STARTED)) this.open = true;
      });
    }
  }

  /** Tells the primary this worker has started (connected, topology in place). */
  started(): void {
    if (cluster.isWorker) process.send?.({ type: STARTED });
  }

  get allStarted(): boolean {
    return this.open;
  }
}

/**
 * A service's primary process when it runs as `config.workers` workers: it
 * answers the workers' /metrics aggregation and supervises them, each
 * stopping within the service's own SHUTDOWN_TIMEOUT_MS.
 */
export function superviseServiceWorkers(
  service: string,
  config: { workers: number; logLevel: LogLevel; listen: ListenSettings; shutdownTimeoutMs: number },
): void {
  const log = createLogger(service, config.logLevel).child({ role: "primary" });
  serveClusterMetrics();
  superviseWorkers({ workers: config.workers, log, deadlineMs: config.shutdownTimeoutMs + WORKER_EXIT_MARGIN_MS });
  log.info({ workers: config.workers, port: config.listen.port }, `${service} supervising workers`);
}

export function superviseWorkers(options: WorkerPoolOptions): void {
  const { log, deadlineMs, minUptimeMs = DEFAULT_MIN_UPTIME_MS } = options;
  const startedAt = new Map<Worker, number>();
  const hasStarted = new Set<Worker>();
  let everyoneStarted = false;
  let stopping = false;
  let failed = false;
  let exitCode: ExitCode = ExitCode.Ok;

  cluster.on("message", (worker, message: unknown) => {
    if (!isIpcMessage(message, STARTED)) return;
    hasStarted.add(worker);
    log.info({ worker: worker.id }, "worker started");
    if (everyoneStarted) {
      worker.send({ type: ALL_STARTED });
    } else if ([...startedAt.keys()].every((w) => hasStarted.has(w))) {
      everyoneStarted = true;
      for (const w of startedAt.keys()) w.send({ type: ALL_STARTED });
      log.info({ workers: startedAt.size }, "all workers started");
    }
  });

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, performance.now());
    log.info({ worker: worker.id, pid: worker.process.pid }, "worker forked");
  };

  const finishIfDone = () => {
    if (stopping && startedAt.size === 0) {
      log.info({ failed }, "all workers stopped");
      process.exit(failed && exitCode === ExitCode.Ok ? ExitCode.Failure : exitCode);
    }
  };

  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const worker of startedAt.keys()) worker.process.kill("SIGTERM");
    setTimeout(() => {
      log.error({ deadlineMs, left: startedAt.size }, "workers did not stop in time, killing them");
      for (const worker of startedAt.keys()) worker.process.kill("SIGKILL");
      process.exit(ExitCode.Failure);
    }, deadlineMs).unref();
    finishIfDone();
  };

  cluster.on("exit", (worker, code, signal) => {
    const uptimeMs = performance.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    hasStarted.delete(worker);
    if (stopping) {
      // Killed by the SIGTERM itself: the worker was still loading, before it could listen or take a message.
      if (code !== 0 && signal !== "SIGTERM") failed = true;
      finishIfDone();
      return;
    }
    if (uptimeMs < minUptimeMs) {
      log.fatal({ worker: worker.id, code, signal, uptimeMs: Math.round(uptimeMs) }, "worker failed during start, stopping");
      failed = true;
      if (code === ExitCode.Config) exitCode = ExitCode.Config;
      stop();
      return;
    }
    log.error({ worker: worker.id, code, signal }, "worker exited unexpectedly, starting a replacement");
    fork();
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (!stopping) log.info({ signal, workers: startedAt.size }, "stopping workers");
      stop();
    });
  }

  for (let i = 0; i < options.workers; i++) fork();
}
