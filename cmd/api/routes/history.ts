// GET /rockets/:channel/events and the point-in-time answers of
// GET /rockets/:channel?at=<n> / ?asOf=<time>: the only API answers that
// read NATS (the events stream, through the ChannelHistorySource port)
// instead of the in-memory view.
//
// Every answer folds the channel's whole stored history with the domain's
// own sequencing (internal/domain/history.ts), so what a page says a message
// did is what the sequencer made of it, and a state at a point is never
// computed without a message it depends on: when the stream no longer holds
// one (retention), the answer says which numbers are missing instead.
// The view only supplies how far the rocket has applied (to tell a lost
// message from one not received yet).

import type { FieldProblem } from "../../../internal/http/problem-document.js";
import type { FastifyInstance, FastifyReply } from "fastify";
import { checkChannel } from "../../../internal/domain/channel.js";
import {
  foldHistory,
  HistoryTooLongError,
  stateAsOf,
  stateAtMessage,
  utcInstant,
  type ChannelHistorySource,
  type FoldedHistory,
  type HistoryEntry,
  type NumberRange,
  type PointInTime,
  type StoredHistory,
} from "../../../internal/domain/history.js";
import { isRfc3339 } from "../../../internal/domain/message.js";
import type { SkippedRange } from "../../../internal/domain/sequencing.js";
import type { Logger } from "../../../internal/observability/logger.js";
import type { FleetView } from "../../../internal/view/fleet-view.js";
import { rocketViewOf } from "../../../internal/view/rocket-view.js";
import { invalidParameters, notLoaded, ProblemType, sendProblem, type ProblemDocument } from "../problems.js";
import { rocketHistorySchema, type ChannelParams, type HistoryQuery, type PointInTimeQuery } from "../schemas.js";

const DEFAULT_LIMIT = 1000;
/** Ranges listed in an answer; a rocket far behind a sparse gap could otherwise list thousands. */
const MAX_RANGES = 100;

type Order = "stream" | "messageNumber";

interface HistoryCursor {
  v: 1;
  o: Order;
  /** Stream sequence of the last event returned. */
  s: number;
  /** Its message number. */
  n: number;
}

export function encodeHistoryCursor(order: Order, last: HistoryEntry): string {
  const doc: HistoryCursor = { v: 1, o: order, s: last.seq, n: last.message.metadata.messageNumber };
  return Buffer.from(JSON.stringify(doc), "utf8").toString("base64url");
}

/** The point a cursor continues after; a string saying why when it is not a cursor for this order. */
export function decodeHistoryCursor(cursor: string, order: Order): HistoryCursor | string {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return "is not a cursor returned by this API";
  let doc: Partial<HistoryCursor>;
  try {
    doc = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<HistoryCursor>;
  } catch {
    return "is not a cursor returned by this API";
  }
  if (typeof doc !== "object" || doc === null || doc.v !== 1 || !Number.isSafeInteger(doc.s) || !Number.isSafeInteger(doc.n)) {
    return "is not a cursor returned by this API";
  }
  if (doc.o !== order) return `was made for order=${String(doc.o)}; repeat the query that returned it`;
  return doc as HistoryCursor;
}

/** Entries in the page's order: stream order as folded, or by number with copies in stream order. */
function ordered(entries: readonly HistoryEntry[], order: Order): readonly HistoryEntry[] {
  if (order === "stream") return entries;
  return [...entries].sort((a, b) => a.message.metadata.messageNumber - b.message.metadata.messageNumber || a.seq - b.seq);
}

function isAfter(e: HistoryEntry, cursor: HistoryCursor, order: Order): boolean {
  if (order === "stream") return e.seq > cursor.s;
  const n = e.message.metadata.messageNumber;
  return n > cursor.n || (n === cursor.n && e.seq > cursor.s);
}

const bounded = (ranges: NumberRange[]) => ranges.slice(0, MAX_RANGES);

type Read = { ok: true; stored: StoredHistory; folded: FoldedHistory; skipped: SkippedRange[] } | { ok: false; problem: ProblemDocument; retryAfter?: string };

export class HistoryRoutes {
  constructor(
    private readonly view: FleetView,
    private readonly source: ChannelHistorySource,
    private readonly log: Logger,
  ) {}

