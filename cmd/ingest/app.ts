// Builds the ingest HTTP app; never listens (main.ts does, tests inject).
// Posting needs a key with the `write` scope, scraping one with `metrics`
// (internal/http/api-auth.ts), unless AUTH=off.
// Its server keeps the timeouts, connection and in-flight limits every service
// keeps (internal/http/request-bounds.ts), and POST /messages is rate-limited
// per client by @fastify/rate-limit: 429 with Retry-After and a problem
// document, counted in rockets_http_refused_total{limit="rate"}.

import rateLimit from "@fastify/rate-limit";
import fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { MetricsSource } from "../../internal/observability/cluster-metrics.js";
import { registerApiAuth, withServiceRoutes } from "../../internal/http/api-auth.js";
import { Scope, type ApiKeys } from "../../internal/http/api-keys.js";
import { createRefusalCounter, DEFAULT_HTTP_BOUNDS, HttpLimit, registerRequestBounds, serverTimeoutOptions, type HttpBounds } from "../../internal/http/request-bounds.js";
import { methodNotAllowed, trackRouteMethods } from "../../internal/http/route-methods.js";
import { registerServiceIndex } from "../../internal/http/service-index.js";
import { registerServiceRoutes, type Readiness } from "../../internal/http/service-routes.js";
import type { MessagePublisher } from "../../internal/ingest/message-publisher.js";
import type { Logger } from "../../internal/observability/logger.js";
import { registerBodyParser } from "./body-parser.js";
import { MessageIntake } from "./message-intake.js";
import { registerMessagesRoute } from "./messages-route.js";
import { registerOpenApi } from "./openapi.js";
import type { UnlaunchedAdmission } from "./unlaunched-admission.js";
import type { ResendCheck } from "./resend-check.js";
import type { RateLimitSettings } from "./config.js";
import type { IngestMetrics } from "./metrics.js";
import { problem, ProblemError, ProblemType, sendProblem } from "../../internal/http/problem-document.js";
import { problemFrameworkErrors } from "../../internal/http/framework-errors.js";

export interface IngestLimits {
  bodyLimitBytes: number;
  batchBodyLimitBytes: number;
  maxBatch: number;
  retryAfterSeconds: number;
  /** The HTTP server's timeouts and limits; DEFAULT_HTTP_BOUNDS when not given. */
  http?: HttpBounds;
  /** Per-client rate limit on POST /messages; none when not given or `max` is 0. */
  rateLimit?: RateLimitSettings;
}

const RATE_LIMITED_ROUTE = "/messages";

export interface IngestDeps {
  publisher: MessagePublisher;
  readiness: Readiness;
  registry: Registry;
  /** What /metrics serves when not the registry itself (the aggregate of several workers). */
  exposition?: MetricsSource;
  metrics: IngestMetrics;
  log: Logger;
  limits: IngestLimits;
  /** The keys that may post (scope `write`) and scrape (`metrics`); undefined only with AUTH=off. */
  auth: ApiKeys | undefined;
  /** Recognises resends after the stream's duplicate window (answered duplicate/conflict, not accepted). */
  resends?: ResendCheck;
  /** Bounds the channels that have not launched this process takes messages for; none without it. */
  admission?: UnlaunchedAdmission;
}

/**
 * Posting needs `write`; the index, the API reference and the probes stay
 * open (they describe the service, they reveal no rocket).
 */
const INGEST_ACCESS = withServiceRoutes((route, method) => (route === RATE_LIMITED_ROUTE && method === "POST" ? Scope.write : undefined));

