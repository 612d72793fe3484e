// Ingest's OpenAPI document (/openapi.json) and interactive docs (/docs).
//
// POST /messages is documented with a schema of its own, swapped in for the
// document only: the route itself keeps its small runtime schema (the body is
// validated by the domain, whatever the Content-Type, and a schema on the hot
// path would cost every request). Nothing here runs per request.

import swagger from "@fastify/swagger";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifySchema } from "fastify";
import { MAX_CHANNEL_LENGTH } from "../../internal/domain/channel.js";
import { MAX_SPEED, MAX_TEXT_LENGTH, MessageType } from "../../internal/domain/message.js";
import { ProblemType } from "../../internal/http/problem-document.js";
import { registerApiReference } from "../../internal/http/api-reference.js";

export interface DocumentedLimits {
  bodyLimitBytes: number;
  batchBodyLimitBytes: number;
  maxBatch: number;
}

const LAUNCHED = {
  metadata: {
    channel: "193270a9-c9cf-404a-8f83-838e71d9ae67",
    messageNumber: 1,
    messageTime: "2022-02-02T19:39:05.86337+01:00",
    messageType: "RocketLaunched",
  },
  message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
};
const SPEED_UP = {
  metadata: { ...LAUNCHED.metadata, messageNumber: 2, messageTime: "2022-02-02T19:39:06.1+01:00", messageType: "RocketSpeedIncreased" },
  message: { by: 3000 },
};

const Message = Type.Object(
  {
    metadata: Type.Object({
      channel: Type.String({ maxLength: MAX_CHANNEL_LENGTH, description: "The rocket's id: one NATS subject token (no '.', '*', '>', whitespace), without control or format (bidi, zero-width) characters or unpaired surrogates" }),
      messageNumber: Type.Integer({ minimum: 1, description: "Order within the channel, from 1; number 1 is RocketLaunched and only it" }),
      messageTime: Type.String({ description: "RFC 3339, up to nanoseconds, naming a real date and time (year 0001 on); kept verbatim" }),
      messageType: Type.Unsafe<string>({ type: "string", enum: Object.values(MessageType) }),
    }),
    message: Type.Object(
      {},
      {
        additionalProperties: true,
        description:
          "By messageType: RocketLaunched {type, launchSpeed, mission}; RocketSpeedIncreased / RocketSpeedDecreased {by}; " +
          "RocketExploded {reason}; RocketMissionChanged {newMission}. Unknown fields are dropped. " +
          `launchSpeed and by are integers from 0 to ${MAX_SPEED}; text is 1 to ${MAX_TEXT_LENGTH} characters ` +
          "without control or format (bidi, zero-width) characters or unpaired surrogates.",
      },
    ),
  },
  { description: "One rocket message" },
);

const Ack = Type.Object(
  {
    status: Type.Unsafe<string>({ type: "string", enum: ["accepted", "duplicate"], description: "duplicate: the stream already held this very message" }),
    seq: Type.Integer({ description: "The stream sequence the message is stored at" }),
  },
  { description: "One message stored" },
);

const StoredSummary = Type.Object(
  { messageType: Type.String(), messageTime: Type.String() },
  { description: "conflict: what is stored under the same channel and number (never replaced)" },
);

const ItemResult = Type.Object({
  index: Type.Integer({ description: "Position in the batch" }),
  status: Type.Unsafe<string>({ type: "string", enum: ["accepted", "duplicate", "conflict", "invalid", "unavailable"] }),
  seq: Type.Optional(Type.Integer({ description: "accepted, duplicate: where it is stored; conflict: where the other message is" })),
  stored: Type.Optional(StoredSummary),
  errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }), { description: "invalid: every problem" })),
  detail: Type.Optional(Type.String({ description: "unavailable: why it was not stored" })),
});

const BatchCounts = {
  accepted: Type.Integer(),
  duplicate: Type.Integer(),
  conflict: Type.Integer(),
  invalid: Type.Integer(),
  unavailable: Type.Integer(),
  results: Type.Array(ItemResult, { description: "One per item, in order" }),
};

const BatchResult = Type.Object(BatchCounts, { description: "A batch: what became of each item" });

const Problem = Type.Object(
  {
    type: Type.String({ description: "What kind of problem, e.g. urn:rockets:problem:invalid-message" }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }), { description: "Every invalid field" })),
    limitBytes: Type.Optional(Type.Integer({ description: "413: the body limit" })),
    seq: Type.Optional(Type.Integer({ description: "409: where the stored message is" })),
    stored: Type.Optional(StoredSummary),
    ...Object.fromEntries(Object.entries(BatchCounts).map(([k, v]) => [k, Type.Optional(v)])),
  },
  { description: "An RFC 9457 problem document; batch problems carry the per-item results too" },
);

/** Named OpenAPI 3.0 media examples. */
const named = (examples: Record<string, unknown>) => Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }]));

const problemResponse = (description: string, examples: Record<string, unknown>) => ({
  description,
  content: { "application/problem+json": { schema: Problem, examples: named(examples) } },
});

