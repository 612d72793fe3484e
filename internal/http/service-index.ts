// GET / on a service without a page of its own: what the service is and
// where its endpoints are, as JSON, so that someone who opens the bare URL
// learns where to go instead of meeting a 404. The endpoints every service
// has (health, readiness, metrics) are listed for each.

import type { FastifyInstance } from "fastify";

export interface ServiceLink {
  href: string;
  /** Omitted for GET. */
  method?: string;
  title: string;
}

export interface ServiceIndex {
  service: string;
  title: string;
  links: Record<string, ServiceLink>;
}

export function registerServiceIndex(app: FastifyInstance, index: ServiceIndex): void {
  const body: ServiceIndex = {
    ...index,
    links: {
      ...index.links,
      health: { href: "/healthz", title: "liveness: 200 while the process runs" },
      ready: { href: "/readyz", title: "readiness: 200 when it can do its work, else 503 with the reason" },
      metrics: { href: "/metrics", title: "Prometheus metrics" },
    },
  };
  // Not part of a service's OpenAPI document: it is the way to that document, not an operation.
  app.get("/", { schema: { hide: true } }, async () => body);
}
