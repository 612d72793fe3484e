// GET /rockets/stream and /rockets/:channel/stream: Server-Sent Events of
// rocket changes from the view (see sse.ts for resuming and for how slow
// clients are bounded). Streams are bounded in number, per instance (503)
// and per client IP address (429), and are the one answer that may last:
// the socket idle timeout is lifted once a stream opens (the request timeout
// only times receiving the request, long over by then).

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
import { liftIdleTimeout } from "../../../internal/http/request-bounds.js";
import type { ApiMetrics } from "../metrics.js";
import { SseDropReason } from "../metrics.js";
import { invalidParameters, ProblemType, sendProblem } from "../problems.js";
import { fleetStreamSchema, rocketStreamSchema, type ChannelParams, type StreamQuery } from "../schemas.js";
import type { SseHub, StreamStart } from "../sse.js";

/** Where a stream starts: the Last-Event-ID header wins over the query parameter (for clients that cannot set it). */
function startOf(request: FastifyRequest<{ Querystring: StreamQuery }>): StreamStart {
  const header = request.headers["last-event-id"];
  const lastEventId = (Array.isArray(header) ? header[0] : header)?.trim() || request.query.lastEventId;
  return { lastEventId, snapshot: request.query.snapshot };
}

/** The routes, for the in-flight limit to leave alone (streams are bounded here). */
export const STREAM_ROUTES = ["/rockets/stream", "/rockets/:channel/stream"] as const;

/** How long a client refused for holding too many streams is told to wait. */
const CLIENT_LIMIT_RETRY_AFTER_SECONDS = 5;

export function registerStreamRoutes(app: FastifyInstance, hub: SseHub, metrics: ApiMetrics): void {
  const refuseWhenFull = (request: FastifyRequest, reply: FastifyReply): boolean => {
    if (hub.full) {
      metrics.sseDropped.inc({ reason: SseDropReason.Limit });
      reply.header("retry-after", "5");
      sendProblem(reply, {
        type: ProblemType.tooManyStreams,
        title: "Too many streams",
        status: 503,
        detail: "this instance serves as many event streams as it is configured for; retry later or use another instance",
      });
      return true;
    }
    if (!hub.fullFor(request.ip)) return false;
    metrics.sseDropped.inc({ reason: SseDropReason.ClientLimit });
    reply.header("retry-after", String(CLIENT_LIMIT_RETRY_AFTER_SECONDS));
    sendProblem(reply, {
      type: ProblemType.tooManyStreamsFromClient,
      title: "Too many streams from this client",
      status: 429,
      detail: "this client already holds as many event streams as one client may on this instance; close one, or retry later",
    });
    return true;
  };

  // No automatic HEAD routes here: a HEAD would hold a stream open that can carry no events.
  app.get<{ Querystring: StreamQuery }>(STREAM_ROUTES[0], { schema: fleetStreamSchema, exposeHeadRoute: false }, (request, reply) => {
    if (refuseWhenFull(request, reply)) return reply;
    reply.hijack();
    liftIdleTimeout(request.raw.socket);
    hub.open(request.raw, reply.raw, undefined, startOf(request), request.ip);
    return reply;
  });

  app.get<{ Params: ChannelParams; Querystring: StreamQuery }>(
    STREAM_ROUTES[1],
    { schema: rocketStreamSchema, exposeHeadRoute: false },
    (request, reply) => {
      const { channel } = request.params;
      const why = checkChannel(channel);
      if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
      if (refuseWhenFull(request, reply)) return reply;
      reply.hijack();
      liftIdleTimeout(request.raw.socket);
      hub.open(request.raw, reply.raw, channel, startOf(request), request.ip);
      return reply;
    },
  );
}
