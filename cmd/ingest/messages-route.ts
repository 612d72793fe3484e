// POST /messages: one message (a JSON object) or a batch (a JSON array).
//
// One message: 202 {"status":"accepted"|"duplicate","seq":N} once the stream
// acked it (duplicate: the very same message was stored before); 400
// problem+json listing every invalid field; 409 problem+json when another
// message is stored under its channel and number (naming what is stored:
// its messageType and messageTime, and seq); 503 + Retry-After when it could
// not be stored (never a 2xx for a message not stored).
//
// A batch: 1..MAX_BATCH items, every valid item published at once, one
// result per item in order: {index, status, seq | errors | stored | detail}.
// - 202 when every valid item is stored (invalid and conflicting items are
//   listed and were not stored; fixing them is up to the client);
// - 400 when no item is stored and some item is invalid, 409 when every
//   item conflicts;
// - 503 + Retry-After when some valid item could not be stored; resending the
//   whole batch is safe, stored items come back as duplicates.
// Non-2xx batch answers are problem documents carrying the same per-item results.

import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyReply } from "fastify";
import { ignoreContentType } from "./body-parser.js";
import type { BatchIntakeResult, MessageIntake } from "./message-intake.js";
import { PROBLEM_CONTENT_TYPE, problem, ProblemType, sendProblem } from "../../internal/http/problem-document.js";

export interface MessagesRouteOptions {
  intake: MessageIntake;
  maxBatch: number;
  retryAfterSeconds: number;
}

const Ack = Type.Object({
  status: Type.Union([Type.Literal("accepted"), Type.Literal("duplicate")]),
  seq: Type.Integer({ description: "the stream sequence the message is stored at" }),
});

export function registerMessagesRoute(app: FastifyInstance, options: MessagesRouteOptions): void {
  const { intake, maxBatch } = options;
  const retryAfter = String(options.retryAfterSeconds);

  const sendBatch = (reply: FastifyReply, batch: BatchIntakeResult): FastifyReply => {
    const stored = batch.accepted + batch.duplicate;
    if (batch.unavailable > 0) {
      const detail = `${batch.unavailable} of ${batch.results.length} messages could not be stored; resend them (resending stored ones is harmless)`;
      return reply
        .header("retry-after", retryAfter)
        .code(503)
        .type(PROBLEM_CONTENT_TYPE)
        .send(JSON.stringify(problem(503, ProblemType.unavailable, "Messages not stored", detail, { ...batch })));
    }
    if (stored === 0 && batch.invalid === 0) {
      const detail = `each of the ${batch.results.length} messages conflicts with another message stored under its number`;
      return reply
        .code(409)
        .type(PROBLEM_CONTENT_TYPE)
        .send(JSON.stringify(problem(409, ProblemType.conflict, "Messages conflict with stored ones", detail, { ...batch })));
    }
    if (stored === 0) {
      const detail =
        batch.conflict === 0
          ? `none of the ${batch.results.length} messages is valid`
          : `none of the ${batch.results.length} messages was stored: ${batch.invalid} invalid, ${batch.conflict} in conflict with stored ones`;
      return reply
        .code(400)
        .type(PROBLEM_CONTENT_TYPE)
        .send(JSON.stringify(problem(400, ProblemType.invalidMessage, "Invalid messages", detail, { ...batch })));
    }
    return reply.code(202).type("application/json").send(JSON.stringify(batch));
  };

  app.post(
    "/messages",
    { onRequest: ignoreContentType, schema: { response: { 202: Ack } } },
    async (request, reply) => {
      const body = request.body;
      if (body === undefined) {
        return sendProblem(reply, problem(400, ProblemType.notJson, "Body is not JSON", "the request body is empty"));
      }
      if (Array.isArray(body)) {
        if (body.length === 0 || body.length > maxBatch) {
          const detail = `a batch holds 1 to ${maxBatch} messages, got ${body.length}`;
          return sendProblem(reply, problem(400, ProblemType.invalidBatch, "Invalid batch", detail));
        }
        return sendBatch(reply, await intake.batch(body));
      }
      const result = await intake.one(body);
      switch (result.status) {
        case "accepted":
        case "duplicate":
          return reply.code(202).send({ status: result.status, seq: result.seq });
        case "conflict":
          return sendProblem(
            reply,
            problem(
              409,
              ProblemType.conflict,
              "Message number already stored",
              "another message is stored under this channel and message number; a stored message is never replaced",
              { seq: result.seq, stored: result.stored },
            ),
          );
        case "invalid":
          return sendProblem(
            reply,
            problem(400, ProblemType.invalidMessage, "Invalid message", "the message does not match the schema", {
              errors: result.errors,
            }),
          );
        case "unavailable":
          reply.header("retry-after", retryAfter);
          return sendProblem(reply, problem(503, ProblemType.unavailable, "Message not stored", result.detail));
      }
    },
  );
}
