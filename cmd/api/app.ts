// Builds the query API's fastify app over a fleet view. It never listens
// (main.ts does) and never talks to NATS itself: current state comes from the
// view, which the KV watch keeps current; history comes through the
// ChannelHistorySource port (the events stream in production). Its data
// routes need a key with the `read` scope unless AUTH=off; the console's
// static files and the API reference stay open (internal/http/api-auth.ts).

import type { FieldProblem } from "../../internal/http/problem-document.js";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import type { Registry } from "prom-client";
import { registerApiAuth, withServiceRoutes } from "../../internal/http/api-auth.js";
import { Scope, type ApiKeys } from "../../internal/http/api-keys.js";
import { createRefusalCounter, DEFAULT_HTTP_BOUNDS, registerRequestBounds, serverTimeoutOptions, type HttpBounds } from "../../internal/http/request-bounds.js";
import { methodNotAllowed, trackRouteMethods } from "../../internal/http/route-methods.js";
import { registerServiceRoutes, type Readiness } from "../../internal/http/service-routes.js";
import type { ChannelHistorySource } from "../../internal/domain/history.js";
import type { Logger } from "../../internal/observability/logger.js";
import type { FleetView } from "../../internal/view/fleet-view.js";
import type { SseSettings } from "./config.js";
import type { ApiMetrics } from "./metrics.js";
import { invalidParameters, ProblemType, sendProblem } from "./problems.js";
import { registerConsoleRoutes, type ConsoleAsset } from "./console-assets.js";
import { HistoryRoutes } from "./routes/history.js";
import { registerRocketRoutes } from "./routes/rockets.js";
import { registerStreamRoutes, STREAM_ROUTES } from "./routes/streams.js";
import { SHARED_SCHEMAS, UNADVERTISED_PARAMETERS } from "./schemas.js";
import { SseHub } from "./sse.js";
import { registerApiReference } from "../../internal/http/api-reference.js";
import { problemFrameworkErrors } from "../../internal/http/framework-errors.js";

export interface AppDeps {
  view: FleetView;
  /** Where rocket histories are read; without one, history answers are 503. */
  history?: ChannelHistorySource;
  /** The built operator console served at `/`; without it `/` says how to build it. */
  console?: Map<string, ConsoleAsset>;
  registry: Registry;
  metrics: ApiMetrics;
  log: Logger;
  sse: SseSettings;
  /** The HTTP server's timeouts and limits (event streams count only against the SSE limits); DEFAULT_HTTP_BOUNDS when not given. */
  http?: HttpBounds;
  /** Undefined when ready; else why not (the view is loading, the process is stopping). */
  ready: Readiness;
  /** The keys that may read (scope `read`) and scrape (`metrics`); undefined only with AUTH=off. */
  auth: ApiKeys | undefined;
}

/**
 * What anyone may fetch: the console's page and static files (so that its
 * login form can load; they hold no data) and the API reference. Every other
 * route, rockets, histories, summaries and event streams, needs `read`.
 */
const OPEN_ROUTES = new Set(["/", "/assets/:file", "/openapi.json", "/docs"]);
const API_ACCESS = withServiceRoutes((route) => (OPEN_ROUTES.has(route) || route.startsWith("/docs/") ? undefined : Scope.read));

const NO_HISTORY: ChannelHistorySource = {
  read: () => Promise.reject(new Error("this instance reads no events stream")),
};

/** Channel ids are at most 128 characters; percent-encoding can triple that. */
const MAX_PARAM_LENGTH = 1024;

type AjvError = { instancePath: string; message?: string; params: Record<string, unknown> };

