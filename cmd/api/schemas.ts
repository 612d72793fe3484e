// The query API's request and response schemas. Routes validate input and
// serialize output with them, and the OpenAPI document is generated from them.

import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { MAX_CHANNEL_LENGTH } from "../../internal/domain/channel.js";
import { MAX_TEXT_LENGTH, MessageType } from "../../internal/domain/message.js";
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
    pendingMessages: Type.Integer({ description: "Messages received but waiting for an earlier one to arrive (an upper bound while they are parked)" }),
    gap: Type.Optional(
      Type.Object(
        { since: Type.String({ description: "When the sequencer recorded the gap (RFC 3339, UTC)" }) },
        { additionalProperties: false, description: "The open gap: messages past it wait in the events stream. Absent when none is open." },
      ),
    ),
    skipped: Type.Optional(
      Type.Array(
        Type.Object(
          {
            from: Type.Integer({ minimum: 1 }),
            to: Type.Integer({ minimum: 1 }),
            at: Type.String({ description: "When they were given up (RFC 3339, UTC)" }),
            reason: Type.Optional(
              Type.Union([Type.Literal("deadline"), Type.Literal("retention")], {
                description:
                  "deadline: they had not arrived by GAP_DEADLINE_SECONDS (GAP_POLICY=skip); retention: the events stream's retention removed messages the gap held before they could be applied. Absent in ranges recorded before reasons were: deadline.",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 10,
          description:
            "Message numbers given up: the rocket's state lacks their effect. The most recent ranges; absent when none.",
        },
      ),
    ),
  },
  {
    $id: "Rocket",
    additionalProperties: false,
    examples: [
      {
        channel: "193270a9-c9cf-404a-8f83-838e71d9ae67",
        type: "Falcon-9",
        mission: "ARTEMIS",
        speed: 3500,
        status: "launched",
        explosionReason: null,
        launchedAt: "2022-02-02T19:39:05.86337+01:00",
        updatedAt: "2022-02-02T19:39:06.1+01:00",
        lastMessageNumber: 2,
        pendingMessages: 0,
      },
    ],
  },
);

export const NumberRangeSchema = Type.Object(
  { from: Type.Integer({ minimum: 1 }), to: Type.Integer({ minimum: 1 }) },
  { $id: "NumberRange", description: "An inclusive run of message numbers", examples: [{ from: 37, to: 39 }] },
);
const NumberRangeRef = Type.Ref(NumberRangeSchema);

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String({ description: "The parameter at fault" }), reason: Type.String() })),
    ),
    missing: Type.Optional(
      Type.Array(NumberRangeRef, { description: "history problems: the message numbers the answer would need and the stream does not hold" }),
    ),
    heldSince: Type.Optional(
      Type.Union([Type.String(), Type.Null()], { description: "history problems: when the oldest message the stream still holds was received" }),
    ),
  },
  { $id: "Problem", description: "An RFC 9457 problem document (application/problem+json)" },
);

/** One stored message of a rocket's history and what it did. */
export const HistoryEventSchema = Type.Object(
  {
    seq: Type.Integer({ description: "Stream sequence: the order the events stream received the messages in" }),
    receivedAt: Type.String({ description: "When the events stream stored it (RFC 3339, UTC, nanoseconds)", examples: ["2026-11-24T09:21:50.458989221Z"] }),
    messageNumber: Type.Integer(),
    messageTime: Type.String({ description: "The message's own time, verbatim", examples: ["2022-02-02T19:39:05.86337+01:00"] }),
    messageType: StringEnum(Object.values(MessageType)),
    message: Type.Object({}, { additionalProperties: true, description: "The payload, as stored", examples: [{ by: 3000 }] }),
    outcome: Type.Union([StringEnum(["applied", "buffered", "duplicate", "skipped"] as const), Type.Null()], {
      description:
        "What it did when the sequencer met it, taking the stored messages in stream order: applied (possibly releasing buffered ones), " +
        "buffered behind a gap, duplicate (changed nothing), or skipped (its number was given up, see the rocket's skipped ranges). Null when the history is incomplete.",
    }),
    speedAfter: Type.Union([Type.Number(), Type.Null()], {
      description: "The rocket's speed right after this message number was applied; null while it waits behind a gap, or when the history is incomplete",
    }),
  },
  { $id: "HistoryEvent", additionalProperties: false },
);

