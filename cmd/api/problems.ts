// The API's problem documents: invalid parameters, a view still loading, and
// history answers that name the numbers they lack. The vocabulary and the
// shape are every service's (internal/http/problem-document.ts).

import type { FastifyReply } from "fastify";
import type { NumberRange } from "../../internal/domain/history.js";
import { ProblemType, sendProblem as sendSharedProblem } from "../../internal/http/problem-document.js";
import type { FieldProblem, ProblemDocument as SharedProblemDocument } from "../../internal/http/problem-document.js";

export { PROBLEM_CONTENT_TYPE, ProblemType } from "../../internal/http/problem-document.js";


/** History problems also say which message numbers the answer lacks and where retention's edge is. */
export type ProblemDocument = SharedProblemDocument<ProblemType> & { missing?: NumberRange[]; heldSince?: string | null };

export function invalidParameters(errors: FieldProblem[]): ProblemDocument {
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
