// The sequencer's ops server: /healthz, /readyz, /metrics, /partitions: what
// this instance owns, and the whole cluster's ownership as it sees it (every
// partition's lease holder, the live members, and what is assigned here but
// not yet acquired), and / listing them. Errors are problem documents like
// every service's (404; 405 with Allow for a known path asked with another
// method). Its HTTP server keeps the timeouts and limits every service
// keeps (internal/http/request-bounds.ts). /metrics and /partitions need a
// key with the `metrics` scope unless AUTH=off. Never listens (main.ts does).

import fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { registerApiAuth, withServiceRoutes } from "../../internal/http/api-auth.js";
import { Scope, type ApiKeys } from "../../internal/http/api-keys.js";
import { ProblemType, sendProblem } from "../../internal/http/problem-document.js";
import { createRefusalCounter, DEFAULT_HTTP_BOUNDS, registerRequestBounds, serverTimeoutOptions, type HttpBounds } from "../../internal/http/request-bounds.js";
import { methodNotAllowed, trackRouteMethods } from "../../internal/http/route-methods.js";
import { registerServiceIndex } from "../../internal/http/service-index.js";
import { registerServiceRoutes, type Readiness } from "../../internal/http/service-routes.js";
import type { ClusterOwnership } from "../../internal/sequencer/ownership.js";
import { problemFrameworkErrors } from "../../internal/http/framework-errors.js";

/** `partitions`: the ones this instance owns; the rest once it has joined. */
export type OwnershipView = { instanceId: string; partitions: number[] } & Partial<Omit<ClusterOwnership, "instanceId" | "owned">>;

export interface OpsDeps {
  registry: Registry;
  readiness: Readiness;
  /** This instance's id and owned partitions, and the cluster's ownership, for operators and tests. */
  ownership(): OwnershipView;
  /** Timeouts and limits of the ops server; DEFAULT_HTTP_BOUNDS when not given. */
  http?: HttpBounds;
  /** The keys that may read the ops routes (scope `metrics`); undefined only with AUTH=off. */
  auth: ApiKeys | undefined;
}

/** The ops routes are for operators and Prometheus: `metrics`. Only the probes and the index stay open. */
const OPS_ACCESS = withServiceRoutes((route) => (route === "/" ? undefined : Scope.metrics));

export function buildApp(deps: OpsDeps): FastifyInstance {
  const http = deps.http ?? DEFAULT_HTTP_BOUNDS;
  const app = fastify({ logger: false, return503OnClosing: true, frameworkErrors: problemFrameworkErrors, ...serverTimeoutOptions(http) });
  const routes = trackRouteMethods(app);
  registerRequestBounds(app, { bounds: http, refused: createRefusalCounter(deps.registry), retryAfterSeconds: 1 });
  if (deps.auth !== undefined) registerApiAuth(app, deps.auth, OPS_ACCESS);
  registerServiceRoutes(app, deps.registry, deps.readiness);
  app.get("/partitions", async () => deps.ownership());
  registerServiceIndex(app, {
    service: "sequencer",
    title: "Rockets sequencer: applies each rocket's messages in order to its state (operations endpoints only)",
    links: { partitions: { href: "/partitions", title: "the partitions this instance owns, and the cluster's ownership as it sees it" } },
  });
  app.setNotFoundHandler((request, reply) => {
    const wrongMethod = methodNotAllowed(routes, request);
    if (wrongMethod) return sendProblem(reply.header("allow", wrongMethod.allow), wrongMethod.problem);
    return sendProblem(reply, { type: ProblemType.notFound, title: "Not found", status: 404, detail: `no route for ${request.method} ${request.url}` });
  });
  return app;
}
