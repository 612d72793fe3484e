// The routes and hooks every service exposes the same way: liveness,
// readiness, Prometheus metrics, and request counting by route template
// (never by raw URL, whose values are unbounded).

import type { FastifyInstance } from "fastify";
import { Counter, Histogram, type Registry } from "prom-client";
import type { MetricsSource } from "../observability/cluster-metrics.js";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../observability/metrics.js";

const Status = (description: string) => ({
  description,
  content: {
    "application/json": {
      schema: { type: "object", properties: { status: { type: "string" }, reason: { type: "string" } }, required: ["status"] },
    },
  },
});

/** How the OpenAPI document (where a service publishes one) describes these routes. */
const SERVICE_SCHEMAS = {
  healthz: {
    summary: "Liveness: the process answers",
    tags: ["service"],
    response: { 200: Status("The process is alive: {status: ok}") },
  },
  readyz: {
    summary: "Readiness: the service can do its work",
    tags: ["service"],
    response: {
      200: Status("Ready to serve: {status: ready}"),
      503: Status("Not ready (starting, loading, NATS unreachable or shutting down): {status: not ready, reason}"),
    },
  },
  metrics: {
    summary: "Prometheus metrics",
    tags: ["service"],
    response: {
      200: {
        description: "The Prometheus text exposition of this service's metrics (every worker's, for a multi-process ingest)",
        content: { "text/plain": { schema: { type: "string" } } },
      },
    },
  },
};

export interface Readiness {
  /** Returns undefined when ready, else why not (shown in the 503 body). */
  (): string | undefined;
}

/**
 * `registry` takes this process's metrics; `exposition` is what /metrics
 * serves: the registry itself, or the aggregate of a service's workers.
 */
export function registerServiceRoutes(app: FastifyInstance, registry: Registry, ready: Readiness, exposition: MetricsSource = registry): void {
  const requests = new Counter({
    name: `${METRIC_PREFIX}http_requests_total`,
    help: "HTTP requests answered, by method, route template and status code",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: "HTTP request latency by method and route template",
    labelNames: ["method", "route"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  // Each label combination's series, looked up once: prom-client hashes the label object on every
  // call, a measured ~10 us per request on the ingest path. As bounded as the series themselves
  // (Node accepts only known methods; routes are templates; status codes are few).
  const series = new Map<string, { count: Counter.Internal; time: Histogram.Internal<"method" | "route"> }>();
  app.addHook("onResponse", (request, reply, done) => {
    // Unmatched URLs share one label value so that scanners cannot grow the series count.
    const route = request.routeOptions.url ?? "unmatched";
    const key = `${request.method} ${route} ${reply.statusCode}`;
    let s = series.get(key);
    if (s === undefined) {
      s = {
        count: requests.labels({ method: request.method, route, status: String(reply.statusCode) }),
        time: duration.labels({ method: request.method, route }),
      };
      series.set(key, s);
    }
    s.count.inc();
    s.time.observe(reply.elapsedTime / 1000);
    done();
  });

  app.get("/healthz", { schema: SERVICE_SCHEMAS.healthz }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: SERVICE_SCHEMAS.readyz }, async (_request, reply) => {
    const why = ready();
    if (why !== undefined) return reply.code(503).send({ status: "not ready", reason: why });
    return { status: "ready" };
  });
  app.get("/metrics", { schema: SERVICE_SCHEMAS.metrics }, async (_request, reply) => {
    const body = await exposition.metrics();
    return reply.type(exposition.contentType).send(body);
  });
}
