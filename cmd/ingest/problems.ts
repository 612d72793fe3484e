// Error answers as RFC 9457 problem documents (application/problem+json):
// a stable `type` per kind of problem, a human `title` and `detail`, and for
// invalid input every field at fault with the reason.

import type { FastifyReply } from "fastify";
import type { Problem as FieldProblem } from "../../internal/domain/message.js";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export const ProblemType = {
  invalidMessage: "urn:rockets:problem:invalid-message",
  invalidBatch: "urn:rockets:problem:invalid-batch",
  notJson: "urn:rockets:problem:not-json",
  bodyTooLarge: "urn:rockets:problem:body-too-large",
  unavailable: "urn:rockets:problem:unavailable",
  badRequest: "urn:rockets:problem:bad-request",
  notFound: "urn:rockets:problem:not-found",
  internal: "urn:rockets:problem:internal",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

export interface ProblemDocument {
  type: ProblemType;
  title: string;
  status: number;
  detail: string;
  errors?: FieldProblem[];
  [extension: string]: unknown;
}

export function problem(status: number, type: ProblemType, title: string, detail: string, extra?: Record<string, unknown>): ProblemDocument {
  return { type, title, status, detail, ...extra };
}

export function sendProblem(reply: FastifyReply, doc: ProblemDocument): FastifyReply {
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}

/** An error carrying the problem document to answer with; thrown by the body parser. */
export class ProblemError extends Error {
  override name = "ProblemError";
  readonly statusCode: number;
  constructor(readonly problem: ProblemDocument) {
    super(problem.detail);
    this.statusCode = problem.status;
  }
}
