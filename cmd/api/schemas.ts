// The query API's request and response schemas. Routes validate input and
// serialize output with them, and the OpenAPI document is generated from them.

import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { MAX_CHANNEL_LENGTH } from "../../internal/domain/channel.js";
import { MAX_TEXT_LENGTH } from "../../internal/domain/message.js";
import { RocketStatus } from "../../internal/domain/rocket.js";
import { SORT_KEYS } from "../../internal/view/sort-keys.js";

/** A string limited to `values`, as one JSON Schema enum (one clear validation error, one OpenAPI enum). */
function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

const STATUSES = Object.values(RocketStatus);

export const RocketSchema = Type.Object(
  {
    channel: Type.String({ description: "The rocket's id" }),
    type: Type.String({ examples: ["Falcon-9"] }),
    mission: Type.String({ examples: ["ARTEMIS"] }),
    speed: Type.Number(),
    status: StringEnum(STATUSES),
    explosionReason: Type.Union([Type.String(), Type.Null()], { description: "Why it exploded; null while it flies" }),
    launchedAt: Type.String({ description: "messageTime of the launch, verbatim (RFC 3339)" }),
    updatedAt: Type.String({ description: "messageTime of the last applied message, verbatim (RFC 3339)" }),
    lastMessageNumber: Type.Integer({ description: "messageNumber of the last applied message" }),
    pendingMessages: Type.Integer({ description: "Messages received but waiting for an earlier one to arrive" }),
  },
  { $id: "Rocket", additionalProperties: false },
);

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String({ description: "The parameter at fault" }), reason: Type.String() })),
    ),
  },
  { $id: "Problem", description: "An RFC 9457 problem document (application/problem+json)" },
);

/** Schemas other schemas refer to by $id; registered once on the app. */
export const SHARED_SCHEMAS: TSchema[] = [RocketSchema, ProblemSchema];

const RocketRef = Type.Ref(RocketSchema);
const ProblemRef = Type.Ref(ProblemSchema);

export const ChannelParams = Type.Object({
  channel: Type.String({ description: `The rocket's channel id (at most ${MAX_CHANNEL_LENGTH} characters, one NATS subject token)` }),
});
export type ChannelParams = Static<typeof ChannelParams>;

const SORT_VALUES = SORT_KEYS.flatMap((k) => [k, `-${k}`]);
const SortParam = StringEnum(SORT_VALUES, { description: "Sort key; a leading '-' sorts descending. Ties are broken by channel." });
const FilterText = (description: string) => Type.String({ minLength: 1, maxLength: MAX_TEXT_LENGTH, description });

export const ListQuery = Type.Object(
  {
    sort: Type.Optional(SortParam),
    sortBy: Type.Optional({ ...SortParam, description: "Same as sort" }),
    sort_by: Type.Optional({ ...SortParam, description: "Same as sort" }),
    order: Type.Optional(StringEnum(["asc", "desc"] as const, { description: "Default asc (desc with a '-' sort)" })),
    status: Type.Optional(StringEnum(STATUSES, { description: "Only rockets with this status" })),
    type: Type.Optional(FilterText("Only rockets of this type (exact match)")),
    mission: Type.Optional(FilterText("Only rockets on this mission (exact match)")),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: "Rockets per page" })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2048, description: "nextCursor of the previous page; keep the other parameters unchanged" }),
    ),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const RocketList = Type.Object({
  rockets: Type.Array(RocketRef),
  total: Type.Integer({ description: "Rockets matching the filters (all pages)" }),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for the next page; null on the last page" }),
});

const Counts = Type.Record(Type.String(), Type.Integer());

export const FleetSummary = Type.Object({
  total: Type.Integer(),
  byStatus: Counts,
  byType: Counts,
  byMission: Counts,
  averageSpeed: Type.Union([Type.Number(), Type.Null()], { description: "Mean speed of all rockets; null when there are none" }),
});

const EventStream = {
  description:
    "text/event-stream: `event: rocket` with the rocket as JSON on every change, `event: removed` with {channel} when one " +
    "leaves, `: heartbeat` comments when quiet. A client that falls too far behind receives only each rocket's latest state, " +
    "then is disconnected.",
  content: { "text/event-stream": { schema: Type.String() } },
};

const ProblemResponse = {
  description: "A problem document saying what is wrong",
  content: { "application/problem+json": { schema: ProblemRef } },
};
const problems = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ProblemResponse]));

export const getRocketSchema = {
  summary: "One rocket",
  description: "Answers with an ETag; send it back in If-None-Match to get 304 while the rocket is unchanged.",
  tags: ["rockets"],
  params: ChannelParams,
  response: { 200: RocketRef, 304: Type.Null({ description: "Unchanged since the ETag given in If-None-Match" }), ...problems(400, 404, 503) },
};

export const listRocketsSchema = {
  summary: "Rockets, sorted, filtered and paginated",
  tags: ["rockets"],
  querystring: ListQuery,
  response: { 200: RocketList, ...problems(400, 503) },
};

export const summarySchema = {
  summary: "Counts by status, type and mission, and average speed",
  tags: ["rockets"],
  response: { 200: FleetSummary, ...problems(503) },
};

export const fleetStreamSchema = {
  summary: "Every rocket change as Server-Sent Events",
  tags: ["streams"],
  response: { 200: EventStream, ...problems(503) },
};

export const rocketStreamSchema = {
  summary: "One rocket's changes as Server-Sent Events, starting with its current state",
  tags: ["streams"],
  params: ChannelParams,
  response: { 200: EventStream, ...problems(400, 503) },
};