/** Schemas other schemas refer to by $id; registered once on the app. */
export const SHARED_SCHEMAS: TSchema[] = [RocketSchema, NumberRangeSchema, ProblemSchema, HistoryEventSchema];

const RocketRef = Type.Ref(RocketSchema);
const HistoryEventRef = Type.Ref(HistoryEventSchema);
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

export const RocketList = Type.Object(
  {
    rockets: Type.Array(RocketRef),
    total: Type.Integer({ description: "Rockets matching the filters (all pages)" }),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for the next page; null on the last page" }),
  },
  { description: "One page of the rockets matching the filters, in the order asked for" },
);

const Counts = Type.Record(Type.String(), Type.Integer());

export const FleetSummary = Type.Object({
  total: Type.Integer(),
  waitingOnGaps: Type.Integer({ description: "Rockets with messages waiting behind a gap" }),
  byStatus: Counts,
  byType: Type.Record(Type.String(), Type.Integer(), {
    description: "Rockets by type: the SUMMARY_TOP_LABELS (20) most common types (ties by name); otherTypes counts the rest",
  }),
  byMission: Type.Record(Type.String(), Type.Integer(), {
    description: "Rockets by mission: the SUMMARY_TOP_LABELS (20) most common missions (ties by name); otherMissions counts the rest",
  }),
  otherTypes: Type.Integer({ description: "Rockets whose type byType does not list" }),
  otherMissions: Type.Integer({ description: "Rockets whose mission byMission does not list" }),
  distinctTypes: Type.Integer({ description: "How many different types the fleet has (byType lists at most SUMMARY_TOP_LABELS of them)" }),
  distinctMissions: Type.Integer({ description: "How many different missions the fleet has (byMission lists at most SUMMARY_TOP_LABELS of them)" }),
  totalSpeed: Type.String({ pattern: "^[0-9]+$", description: "Exact sum of every rocket's speed, in decimal: it can pass 2^53" }),
  averageSpeed: Type.Union([Type.Number(), Type.Null()], { description: "Mean speed of all rockets, from the exact sum; null when there are none" }),
}, {
  description: "The fleet's counts, from this instance's live view",
  examples: [
    { total: 20, waitingOnGaps: 1, byStatus: { launched: 14, exploded: 6 }, byType: { "Falcon-9": 12, "Atlas-H": 8 }, byMission: { ARTEMIS: 11, APOLLO: 9 }, otherTypes: 0, otherMissions: 0, distinctTypes: 2, distinctMissions: 2, totalSpeed: "365010", averageSpeed: 18250.5 },
  ],
});

export const StreamQuery = Type.Object(
  {
    snapshot: Type.Optional(
      Type.Boolean({ description: "Start with every rocket's current state (oldest change first), then `event: synced`, then the changes" }),
    ),
    lastEventId: Type.Optional(
      Type.String({
        pattern: "^[0-9]{1,16}$",
        description: "Same as the Last-Event-ID header (which wins when both are given), for clients that cannot set headers",
      }),
    ),
  },
  { additionalProperties: false },
);
export type StreamQuery = Static<typeof StreamQuery>;

export const HistoryQuery = Type.Object(
  {
    order: Type.Optional(
      StringEnum(["stream", "messageNumber"] as const, {
        description: "stream (default): the order the stream received them; messageNumber: by number, copies in stream order",
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000, description: "Messages per page" })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: "nextCursor of the previous page; keep `order` unchanged" }),
    ),
  },
  { additionalProperties: false },
);
export type HistoryQuery = Static<typeof HistoryQuery>;

export const PointInTimeQuery = Type.Object(
  {
    at: Type.Optional(
      Type.Integer({ minimum: 1, description: "The rocket right after this message number: messages 1..at applied in order", examples: [42] }),
    ),
    asOf: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          "RFC 3339 time: the state the sequencer held once it had every message the events stream had received by then " +
          "(pendingMessages counts what waited behind a gap)",
        examples: ["2026-11-24T09:30:00Z"],
      }),
    ),
  },
  { additionalProperties: false },
);
export type PointInTimeQuery = Static<typeof PointInTimeQuery>;

const RANGE_LIST_NOTE = " (at most the first 100 runs)";