  register(app: FastifyInstance): void {
    app.get<{ Params: ChannelParams; Querystring: HistoryQuery }>(
      "/rockets/:channel/events",
      { schema: rocketHistorySchema },
      async (request, reply) => {
        if (!this.view.ready) return notLoaded(reply);
        const { channel } = request.params;
        const why = checkChannel(channel);
        if (why !== undefined) return sendProblem(reply, invalidParameters([{ path: "channel", reason: why }]));
        const order: Order = request.query.order ?? "stream";
        let cursor: HistoryCursor | undefined;
        if (request.query.cursor !== undefined) {
          const decoded = decodeHistoryCursor(request.query.cursor, order);
          if (typeof decoded === "string") return sendProblem(reply, invalidParameters([{ path: "cursor", reason: decoded }]));
          cursor = decoded;
        }
        const read = await this.read(channel);
        if (!read.ok) return this.refuse(reply, read);
        const { stored, folded } = read;
        const entry = this.view.get(channel);
        if (stored.messages.length === 0 && stored.rejected === 0 && !entry) {
          return sendProblem(reply, {
            type: ProblemType.notFound,
            title: "Rocket not found",
            status: 404,
            detail: `the events stream holds no message for channel ${JSON.stringify(channel)} and no such rocket is known`,
            heldSince: stored.heldSince,
          });
        }
        const all = ordered(folded.entries, order);
        const limit = request.query.limit ?? DEFAULT_LIMIT;
        const from = cursor === undefined ? 0 : all.findIndex((e) => isAfter(e, cursor, order));
        const page = from < 0 ? [] : all.slice(from, from + limit);
        const more = from >= 0 && from + limit < all.length;
        const lastApplied = folded.complete ? folded.state.lastApplied : (entry?.rocket.lastMessageNumber ?? 0);
        return {
          channel,
          complete: folded.complete,
          missing: bounded(folded.missing),
          heldSince: stored.heldSince,
          lastApplied,
          waitingFor: bounded(folded.waitingFor),
          pendingMessages: folded.complete ? folded.state.pending.length : (entry?.rocket.pendingMessages ?? 0),
          rejected: stored.rejected,
          total: all.length,
          events: page.map((e) => ({
            seq: e.seq,
            receivedAt: e.receivedAt,
            messageNumber: e.message.metadata.messageNumber,
            messageTime: e.message.metadata.messageTime,
            messageType: e.message.metadata.messageType,
            message: e.message.message,
            outcome: e.outcome,
            speedAfter: e.speedAfter,
          })),
          nextCursor: more ? encodeHistoryCursor(order, page[page.length - 1]!) : null,
        };
      },
    );
  }

  /** Answers GET /rockets/:channel?at=|asOf= for a valid channel (the caller checked it and the view's readiness). */
  async pointInTime(reply: FastifyReply, channel: string, query: PointInTimeQuery): Promise<FastifyReply> {
    const errors: FieldProblem[] = [];
    if (query.at !== undefined && query.asOf !== undefined) errors.push({ path: "asOf", reason: "conflicts with at; give one of them" });
    let asOf: string | undefined;
    if (query.asOf !== undefined) {
      asOf = isRfc3339(query.asOf) ? utcInstant(query.asOf) : undefined;
      if (asOf === undefined) errors.push({ path: "asOf", reason: "must be an RFC 3339 date-time, e.g. 2026-11-24T09:30:00Z" });
    }
    if (errors.length > 0) return sendProblem(reply, invalidParameters(errors));
    const read = await this.read(channel);
    if (!read.ok) return this.refuse(reply, read);
    const { folded, stored } = read;
    const point: PointInTime = query.at !== undefined ? stateAtMessage(folded, query.at, read.skipped) : stateAsOf(folded, asOf!, read.skipped);
    const when = query.at !== undefined ? `message ${query.at}` : `${query.asOf!}`;
    if (!point.ok) {
      const list = point.missing.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(", ");
      if (point.reason === "truncated") {
        return sendProblem(reply, {
          type: ProblemType.historyTruncated,
          title: "History no longer held",
          status: 410,
          detail: `the events stream no longer holds message(s) ${list} of this rocket (retention), and the state as of ${when} depends on them`,
          missing: bounded(point.missing),
          heldSince: stored.heldSince,
        });
      }
      return sendProblem(reply, {
        type: ProblemType.notReceived,
        title: "Message not received",
        status: 404,
        detail: `message(s) ${list} of this rocket have not been received, so it never reached ${when}`,
        missing: bounded(point.missing),
      });
    }
    const rocket = rocketViewOf(channel, point.state);
    if (rocket === null) {
      return sendProblem(reply, {
        type: ProblemType.notFound,
        title: "Rocket not found",
        status: 404,
        detail: `no rocket with channel ${JSON.stringify(channel)} had launched as of ${when}`,
      });
    }
    return reply.header("cache-control", "no-cache").send(rocket);
  }

  private async read(channel: string): Promise<Read> {
    let stored: StoredHistory;
    try {
      stored = await this.source.read(channel);
    } catch (err) {
      if (err instanceof HistoryTooLongError) {
        return {
          ok: false,
          problem: {
            type: ProblemType.historyTooLong,
            title: "History too long",
            status: 422,
            detail: `${err.message}; raise HISTORY_MAX_MESSAGES to read it`,
          },
        };
      }
      this.log.warn({ err, channel }, "reading a rocket's history from the events stream failed");
      return {
        ok: false,
        retryAfter: "1",
        problem: {
          type: ProblemType.historyUnavailable,
          title: "History unavailable",
          status: 503,
          detail: "the events stream cannot be read right now; retry shortly",
        },
      };
    }
    const live = this.view.get(channel)?.rocket;
    const appliedThrough = live?.lastMessageNumber ?? 0;
    return { ok: true, stored, folded: foldHistory(stored.messages, appliedThrough, live?.skipped ?? []), skipped: live?.skipped ?? [] };
  }

  private refuse(reply: FastifyReply, read: Extract<Read, { ok: false }>): FastifyReply {
    if (read.retryAfter !== undefined) reply.header("retry-after", read.retryAfter);
    return sendProblem(reply, read.problem);
  }
}
