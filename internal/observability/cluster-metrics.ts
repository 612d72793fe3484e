// Metrics of a service that runs as several worker processes (node:cluster)
// behind one port: a scrape lands on whichever worker the connection went
// to, and that worker answers with the figures of all workers together.
//
// How: the worker asks the primary over the cluster's IPC channel; the
// primary collects every worker's registry with prom-client's
// AggregatorRegistry (counters and histograms summed, gauges by their
// `aggregator` setting) and sends the text back. A scrape therefore never
// shows one worker's share as if it were the service's.

import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import { isIpcMessage } from "../service/ipc-message.js";

/** What a /metrics route serves: a registry of its own, or the aggregate of a cluster. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

const REQUEST = "rockets:metrics-request";
const RESPONSE = "rockets:metrics-response";
const DEFAULT_TIMEOUT_MS = 5000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}

interface MetricsResponse {
  type: typeof RESPONSE;
  id: number;
  body?: string;
  error?: string;
}

/** In the primary: answers workers' requests with every worker's metrics aggregated. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, message: unknown) => {
    if (!isIpcMessage<MetricsRequest>(message, REQUEST)) return;
    const reply = (answer: Omit<MetricsResponse, "type" | "id">) => {
      if (worker.isConnected()) worker.send({ type: RESPONSE, id: message.id, ...answer });
    };
    aggregator.clusterMetrics().then(
      (body) => reply({ body }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/**
 * In a worker: offers `registry` to the primary's collection, and returns the
 * source a /metrics route serves, which asks the primary for the aggregate.
 */
export function clusterMetricsSource(registry: Registry, timeoutMs = DEFAULT_TIMEOUT_MS): MetricsSource {
  if (!cluster.isWorker || process.send === undefined) throw new Error("clusterMetricsSource needs a cluster worker");
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs the listener that hands this worker's metrics to the primary
  const pending = new Map<number, { resolve: (body: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on("message", (message: unknown) => {
    if (!isIpcMessage<MetricsResponse>(message, RESPONSE)) return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.body !== undefined) waiting.resolve(message.body);
    else waiting.reject(new Error(`metrics aggregation failed: ${message.error ?? "no answer"}`));
  });
  return {
    contentType: registry.contentType,
    metrics: () =>
      new Promise<string>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error("metrics aggregation timed out"));
        }, timeoutMs);
        timer.unref();
        pending.set(id, { resolve, reject, timer });
        process.send!({ type: REQUEST, id } satisfies MetricsRequest);
      }),
  };
}
