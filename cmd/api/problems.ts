// The API's kinds of problem; the document shape is shared by every service.

import type { FieldProblem, ProblemDocument as SharedProblemDocument } from "../../internal/http/problem-document.js";

export { PROBLEM_CONTENT_TYPE, sendProblem } from "../../internal/http/problem-document.js";

export const ProblemType = {
  invalidParameter: "urn:rockets:problem:invalid-parameter",
  notFound: "urn:rockets:problem:not-found",
  notReady: "urn:rockets:problem:not-ready",
  tooManyStreams: "urn:rockets:problem:too-many-streams",
  badRequest: "urn:rockets:problem:bad-request",
  internal: "urn:rockets:problem:internal",
} as const;
export type ProblemType = (typeof ProblemType)[keyof typeof ProblemType];

/** The parameter at fault: a query parameter's name, or `channel` for the path. */
export type ParameterProblem = FieldProblem;

export type ProblemDocument = SharedProblemDocument<ProblemType>;

export function invalidParameters(errors: ParameterProblem[]): ProblemDocument {
  return {
    type: ProblemType.invalidParameter,
    title: "Invalid parameter",
    status: 400,
    detail: errors.map((e) => `${e.path} ${e.reason}`).join("; "),
    errors,
  };
}
