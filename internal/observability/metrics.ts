// One prom-client registry per process (never the global one), with Node's
// default metrics. Our metric names share the `rockets_` prefix, use base
// units (seconds, bytes) and never take a channel id as a label value: label
// values must stay bounded.

import { collectDefaultMetrics, Registry } from "prom-client";

export const METRIC_PREFIX = "rockets_";

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Buckets for operations that take from a fraction of a millisecond to seconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