const HISTORY_EXAMPLE = {
  channel: "193270a9-c9cf-404a-8f83-838e71d9ae67",
  complete: true,
  missing: [],
  heldSince: "2026-11-17T09:00:00.000000000Z",
  lastApplied: 2,
  waitingFor: [{ from: 3, to: 3 }],
  pendingMessages: 1,
  rejected: 0,
  total: 3,
  events: [
    {
      seq: 4711,
      receivedAt: "2026-11-24T09:21:50.458989221Z",
      messageNumber: 2,
      messageTime: "2022-02-02T19:39:06.1+01:00",
      messageType: "RocketSpeedIncreased",
      message: { by: 3000 },
      outcome: "buffered",
      speedAfter: 3500,
    },
    {
      seq: 4712,
      receivedAt: "2026-11-24T09:21:50.460000000Z",
      messageNumber: 1,
      messageTime: "2022-02-02T19:39:05.86337+01:00",
      messageType: "RocketLaunched",
      message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
      outcome: "applied",
      speedAfter: 500,
    },
    {
      seq: 4720,
      receivedAt: "2026-11-24T09:21:50.470000000Z",
      messageNumber: 4,
      messageTime: "2022-02-02T19:39:06.3+01:00",
      messageType: "RocketMissionChanged",
      message: { newMission: "APOLLO" },
      outcome: "buffered",
      speedAfter: null,
    },
  ],
  nextCursor: null,
};

export const RocketHistory = Type.Object({
  channel: Type.String(),
  complete: Type.Boolean({
    description: "True when the events stream still holds every message number the rocket applied; else outcomes and speeds are null",
  }),
  missing: Type.Array(NumberRangeRef, { description: `Applied message numbers the stream no longer holds (retention)${RANGE_LIST_NOTE}` }),
  heldSince: Type.Union([Type.String(), Type.Null()], {
    description: "When the oldest message the events stream still holds (for any rocket) was received: retention's edge",
  }),
  lastApplied: Type.Integer({ description: "Highest message number applied (0 before the launch)" }),
  waitingFor: Type.Array(NumberRangeRef, { description: `The gap: numbers not received yet that later messages wait for${RANGE_LIST_NOTE}` }),
  pendingMessages: Type.Integer({ description: "Messages received and waiting behind the gap" }),
  rejected: Type.Integer({ description: "Stored messages on this rocket's subject that are not valid messages (they changed nothing)" }),
  total: Type.Integer({ description: "Messages the stream holds for this rocket (all pages)" }),
  events: Type.Array(HistoryEventRef),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for the next page; null on the last page" }),
}, { description: "One page of the rocket's stored messages, with the rocket's gap and whether the history is complete", examples: [HISTORY_EXAMPLE] });

const EventStream = {
  description:
    "text/event-stream. `event: rocket` carries a rocket as JSON, `event: removed` {channel} when one leaves; every such event's " +
    "`id` is the state bucket's revision (one order across API instances). A new stream begins with `event: synced` " +
    "{revision, rockets}; reconnecting with Last-Event-ID (browsers send it by themselves) first replays every rocket changed since " +
    "(its current state) and every removal, oldest first, then `event: synced`, then live changes: nothing is missed. When that " +
    "cannot be done exactly (the revision is from another deployment, or removals since were forgotten) the stream sends " +
    "`event: reload` {reason}: drop what you hold and read the current state again (GET /rockets, or reconnect with snapshot=true). " +
    "`: heartbeat` comments keep quiet streams open. A client that falls too far behind receives only each rocket's latest state, " +
    "then is disconnected and resumes as above.",
  content: { "text/event-stream": { schema: Type.String({ examples: ['id: 4711\nevent: rocket\ndata: {"channel":"193270a9-...","speed":3500,...}\n\n'] }) } },
};

/** Problem responses with what each status means for this route. */
const problems = (descriptions: Record<number, string>) =>
  Object.fromEntries(
    Object.entries(descriptions).map(([code, description]) => [
      code,
      { description, content: { "application/problem+json": { schema: ProblemRef } } },
    ]),
  );

const NOT_READY = "This instance is still loading rocket states (Retry-After: 1)";
const BAD_CHANNEL = "The channel id cannot be a channel (each parameter at fault is listed)";

