// Authentication and scope checks for every service's HTTP routes, one hook
// used by ingest, the query API and the sequencer's ops server alike.
//
// Guarantees:
// - Every matched route needs the scope its service's rule gives it; only
//   what a rule names as open (probes, the console's static files, the API
//   reference) is answered without a key. The rule sees the route template,
//   never the raw URL, so no spelling of a path slips past it.
// - Checked on request, before the body is read or parsed: a client without
//   the right key costs a header parse, never a body.
// - No key, or one the keys file does not list: 401 with WWW-Authenticate
//   offering Bearer and Basic. A listed key without the scope: 403. Both are
//   problem documents, and neither ever contains the presented key.
// - `/metrics` (and the sequencer's ops routes) need the `metrics` scope
//   rather than a port of their own: one port per service keeps the probes,
//   Services and network rules as they are, and a scrape is authenticated
//   wherever the network boundary happens to be, while Prometheus holds a
//   key that can neither read rockets nor write them (docs/security.md).
// - With AUTH=off no hook is installed at all (the caller passes no keys).

import type { FastifyInstance, FastifyRequest } from "fastify";
import { presentedKey, Scope, type ApiKeys } from "./api-keys.js";
import { ProblemType, sendProblem } from "./problem-document.js";

export const WWW_AUTHENTICATE = 'Bearer realm="rockets", Basic realm="rockets"';

/** The scope a route needs, or undefined for a route anyone may call. */
export type RouteAccess = (route: string, method: string) => Scope | undefined;

/**
 * The rule for the routes every service has (internal/http/service-routes.ts)
 * around a service's own: liveness and readiness stay open for probes,
 * /metrics needs `metrics`, everything else is `own`'s to say.
 */
export function withServiceRoutes(own: RouteAccess): RouteAccess {
  return (route, method) => {
    if (route === "/healthz" || route === "/readyz") return undefined;
    if (route === "/metrics") return Scope.metrics;
    return own(route, method);
  };
}

/**
 * Requires keys on `app`'s routes by `access`. Register it before the
 * routes' own onRequest work (rate limits count only authenticated posts).
 */
export function registerApiAuth(app: FastifyInstance, keys: ApiKeys, access: RouteAccess): void {
  app.addHook("onRequest", (request, reply, done) => {
    const route = request.routeOptions.url;
    // Unmatched URLs reach the 404/405 handler, which reveals only that no such route exists.
    const scope = route === undefined ? undefined : access(route, request.method);
    if (scope === undefined) return done();
    const key = presentedKey(authorizationOf(request));
    const principal = key === undefined ? undefined : keys.identify(key);
    if (principal === undefined) {
      reply.header("www-authenticate", WWW_AUTHENTICATE);
      sendProblem(reply, {
        type: ProblemType.unauthorized,
        title: "Unauthorized",
        status: 401,
        detail:
          key === undefined
            ? `this route needs a key with the "${scope}" scope: send Authorization: Bearer <key>, or Basic auth with the key as the password`
            : "the key presented is not one this service knows",
      });
      return;
    }
    if (!principal.scopes.has(scope)) {
      sendProblem(reply, {
        type: ProblemType.forbidden,
        title: "Forbidden",
        status: 403,
        detail: `the key "${principal.name}" does not have the "${scope}" scope this route needs`,
      });
      return;
    }
    done();
  });
}

function authorizationOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return Array.isArray(header) ? header[0] : header;
}