function messagesDocumentation(limits: DocumentedLimits): FastifySchema {
  return {
    summary: "Store rocket messages: one, or a batch",
    description:
      "The body is parsed as JSON whatever the Content-Type says (none at all is fine). A JSON object is one message; a JSON " +
      `array is a batch of 1 to ${limits.maxBatch}, published pipelined. Nothing is answered 2xx before the events stream ` +
      "stored it; resending is always safe (`<channel>:<messageNumber>` is the stream's dedup id, so a resend is a duplicate, also 202). " +
      "A different message under a stored number is a conflict (409), never stored.",
    tags: ["messages"],
    body: {
      oneOf: [Message, Type.Array(Message, { minItems: 1, maxItems: limits.maxBatch, description: "A batch" })],
      examples: [LAUNCHED, [LAUNCHED, SPEED_UP]],
    },
    response: {
      202: {
        description:
          "Stored. One message: {status: accepted | duplicate, seq}. A batch: every valid item stored (invalid and conflicting ones " +
          "are listed with their errors or what is stored, and were not stored).",
        content: {
          "application/json": {
            schema: { oneOf: [Ack, BatchResult] },
            examples: named({
              accepted: { status: "accepted", seq: 1 },
              duplicate: { status: "duplicate", seq: 1 },
              batch: {
                accepted: 1,
                duplicate: 0,
                conflict: 0,
                invalid: 1,
                unavailable: 0,
                results: [
                  { index: 0, status: "accepted", seq: 2 },
                  { index: 1, status: "invalid", errors: [{ path: "metadata.messageNumber", reason: "must be a positive integer" }] },
                ],
              },
            }),
          },
        },
      },
      400: problemResponse(
        "Not stored: the body is empty or not JSON; a message does not match the schema (every field at fault is listed); " +
          `a batch is empty or longer than ${limits.maxBatch}; or no item of a batch was stored and some is invalid (results per item)`,
        {
          invalidMessage: {
            type: ProblemType.invalidMessage,
            title: "Invalid message",
            status: 400,
            detail: "the message does not match the schema",
            errors: [{ path: "metadata.channel", reason: "must be a single NATS subject token: no '.', '*', '>', whitespace or control characters" }],
          },
          notJson: { type: ProblemType.notJson, title: "Body is not JSON", status: 400, detail: "the request body is empty" },
        },
      ),
      409: problemResponse(
        "Not stored: another message is stored under this channel and message number (inside the stream's duplicate window); " +
          "a stored message is never replaced. For a batch: every item conflicts (results per item).",
        {
          conflict: {
            type: ProblemType.conflict,
            title: "Message number already stored",
            status: 409,
            detail: "another message is stored under this channel and message number; a stored message is never replaced",
            seq: 1,
            stored: { messageType: "RocketLaunched", messageTime: "2022-02-02T19:39:05.86337+01:00" },
          },
        },
      ),
      413: problemResponse(
        `The body is larger than ${limits.bodyLimitBytes} bytes for one message (BODY_LIMIT_BYTES) or ${limits.batchBodyLimitBytes} ` +
          "for a batch (BATCH_BODY_LIMIT_BYTES)",
        {
          tooLarge: { type: ProblemType.bodyTooLarge, title: "Body too large", status: 413, detail: "the request body exceeds the limit", limitBytes: limits.bodyLimitBytes },
        },
      ),
      429: {
        ...problemResponse(
          "Not stored: this client (its IP address) sent more than RATE_LIMIT_MAX requests in RATE_LIMIT_WINDOW_SECONDS. Resend after Retry-After.",
          {
            rateLimited: {
              type: ProblemType.rateLimited,
              title: "Too many requests",
              status: 429,
              detail: "this client sent more than 300000 requests in 10 s; retry after 4 seconds",
              limit: 300_000,
              windowSeconds: 10,
            },
          },
        ),
        headers: { "Retry-After": { description: "Seconds until this client's window resets", schema: { type: "integer" } } },
      },
      503: {
        ...problemResponse(
          "Not stored (for a batch: some valid item not stored, results per item): NATS or the stream cannot be reached or did not " +
            "answer within PUBLISH_TIMEOUT_MS, or the instance already handles HTTP_MAX_IN_FLIGHT requests (urn:rockets:problem:busy, " +
            "answered before the body is read). Resend after Retry-After; stored items come back as duplicates.",
          {
            unavailable: { type: ProblemType.unavailable, title: "Message not stored", status: 503, detail: "the events stream did not answer in time" },
            busy: { type: "urn:rockets:problem:busy", title: "Too many requests in flight", status: 503, detail: "this instance is handling 256 requests at once, its limit; retry after 1 s" },
          },
        ),
        headers: { "Retry-After": { description: "Seconds to wait before resending", schema: { type: "integer" } } },
      },
    },
  };
}

/** Registers the document and /docs; call before the routes, so that it sees them all. */
export function registerOpenApi(app: FastifyInstance, limits: DocumentedLimits): void {
  const documented = messagesDocumentation(limits);
  void app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Rockets ingest",
        description: "Takes rocket messages and stores them in the events stream; see the query API for the state they make.",
        version: "1",
      },
      tags: [
        { name: "messages", description: "Rocket messages in" },
        { name: "service", description: "Health, readiness and metrics" },
      ],
    },
    transform: ({ schema, url, route }) =>
      url === "/messages" && route.method === "POST" ? { schema: documented, url } : { schema, url },
  });
  void registerApiReference(app);
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
}