export function buildApp(deps: IngestDeps): FastifyInstance {
  const { log, limits } = deps;
  // Fastify's own logger stays off: a child logger per request costs on the
  // hot path, and the only lines worth writing (server errors) are logged below.
  const http = limits.http ?? DEFAULT_HTTP_BOUNDS;
  const app = fastify({
    logger: false,
    return503OnClosing: true,
    frameworkErrors: problemFrameworkErrors,
    bodyLimit: Math.max(limits.bodyLimitBytes, limits.batchBodyLimitBytes),
    ...serverTimeoutOptions(http),
  });
  const routes = trackRouteMethods(app);
  const refused = createRefusalCounter(deps.registry);
  registerRequestBounds(app, { bounds: http, refused, retryAfterSeconds: limits.retryAfterSeconds });
  if (deps.auth !== undefined) registerApiAuth(app, deps.auth, INGEST_ACCESS);
  if (limits.rateLimit !== undefined && limits.rateLimit.max > 0) registerRateLimit(app, limits.rateLimit, () => refused.inc({ limit: HttpLimit.rate }));

  // Once closing, every answer also closes its connection: a keep-alive
  // client whose request was in flight at shutdown would otherwise hold the
  // server open until its idle timeout.
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });

  registerOpenApi(app, limits);
  // The routes are added once the OpenAPI plugin has loaded, so that its document sees them.
  app.after((err) => {
    if (err) throw err;
    registerServiceRoutes(app, deps.registry, deps.readiness, deps.exposition);
    registerServiceIndex(app, {
      service: "ingest",
      title: "Rockets ingest: stores rocket messages in the events stream",
      links: {
        messages: { href: "/messages", method: "POST", title: `one message, or a JSON array of up to ${limits.maxBatch}; 202 once stored` },
        docs: { href: "/docs", title: "the API reference, interactive (OpenAPI document at /openapi.json)" },
      },
    });
    registerBodyParser(app, limits);
    registerMessagesRoute(app, {
      intake: new MessageIntake(deps.publisher, deps.metrics, log, deps.resends, deps.admission),
      maxBatch: limits.maxBatch,
      retryAfterSeconds: limits.retryAfterSeconds,
    });
  });

  app.setNotFoundHandler((request, reply) => {
    const wrongMethod = methodNotAllowed(routes, request);
    if (wrongMethod) return sendProblem(reply.header("allow", wrongMethod.allow), wrongMethod.problem);
    return sendProblem(reply, problem(404, ProblemType.notFound, "Not found", `no route for ${request.method} ${request.url}`));
  });

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof ProblemError) return sendProblem(reply, err.problem);
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 413) {
      const limit = Math.max(limits.bodyLimitBytes, limits.batchBodyLimitBytes);
      return sendProblem(
        reply,
        problem(413, ProblemType.bodyTooLarge, "Body too large", `the request body exceeds the limit of ${limit} bytes`, {
          limitBytes: limit,
        }),
      );
    }
    // Whatever else Fastify rejects before our handler (a bad Content-Length, ...) is the client's doing.
    if (status !== undefined && status >= 400 && status < 500) {
      return sendProblem(reply, problem(status, ProblemType.badRequest, "Bad request", (err as Error).message));
    }
    log.error({ err, method: request.method, url: request.url }, "request failed");
    return sendProblem(reply, problem(500, ProblemType.internal, "Internal error", "the request could not be handled"));
  });

  return app;
}

/**
 * Registered before any route, so that its onRoute hook sees them all; only
 * POST /messages is counted (probes, scrapes and the docs never are). The
 * window is fixed per client; Retry-After says when it resets.
 */
function registerRateLimit(app: FastifyInstance, settings: RateLimitSettings, onRefused: () => void): void {
  void app.register(rateLimit, {
    max: settings.max,
    timeWindow: settings.windowSeconds * 1000,
    allowList: (request) => request.routeOptions.url !== RATE_LIMITED_ROUTE,
    // Only the refusal carries the headers: counting headers on every answer would cost the hot path.
    addHeadersOnExceeding: { "x-ratelimit-limit": false, "x-ratelimit-remaining": false, "x-ratelimit-reset": false },
    addHeaders: { "x-ratelimit-limit": true, "x-ratelimit-remaining": true, "x-ratelimit-reset": true, "retry-after": true },
    onExceeded: onRefused,
    errorResponseBuilder: (_request, context) =>
      new ProblemError(
        problem(429, ProblemType.rateLimited, "Too many requests", `this client sent more than ${context.max} requests in ${settings.windowSeconds} s; retry after ${context.after}`, {
          limit: context.max,
          windowSeconds: settings.windowSeconds,
        }),
      ),
  });
}
