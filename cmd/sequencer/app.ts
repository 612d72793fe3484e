// The sequencer's ops server: /healthz, /readyz, /metrics, and /partitions:
// what this instance owns, and the whole cluster's ownership as it sees it
// (every partition's lease holder, the live members, and what is assigned
// here but not yet acquired). Never listens (main.ts does).

import fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { registerServiceRoutes, type Readiness } from "../../internal/http/service-routes.js";
import type { ClusterOwnership } from "../../internal/sequencer/ownership.js";

/** `partitions`: the ones this instance owns; the rest once it has joined. */
export type OwnershipView = { instanceId: string; partitions: number[] } & Partial<Omit<ClusterOwnership, "instanceId" | "owned">>;

export interface OpsDeps {
  registry: Registry;
  readiness: Readiness;
  /** This instance's id and owned partitions, and the cluster's ownership, for operators and tests. */
  ownership(): OwnershipView;
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
