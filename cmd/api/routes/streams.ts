// GET /rockets/stream and /rockets/:channel/stream: Server-Sent Events of
// rocket changes from the view (see sse.ts for resuming and for how slow
// clients are bounded).

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
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

export function registerStreamRoutes(app: FastifyInstance, hub: SseHub, metrics: ApiMetrics): void {
  const refuseWhenFull = (reply: FastifyReply): boolean => {
    if (!hub.full) return false;
    metrics.sseDropped.inc({ reason: SseDropReason.Limit });
    reply.header("retry-after", "5");
    sendProblem(reply, {
      type: ProblemType.tooManyStreams,
      title: "Too many streams",
      status: 503,
      detail: "this instance serves as many event streams as it is configured for; retry later or use another instance",
    });
    return true;
  };

  // No automatic HEAD routes here: a HEAD would hold a stream open that can carry no events.
  app.get<{ Querystring: StreamQuery }>("/rockets/stream", { schema: fleetStreamSchema, exposeHeadRoute: false }, (request, reply) => {
    if (refuseWhenFull(reply)) return reply;
    reply.hijack();
    hub.open(request.raw, reply.raw, undefined, startOf(request));
    return reply;
  });

  app.get<{ Params: ChannelParams; Querystring: StreamQuery }>(
    "/rockets/:channel/stream",
    { schema: rocketStreamSchema, exposeHeadRoute: false },
    (request, reply) => {
      const { channel } = request.params;
      const why = checkChannel(channel);
      if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
      if (refuseWhenFull(reply)) return reply;
      reply.hijack();
      hub.open(request.raw, reply.raw, channel, startOf(request));
      return reply;
    },
  );
}
