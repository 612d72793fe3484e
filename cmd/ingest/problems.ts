// Ingest's kinds of problem; the document shape is shared by every service.

import type { ProblemDocument as SharedProblemDocument } from "../../internal/http/problem-document.js";

export { PROBLEM_CONTENT_TYPE, sendProblem } from "../../internal/http/problem-document.js";

export const ProblemType = {
  invalidMessage: "urn:rockets:problem:invalid-message",
  invalidBatch: "urn:rockets:problem:invalid-batch",
  conflict: "urn:rockets:problem:conflict",
  notJson: "urn:rockets:problem:not-json",
  bodyTooLarge: "urn:rockets:problem:body-too-large",
  unavailable: "urn:rockets:problem:unavailable",
  /** Over the per-client rate limit (429). */
  rateLimited: "urn:rockets:problem:rate-limited",
  badRequest: "urn:rockets:problem:bad-request",
  notFound: "urn:rockets:problem:not-found",
  internal: "urn:rockets:problem:internal",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

/** Ingest's problems may carry extension members (e.g. per-item batch results). */
export type ProblemDocument = SharedProblemDocument<ProblemType> & { [extension: string]: unknown };

export function problem(status: number, type: ProblemType, title: string, detail: string, extra?: Record<string, unknown>): ProblemDocument {
  return { type, title, status, detail, ...extra };
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
