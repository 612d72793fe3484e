// GET /rockets, /rockets/summary and /rockets/:channel, answered from the
// in-memory view alone: no request ever reaches NATS.
//
// Routing: find-my-way matches static segments before parameters, so
// /rockets/summary and /rockets/stream are never taken for a channel named
// "summary" or "stream" (such a channel can still be listed, not fetched alone).

import type { FastifyInstance, FastifyReply } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
import type { FleetView, ListQuery as ViewQuery } from "../../../internal/view/fleet-view.js";
import { decodeCursor, encodeCursor, InvalidCursorError } from "../../../internal/view/cursor.js";
import { invalidParameters, sendProblem, ProblemType, type ParameterProblem } from "../problems.js";
import {
  getRocketSchema,
  listRocketsSchema,
  summarySchema,
  type ChannelParams,
  type ListQuery,
} from "../schemas.js";
import type { SortKey } from "../../../internal/view/sort-keys.js";

const DEFAULT_LIMIT = 100;
const SORT_ALIASES = ["sort", "sortBy", "sort_by"] as const;

export type ParsedListQuery = { ok: true; query: ViewQuery } | { ok: false; errors: ParameterProblem[] };

/**
 * Turns schema-valid query parameters into a view query, with the checks a
 * schema cannot express: one sort key however it is spelled, a `-` prefix
 * that agrees with `order`, and a cursor made for this same query.
 */
export function parseListQuery(q: ListQuery): ParsedListQuery {
  const errors: ParameterProblem[] = [];
  let sortParam: string | undefined;
  let sortName: string | undefined;
  for (const name of SORT_ALIASES) {
    const value = q[name];
    if (value === undefined) continue;
    if (sortParam !== undefined && value !== sortParam) {
      errors.push({ path: name, reason: `conflicts with ${sortName}=${sortParam}; give the sort key once` });
      continue;
    }
    sortParam = value;
    sortName = name;
  }
  const prefixed = sortParam?.startsWith("-") ?? false;
  const sort = (prefixed ? sortParam!.slice(1) : (sortParam ?? "channel")) as SortKey;
  if (prefixed && q.order === "asc") {
    errors.push({ path: "order", reason: `asc conflicts with the descending sort ${sortName}=${sortParam}` });
  }
  const descending = prefixed || q.order === "desc";
  const filter = { status: q.status, type: q.type, mission: q.mission };
  const query: ViewQuery = { sort, descending, filter, limit: q.limit ?? DEFAULT_LIMIT };
  if (q.cursor !== undefined && errors.length === 0) {
    try {
      query.after = decodeCursor(q.cursor, query);
    } catch (err) {
      if (!(err instanceof InvalidCursorError)) throw err;
      errors.push({ path: "cursor", reason: err.message });
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, query };
}

/** Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for GET). */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === "*") return true;
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim();
    return (t.startsWith("W/") ? t.slice(2) : t) === etag;
  });
}

export function registerRocketRoutes(app: FastifyInstance, view: FleetView): void {
  // Until the first sync pass is over, an absent rocket may just not be loaded yet: say so instead of 404.
  const requireLoadedView = (_request: unknown, reply: FastifyReply, done: () => void) => {
    if (view.ready) return done();
    reply.header("retry-after", "1");
    sendProblem(reply, {
      type: ProblemType.notReady,
      title: "View loading",
      status: 503,
      detail: "this instance is still loading rocket states; retry shortly",
    });
  };

  app.get<{ Querystring: ListQuery }>(
    "/rockets",
    { schema: listRocketsSchema, preHandler: requireLoadedView },
    (request, reply) => {
      const parsed = parseListQuery(request.query);
      if (!parsed.ok) return sendProblem(reply, invalidParameters(parsed.errors));
      const page = view.list(parsed.query);
      return {
        rockets: page.rockets,
        total: page.total,
        nextCursor: page.next ? encodeCursor(parsed.query, page.next) : null,
      };
    },
  );

  app.get("/rockets/summary", { schema: summarySchema, preHandler: requireLoadedView }, () => view.summary());

  app.get<{ Params: ChannelParams }>(
    "/rockets/:channel",
    { schema: getRocketSchema, preHandler: requireLoadedView },
    (request, reply) => {
      const { channel } = request.params;
      const why = checkChannel(channel);
      if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
      const entry = view.get(channel);
      if (!entry) {
        return sendProblem(reply, {
          type: ProblemType.notFound,
          title: "Rocket not found",
          status: 404,
          detail: `no rocket with channel ${JSON.stringify(channel)} has launched`,
        });
      }
      // The KV revision identifies the rocket's state across every API instance.
      const etag = `"${entry.revision}"`;
      reply.header("etag", etag).header("cache-control", "no-cache");
      if (matchesEtag(request.headers["if-none-match"], etag)) return reply.code(304).send();
      return entry.rocket;
    },
  );
}