/** Names the parameter each schema violation is about, e.g. `limit` or an unknown `sorty`. */
export function parameterProblems(errors: AjvError[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const e of errors) {
    const unknown = e.params["additionalProperty"];
    if (typeof unknown === "string") {
      out.push({ path: unknown, reason: "is not a parameter of this endpoint" });
      continue;
    }
    const path = e.instancePath.replace(/^\//, "").replaceAll("/", ".") || "(request)";
    const allowed = e.params["allowedValues"];
    const reason = Array.isArray(allowed) ? `must be one of ${allowed.join(", ")}` : (e.message ?? "is invalid");
    if (!out.some((p) => p.path === path)) out.push({ path, reason });
  }
  return out;
}

type OpenApiDocument = { paths?: Record<string, Record<string, { parameters?: { name: string }[] } | undefined> | undefined> };

/** The document without the parameters that are accepted but not advertised (aliases). */
function withoutUnadvertised<T extends object>(doc: T): T {
  const paths = (doc as OpenApiDocument).paths;
  for (const [path, names] of Object.entries(UNADVERTISED_PARAMETERS)) {
    for (const operation of Object.values(paths?.[path] ?? {})) {
      if (operation?.parameters) operation.parameters = operation.parameters.filter((p) => !names.includes(p.name));
    }
  }
  return doc;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const http = deps.http ?? DEFAULT_HTTP_BOUNDS;
  const app = Fastify({
    ...serverTimeoutOptions(http),
    // Requests are counted and timed by route in /metrics; fastify's per-request
    // child logger and log lines would cost more than the answers. Failures are logged below.
    logger: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: problemFrameworkErrors,
    ajv: {
      // Report every bad parameter at once, and refuse unknown ones rather than silently drop them.
      customOptions: { allErrors: true, removeAdditional: false, coerceTypes: "array", useDefaults: true },
    },
  });
  const routes = trackRouteMethods(app);
  registerRequestBounds(app, { bounds: http, refused: createRefusalCounter(deps.registry), retryAfterSeconds: 1, exempt: STREAM_ROUTES });
  if (deps.auth !== undefined) registerApiAuth(app, deps.auth, API_ACCESS);

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Rockets query API",
        description: "The fleet's current state, read from a live view of the sequencer's KV bucket.",
        version: "1",
      },
      tags: [
        { name: "rockets", description: "Rocket state" },
        { name: "history", description: "What the events stream holds for a rocket" },
        { name: "streams", description: "Server-Sent Events" },
        { name: "service", description: "Health, readiness and metrics" },
        { name: "console", description: "The operator console (a web page)" },
      ],
    },
    transformObject: (doc) => withoutUnadvertised("openapiObject" in doc ? doc.openapiObject : doc.swaggerObject),
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
  });
  await registerApiReference(app);

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      return sendProblem(reply, invalidParameters(parameterProblems(err.validation as AjvError[])));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendProblem(reply, { type: ProblemType.badRequest, title: "Bad request", status, detail: err.message });
    }
    deps.log.error({ err, route: request.routeOptions.url }, "request failed");
    return sendProblem(reply, { type: ProblemType.internal, title: "Internal error", status: 500, detail: "the request failed; see the server log" });
  });
  app.setNotFoundHandler((request, reply) => {
    const wrongMethod = methodNotAllowed(routes, request);
    if (wrongMethod) return sendProblem(reply.header("allow", wrongMethod.allow), { ...wrongMethod.problem, type: ProblemType.methodNotAllowed });
    return sendProblem(reply, {
      type: ProblemType.notFound,
      title: "Not found",
      status: 404,
      detail: `no route for ${request.method} ${request.url.split("?")[0]}`,
    });
  });

  registerServiceRoutes(app, deps.registry, deps.ready);
  registerConsoleRoutes(app, deps.console);
  const history = new HistoryRoutes(deps.view, deps.history ?? NO_HISTORY, deps.log);
  registerRocketRoutes(app, deps.view, history);
  history.register(app);
  const hub = new SseHub(deps.view, deps.sse, deps.metrics);
  registerStreamRoutes(app, hub, deps.metrics);
  // Event streams never end by themselves: close them first, so closing the server can finish in-flight requests.
  app.addHook("preClose", (done) => {
    hub.close();
    done();
  });
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
  return app;
}
