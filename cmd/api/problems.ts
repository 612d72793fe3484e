// Error answers as RFC 9457 problem documents (application/problem+json): a
// stable `type` per kind of problem, a human `title` and `detail`, and for
// invalid input every parameter at fault with the reason.

import type { FastifyReply } from "fastify";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export const ProblemType = {
  invalidParameter: "urn:rockets:problem:invalid-parameter",
  notFound: "urn:rockets:problem:not-found",
  notReady: "urn:rockets:problem:not-ready",
  tooManyStreams: "urn:rockets:problem:too-many-streams",
  badRequest: "urn:rockets:problem:bad-request",
  internal: "urn:rockets:problem:internal",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

export interface ParameterProblem {
  /** The parameter at fault: a query parameter's name, or `channel` for the path. */
  path: string;
  reason: string;
}

export interface ProblemDocument {
  type: ProblemType;
  title: string;
  status: number;
  detail: string;
  errors?: ParameterProblem[];
}

export function sendProblem(reply: FastifyReply, doc: ProblemDocument): FastifyReply {
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}

export function invalidParameters(errors: ParameterProblem[]): ProblemDocument {
  return {
    type: ProblemType.invalidParameter,
    title: "Invalid parameter",
    status: 400,
    detail: errors.map((e) => `${e.path} ${e.reason}`).join("; "),
    errors,
  };
}
