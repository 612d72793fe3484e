// The bounds every service's HTTP server keeps, set deliberately rather than
// left at Node's defaults (no request timeout at all, stalled uploads held
// forever, unlimited connections and requests):
//
// - Timeouts. A request's headers must arrive within headersTimeoutMs and the
//   whole request (headers and body) within requestTimeoutMs, else Node answers
//   408 and closes the connection; connections are checked every second at
//   most, so a stalled body is cut within about a second of its deadline. A
//   socket on which nothing moves for idleTimeoutMs is closed; an idle
//   keep-alive connection after keepAliveTimeoutMs. Only receiving the request
//   is timed: a long answer (an event stream) is never cut by these, and the
//   idle timeout is lifted on a stream by the route that hijacks it.
// - Connections. Past maxConnections Node closes new connections at once,
//   which bounds descriptors and memory however many clients stall.
// - Requests in flight. Past maxInFlight a request is answered 503 with
//   Retry-After before its body is read, so that what is buffered stays
//   bounded at about maxInFlight times the body limit; /healthz, /readyz and
//   /metrics (and event streams, bounded on their own) are never refused, so
//   probes and scrapes keep answering under load.
// Every refusal and cut is counted in rockets_http_refused_total{limit}.

import type { ServerOptions } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { Counter, type Registry } from "prom-client";
import { METRIC_PREFIX } from "../observability/metrics.js";
import { PROBLEM_CONTENT_TYPE, ProblemType } from "./problem-document.js";

export interface HttpTimeouts {
  /** Longest wait for a request's headers. */
  headersTimeoutMs: number;
  /** Longest wait for a whole request: headers and body. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests. */
  keepAliveTimeoutMs: number;
  /** A socket on which nothing is read or written this long is closed. */
  idleTimeoutMs: number;
}

export interface HttpBounds extends HttpTimeouts {
  /** Most open connections; more are closed as soon as they are accepted. */
  maxConnections: number;
  /** Most requests being handled at once; more are answered 503. */
  maxInFlight: number;
}

/**
 * A request's headers within 10 s and the whole request within 15 s (the
 * operators' program gives up after about 10 s anyway), 30 s of silence on a
 * socket, 5 s of keep-alive; 8192 connections (under the 20,000 descriptors
 * of the reference machine, room left for NATS and files) and 256 requests in
 * flight (with ingest's 1 MiB batch limit, at most about 256 MiB of bodies
 * buffered).
 */
export const DEFAULT_HTTP_BOUNDS: HttpBounds = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5000,
  idleTimeoutMs: 30_000,
  maxConnections: 8192,
  maxInFlight: 256,
};

/** What each refusal or cut is counted as. */
export const HttpLimit = {
  inFlight: "in_flight",
  connections: "connections",
  rate: "rate",
  requestTimeout: "request_timeout",
  idleTimeout: "idle_timeout",
} as const;
export type HttpLimit = (typeof HttpLimit)[keyof typeof HttpLimit];

/** Routes answered whatever the load: probes and scrapes. */
export const ALWAYS_ANSWERED = ["/healthz", "/readyz", "/metrics"] as const;

/** Node checks connections for expired headers or requests at this interval (its default is 30 s). */
const MAX_CHECK_INTERVAL_MS = 1000;

/** The options a service passes to fastify() for these timeouts. */
export function serverTimeoutOptions(t: HttpTimeouts): { requestTimeout: number; keepAliveTimeout: number; connectionTimeout: number; http: ServerOptions } {
  return {
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionTimeout: t.idleTimeoutMs,
    http: {
      headersTimeout: t.headersTimeoutMs,
      requestTimeout: t.requestTimeoutMs,
      keepAliveTimeout: t.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL_MS, t.headersTimeoutMs),
    },
  };
}

export function createRefusalCounter(registry: Registry): Counter<"limit"> {
  const counter = new Counter({
    name: `${METRIC_PREFIX}http_refused_total`,
    help: "Requests or connections refused or cut by a bound: in_flight (503), rate (429), connections (closed on accept), request_timeout (408: headers or body too slow), idle_timeout (nothing moved on the socket)",
    labelNames: ["limit"],
    registers: [registry],
  });
  // Every series exists from the start, so rate() and alerts see a 0 rather than nothing.
  for (const limit of Object.values(HttpLimit)) counter.labels(limit).inc(0);
  return counter;
}

export interface RequestBoundsOptions {
  bounds: HttpBounds;
  refused: Counter<"limit">;
  retryAfterSeconds: number;
  /** Route templates besides ALWAYS_ANSWERED that the in-flight limit leaves alone (event streams, bounded on their own). */
  exempt?: readonly string[];
}

/**
 * Applies the connection and in-flight limits to `app` and counts what the
 * timeouts (set through serverTimeoutOptions) cut.
 */
export function registerRequestBounds(app: FastifyInstance, options: RequestBoundsOptions): void {
  const { bounds, refused, retryAfterSeconds } = options;
  const server = app.server;
  server.maxConnections = bounds.maxConnections;
  server.on("drop", () => refused.inc({ limit: HttpLimit.connections }));
  server.on("clientError", (err: NodeJS.ErrnoException) => {
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") refused.inc({ limit: HttpLimit.requestTimeout });
  });
  // With a listener here Node leaves the idle socket to us: it is counted, then closed as before.
  server.on("timeout", (socket: Socket) => {
    refused.inc({ limit: HttpLimit.idleTimeout });
    socket.destroy();
  });

  const exempt = new Set<string>([...ALWAYS_ANSWERED, ...(options.exempt ?? [])]);
  const body = (limit: number) =>
    JSON.stringify({
      type: ProblemType.busy,
      title: "Too many requests in flight",
      status: 503,
      detail: `this instance is handling ${limit} requests at once, its limit; retry after ${retryAfterSeconds} s`,
    });
  let inFlight = 0;
  app.addHook("onRequest", (request, reply, done) => {
    if (exempt.has(request.routeOptions.url ?? "")) return done();
    if (inFlight >= bounds.maxInFlight) {
      refused.inc({ limit: HttpLimit.inFlight });
      // The body is not read: close the connection rather than leave it to be drained.
      void reply.code(503).header("retry-after", String(retryAfterSeconds)).header("connection", "close").type(PROBLEM_CONTENT_TYPE).send(body(bounds.maxInFlight));
      return;
    }
    inFlight += 1;
    // 'close' comes once however the exchange ends: answered, timed out, or the client gone.
    reply.raw.once("close", () => (inFlight -= 1));
    done();
  });
}

/** For a route that streams its answer indefinitely (Server-Sent Events): the socket idle timeout no longer applies. */
export function liftIdleTimeout(socket: Socket | null | undefined): void {
  socket?.setTimeout(0);
}
