// Error answers as RFC 9457 problem documents (application/problem+json),
// the same shape from every service: a stable `type` URN per kind of
// problem, a human `title` and `detail`, and for invalid input every field or
// parameter at fault with the reason. Each service names its own types.

import type { FastifyReply } from "fastify";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface FieldProblem {
  /** The field or parameter at fault (`metadata.channel`, `limit`, ...). */
  path: string;
  reason: string;
}

export interface ProblemDocument<Type extends string = string> {
  type: Type;
  title: string;
  status: number;
  detail: string;
  errors?: FieldProblem[];
}

export function sendProblem(reply: FastifyReply, doc: ProblemDocument): FastifyReply {
  return reply.code(doc.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(doc));
}