export const getRocketSchema = {
  summary: "One rocket, now or at a point of its history",
  description:
    "Without parameters: the rocket's current state from the live view, with an ETag; send it back in If-None-Match to get 304 " +
    "while the rocket is unchanged. With `at` or `asOf`: the state at that point, computed by folding the domain's own sequencing " +
    "over the messages the events stream holds. If the stream no longer holds a message that answer needs (retention), the answer " +
    "is 410 with the missing numbers, never a state computed without it.",
  tags: ["rockets"],
  params: ChannelParams,
  querystring: PointInTimeQuery,
  response: {
    200: Type.Ref(RocketSchema, { description: "The rocket: now, or at the point asked for (pendingMessages: what waited behind a gap then)" }),
    304: Type.Null({ description: "Unchanged since the ETag given in If-None-Match" }),
    ...problems({
      400: `${BAD_CHANNEL}, or at/asOf are invalid or both given`,
      404: "No rocket with this channel has launched (as of that point); for `at`, also: that message number has not been received (`missing` lists the numbers)",
      410: "The events stream no longer holds messages the answer needs (`missing`, `heldSince`): retention removed them",
      422: "The stream holds more messages for this rocket than one history read may fold (HISTORY_MAX_MESSAGES)",
      503: `${NOT_READY}, or the events stream cannot be read right now`,
    }),
  },
};

export const rocketHistorySchema = {
  summary: "A rocket's stored messages and what each did",
  description:
    "Every message the events stream holds for the rocket, cursor-paged, with its stream sequence, receive time, the outcome the " +
    "sequencer gave it (taking the messages in stream order) and the speed once it was applied, plus the gap the rocket waits on. " +
    "The stream keeps messages for a limited time and size (STREAM_MAX_AGE, 7 days by default; STREAM_MAX_BYTES): " +
    "`complete` says whether it still holds every message the rocket applied.",
  tags: ["history"],
  params: ChannelParams,
  querystring: HistoryQuery,
  response: {
    200: RocketHistory,
    ...problems({
      400: `${BAD_CHANNEL}, or a parameter is invalid (a cursor made for another order)`,
      404: "The stream holds no message for this channel and no such rocket is known",
      422: "The stream holds more messages for this rocket than one history read may fold (HISTORY_MAX_MESSAGES)",
      503: `${NOT_READY}, or the events stream cannot be read right now`,
    }),
  },
};

export const listRocketsSchema = {
  summary: "Rockets, sorted, filtered and paginated",
  tags: ["rockets"],
  querystring: ListQuery,
  response: {
    200: RocketList,
    ...problems({ 400: "A parameter is invalid (every one at fault is listed)", 503: NOT_READY }),
  },
};

export const summarySchema = {
  summary: "Counts by status, type and mission, rockets waiting on gaps, and average speed",
  tags: ["rockets"],
  response: { 200: FleetSummary, ...problems({ 503: NOT_READY }) },
};

const TOO_MANY_STREAMS = "This instance serves as many event streams as it is configured for (SSE_MAX_CLIENTS; Retry-After: 5)";
const TOO_MANY_FROM_CLIENT = "This client (its IP address) already holds as many event streams as one client may (SSE_MAX_CLIENTS_PER_CLIENT; Retry-After: 5)";

export const fleetStreamSchema = {
  summary: "Every rocket change as Server-Sent Events, resumable",
  tags: ["streams"],
  querystring: StreamQuery,
  response: { 200: EventStream, ...problems({ 400: "A parameter is invalid", 429: TOO_MANY_FROM_CLIENT, 503: TOO_MANY_STREAMS }) },
};

export const rocketStreamSchema = {
  summary: "One rocket's changes as Server-Sent Events, starting with its current state, resumable",
  tags: ["streams"],
  params: ChannelParams,
  querystring: Type.Omit(StreamQuery, ["snapshot"], { additionalProperties: false }),
  response: { 200: EventStream, ...problems({ 400: `${BAD_CHANNEL}, or a parameter is invalid`, 429: TOO_MANY_FROM_CLIENT, 503: TOO_MANY_STREAMS }) },
};

/** Accepted for compatibility, left out of the OpenAPI document (one spelling is advertised). */
export const UNADVERTISED_PARAMETERS: Record<string, readonly string[]> = { "/rockets": ["sortBy", "sort_by"] };
