// What a service answers for a request its router cannot even take apart (a
// path with a malformed percent escape such as `/rockets/%`): fastify's own
// answer is a plain JSON body; every service answers a 400 problem document
// instead, like every other refusal. The document does not quote the path.

import type { FastifyServerOptions } from "fastify";
import { ProblemType, sendProblem } from "./problem-document.js";

export const problemFrameworkErrors: FastifyServerOptions["frameworkErrors"] = (error, _request, reply) => {
  const badUrl = error.code === "FST_ERR_BAD_URL";
  void sendProblem(reply, {
    type: ProblemType.badRequest,
    title: "Bad request",
    status: 400,
    detail: badUrl ? "the request path is not a valid URL path (a malformed percent escape)" : "the request cannot be routed",
  });
};
