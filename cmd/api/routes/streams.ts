// GET /rockets/stream and /rockets/:channel/stream: Server-Sent Events of
// rocket changes from the view (see sse.ts for how slow clients are bounded).

import type { FastifyInstance, FastifyReply } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
import type { ApiMetrics } from "../metrics.js";
import { SseDropReason } from "../metrics.js";
import { invalidParameters, ProblemType, sendProblem } from "../problems.js";
import { fleetStreamSchema, rocketStreamSchema, type ChannelParams } from "../schemas.js";
import type { SseHub } from "../sse.js";

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
  app.get("/rockets/stream", { schema: fleetStreamSchema, exposeHeadRoute: false }, (request, reply) => {
    if (refuseWhenFull(reply)) return reply;
    reply.hijack();
    hub.open(request.raw, reply.raw);
    return reply;
  });

  app.get<{ Params: ChannelParams }>("/rockets/:channel/stream", { schema: rocketStreamSchema, exposeHeadRoute: false }, (request, reply) => {
    const { channel } = request.params;
    const why = checkChannel(channel);
    if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
    if (refuseWhenFull(reply)) return reply;
    reply.hijack();
    hub.open(request.raw, reply.raw, channel);
    return reply;
  });
}
