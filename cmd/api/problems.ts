// The API's kinds of problem; the document shape is shared by every service.

import type { FastifyReply } from "fastify";
import type { NumberRange } from "../../internal/domain/history.js";
import { sendProblem as sendSharedProblem } from "../../internal/http/problem-document.js";
import type { FieldProblem, ProblemDocument as SharedProblemDocument } from "../../internal/http/problem-document.js";

export { PROBLEM_CONTENT_TYPE } from "../../internal/http/problem-document.js";

export const ProblemType = {
  invalidParameter: "urn:rockets:problem:invalid-parameter",
  notFound: "urn:rockets:problem:not-found",
  notReady: "urn:rockets:problem:not-ready",
  tooManyStreams: "urn:rockets:problem:too-many-streams",
  /** One client holds as many event streams as one client may (429). */
  tooManyStreamsFromClient: "urn:rockets:problem:too-many-streams-from-client",
  historyTruncated: "urn:rockets:problem:history-truncated",
  notReceived: "urn:rockets:problem:not-received",
  historyTooLong: "urn:rockets:problem:history-too-long",
  historyUnavailable: "urn:rockets:problem:history-unavailable",
  badRequest: "urn:rockets:problem:bad-request",
  /** A known path asked with a method it does not take (internal/http/route-methods.ts). */
  methodNotAllowed: "urn:rockets:problem:method-not-allowed",
  internal: "urn:rockets:problem:internal",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

/** The parameter at fault: a query parameter's name, or `channel` for the path. */
export type ParameterProblem = FieldProblem;

/** History problems also say which message numbers the answer lacks and where retention's edge is. */
export type ProblemDocument = SharedProblemDocument<ProblemType> & { missing?: NumberRange[]; heldSince?: string | null };

export function invalidParameters(errors: ParameterProblem[]): ProblemDocument {
  return {
    type: ProblemType.invalidParameter,
    title: "Invalid parameter",
    status: 400,
    detail: errors.map((e) => `${e.path} ${e.reason}`).join("; "),
    errors,
  };
}

/**
 * Until the first sync pass is over, an absent rocket may just not be loaded
 * yet: say so instead of 404. (Checked in each handler rather than in a hook:
 * a hook costs every request more than the check.)
 */
export function notLoaded(reply: FastifyReply): FastifyReply {
  return sendProblem(reply.header("retry-after", "1"), {
    type: ProblemType.notReady,
    title: "View loading",
    status: 503,
    detail: "this instance is still loading rocket states; retry shortly",
  });
}

export function sendProblem(reply: FastifyReply, doc: ProblemDocument): FastifyReply {
  return sendSharedProblem(reply, doc);
}
