// Error answers as RFC 9457 problem documents (application/problem+json),
// the same shape and vocabulary from every service: a stable `type` URN per
// kind of problem (all of them listed here, once), a human `title` and
// `detail`, and for invalid input every field or parameter at fault with the
// reason. A document never quotes the input it refuses.

import type { FastifyReply } from "fastify";
import type { Problem } from "../domain/message.js";

/** Every kind of problem any service answers with. */
export const ProblemType = {
  // Every service
  badRequest: "urn:rockets:problem:bad-request",
  notFound: "urn:rockets:problem:not-found",
  methodNotAllowed: "urn:rockets:problem:method-not-allowed",
  /** HTTP_MAX_IN_FLIGHT requests at once (503). */
  busy: "urn:rockets:problem:busy",
  unauthorized: "urn:rockets:problem:unauthorized",
  forbidden: "urn:rockets:problem:forbidden",
  internal: "urn:rockets:problem:internal",
  // ingest
  invalidMessage: "urn:rockets:problem:invalid-message",
  invalidBatch: "urn:rockets:problem:invalid-batch",
  conflict: "urn:rockets:problem:conflict",
  notJson: "urn:rockets:problem:not-json",
  bodyTooLarge: "urn:rockets:problem:body-too-large",
  unavailable: "urn:rockets:problem:unavailable",
  /** Over the per-client rate limit (429). */
  rateLimited: "urn:rockets:problem:rate-limited",
  // API
  invalidParameter: "urn:rockets:problem:invalid-parameter",
  notReady: "urn:rockets:problem:not-ready",
  tooManyStreams: "urn:rockets:problem:too-many-streams",
  /** One client holds as many event streams as one client may (429). */
  tooManyStreamsFromClient: "urn:rockets:problem:too-many-streams-from-client",
  historyTruncated: "urn:rockets:problem:history-truncated",
  notReceived: "urn:rockets:problem:not-received",
  historyTooLong: "urn:rockets:problem:history-too-long",
  historyUnavailable: "urn:rockets:problem:history-unavailable",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** The field or parameter at fault (`metadata.channel`, `limit`, ...) and why: the domain's Problem, one shape everywhere. */
export type FieldProblem = Problem;

export interface ProblemDocument<Type extends string = ProblemType> {
  type: Type;
  title: string;
  status: number;
  detail: string;
  errors?: FieldProblem[];
}

export function sendProblem(reply: FastifyReply, doc: ProblemDocument): FastifyReply {
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}

/** A problem document; `extra` adds extension members (per-item batch results, missing numbers, ...). */
export function problem(status: number, type: ProblemType, title: string, detail: string, extra?: Record<string, unknown>): ProblemDocument & Record<string, unknown> {
  return { type, title, status, detail, ...extra };
}

/** An error carrying the problem document to answer with; thrown where no reply is at hand (a body parser). */
export class ProblemError extends Error {
  override name = "ProblemError";
  readonly statusCode: number;
  constructor(readonly problem: ProblemDocument & Record<string, unknown>) {
    super(problem.detail);
    this.statusCode = problem.status;
  }
}
