// GET /rockets, /rockets/summary and /rockets/:channel, answered from the
// in-memory view alone: no request reaches NATS, except a rocket asked for
// at a point of its history (?at= / ?asOf=, see history.ts).
//
// Routing: find-my-way matches static segments before parameters, so
// /rockets/summary and /rockets/stream are never taken for a channel; no
// channel can be named "summary" or "stream" (internal/domain/channel.ts:
// ingest refuses them, and a stored state under either is unreadable).

import type { FieldProblem } from "../../../internal/http/problem-document.js";
import type { FastifyInstance } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
import type { FleetView, ListQuery as ViewQuery } from "../../../internal/view/fleet-view.js";
import { decodeCursor, encodeCursor } from "../../../internal/view/cursor.js";
import { invalidParameters, notLoaded, sendProblem, ProblemType } from "../problems.js";
import { JSON_CONTENT_TYPE, RocketJson } from "../rocket-json.js";
import {
  getRocketSchema,
  listRocketsSchema,
  summarySchema,
  type ChannelParams,
  type ListQuery,
  type PointInTimeQuery,
} from "../schemas.js";
import type { HistoryRoutes } from "./history.js";
import type { SortKey } from "../../../internal/view/sort-keys.js";

const DEFAULT_LIMIT = 100;
const SORT_ALIASES = ["sort", "sortBy", "sort_by"] as const;

export type ParsedListQuery = { ok: true; query: ViewQuery } | { ok: false; errors: FieldProblem[] };

/**
 * Turns schema-valid query parameters into a view query, with the checks a
 * schema cannot express: one sort key however it is spelled, a `-` prefix
 * that agrees with `order`, and a cursor made for this same query.
 */
export function parseListQuery(q: ListQuery): ParsedListQuery {
  const errors: FieldProblem[] = [];
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
    const decoded = decodeCursor(q.cursor, query);
    if (decoded.ok) query.after = decoded.after;
    else errors.push({ path: "cursor", reason: decoded.reason });
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

export function registerRocketRoutes(app: FastifyInstance, view: FleetView, history: HistoryRoutes): void {
  // Rocket bodies come from the cache (each serialized once by the Rocket
  // schema); the list's envelope around them is the RocketList schema's shape.
  const json = new RocketJson();

  app.get<{ Querystring: ListQuery }>(
    "/rockets",
    { schema: listRocketsSchema },
    (request, reply) => {
      if (!view.ready) return notLoaded(reply);
      const parsed = parseListQuery(request.query);
      if (!parsed.ok) return sendProblem(reply, invalidParameters(parsed.errors));
      const page = view.list(parsed.query);
      const nextCursor = page.next ? JSON.stringify(encodeCursor(parsed.query, page.next)) : "null";
      const rockets = page.rockets.map((r) => json.of(r, reply)).join(",");
      return reply.type(JSON_CONTENT_TYPE).send(`{"rockets":[${rockets}],"total":${page.total},"nextCursor":${nextCursor}}`);
    },
  );

  app.get("/rockets/summary", { schema: summarySchema }, (_request, reply) => (view.ready ? view.summary() : notLoaded(reply)));

  app.get<{ Params: ChannelParams; Querystring: PointInTimeQuery }>(
    "/rockets/:channel",
    { schema: getRocketSchema },
    (request, reply) => {
      if (!view.ready) return notLoaded(reply);
      const { channel } = request.params;
      const why = checkChannel(channel);
      if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
      const { at, asOf } = request.query;
      if (at !== undefined || asOf !== undefined) return history.pointInTime(reply, channel, request.query);
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
      const ifNoneMatch = request.headers["if-none-match"];
      if (ifNoneMatch !== undefined && matchesEtag(ifNoneMatch, etag)) {
        return reply.code(304).headers({ etag, "cache-control": "no-cache" }).send();
      }
      return reply.headers({ etag, "cache-control": "no-cache", "content-type": JSON_CONTENT_TYPE }).send(json.of(entry.rocket, reply));
    },
  );
}
