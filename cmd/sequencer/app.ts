// The sequencer's ops server: /healthz, /readyz, /metrics, and a small
// /partitions view of what this instance owns. Never listens (main.ts does).

import fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { registerServiceRoutes, type Readiness } from "../../internal/http/service-routes.js";

export interface OpsDeps {
  registry: Registry;
  readiness: Readiness;
  /** This instance's id and owned partitions, for operators and tests. */
  ownership(): { instanceId: string; partitions: number[] };
}

export function buildApp(deps: OpsDeps): FastifyInstance {
  const app = fastify({ logger: false, return503OnClosing: true });
  registerServiceRoutes(app, deps.registry, deps.readiness);
  app.get("/partitions", async () => deps.ownership());
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type("application/problem+json")
      .send({ type: "about:blank", title: "Not found", status: 404, detail: `no route for ${request.method} ${request.url}` }),
  );
  return app;
}
