// The rocket message schema (see FACTS.md) and its validation.
//
// Validation is total: it never throws, and it returns every problem it finds
// with the field path and the reason, so that a client fixing a bad request
// sees all of it at once. A valid message is returned normalised: only the
// known fields are kept, so what is stored is bounded by the schema and never
// by what a client chose to send.

import { checkChannel } from "./channel.js";

export const MessageType = {
  RocketLaunched: "RocketLaunched",
  RocketSpeedIncreased: "RocketSpeedIncreased",
  RocketSpeedDecreased: "RocketSpeedDecreased",
  RocketExploded: "RocketExploded",
  RocketMissionChanged: "RocketMissionChanged",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypes: ReadonlySet<string> = new Set(Object.values(MessageType));

export interface Metadata<T extends MessageType = MessageType> {
  channel: string;
  messageNumber: number;
  /** RFC 3339, kept verbatim: nanosecond precision and the sender's offset survive. */
  messageTime: string;
  messageType: T;
}

interface Payloads {
  RocketLaunched: { type: string; launchSpeed: number; mission: string };
  RocketSpeedIncreased: { by: number };
  RocketSpeedDecreased: { by: number };
  RocketExploded: { reason: string };
  RocketMissionChanged: { newMission: string };
}

export type MessageOf<T extends MessageType> = { metadata: Metadata<T>; message: Payloads[T] };
export type RocketMessage = { [T in MessageType]: MessageOf<T> }[MessageType];

export interface Problem {
  /** Dotted path of the offending field, e.g. `metadata.messageNumber`; `` for the whole document. */
  path: string;
  reason: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

/** Free-text fields (type, mission, reason) are bounded so one message cannot bloat a rocket's state. */
export const MAX_TEXT_LENGTH = 200;

// RFC 3339 date-time (section 5.6): full-date "T" full-time, fraction up to nanoseconds.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [, , month, day, hour, minute, second, , , offH, offM] = m;
  const within = (v: string | undefined, lo: number, hi: number) =>
    v === undefined || (Number(v) >= lo && Number(v) <= hi);
  return (
    within(month, 1, 12) &&
    within(day, 1, 31) &&
    within(hour, 0, 23) &&
    within(minute, 0, 59) &&
    within(second, 0, 60) &&
    within(offH, 0, 23) &&
    within(offM, 0, 59)
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

class Collector {
  readonly problems: Problem[] = [];
  add(path: string, reason: string): void {
    this.problems.push({ path, reason });
  }

  text(obj: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined) return void this.add(path, "is required");
    if (typeof v !== "string") return void this.add(path, `must be a string, got ${describe(v)}`);
    if (v.length === 0) return void this.add(path, "must not be empty");
    if (v.length > MAX_TEXT_LENGTH) return void this.add(path, `must be at most ${MAX_TEXT_LENGTH} characters`);
    return v;
  }

  count(obj: Record<string, unknown>, key: string, path: string, min: 0 | 1): number | undefined {
    const v = obj[key];
    if (v === undefined) return void this.add(path, "is required");
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      return void this.add(path, `must be a safe integer, got ${typeof v === "number" ? String(v) : describe(v)}`);
    }
    if (v < min) return void this.add(path, min === 1 ? "must be a positive integer" : "must not be negative");
    return v;
  }
}

/** Validates one message as it arrives from a client or from the stream. */
export function validateMessage(input: unknown): Validation<RocketMessage> {
  const c = new Collector();
  if (!isRecord(input)) {
    c.add("", `must be a JSON object with metadata and message, got ${describe(input)}`);
    return { ok: false, problems: c.problems };
  }
  const meta = input["metadata"];
  const body = input["message"];
  let metadata: Metadata | undefined;
  if (!isRecord(meta)) {
    c.add("metadata", meta === undefined ? "is required" : `must be an object, got ${describe(meta)}`);
  } else {
    metadata = validateMetadata(meta, c);
  }
  if (!isRecord(body)) {
    c.add("message", body === undefined ? "is required" : `must be an object, got ${describe(body)}`);
  }
  const type = isRecord(meta) ? meta["messageType"] : undefined;
  const payload =
    isRecord(body) && typeof type === "string" && messageTypes.has(type)
      ? validatePayload(type as MessageType, body, c)
      : undefined;

  if (metadata && payload && c.problems.length === 0) {
    if ((metadata.messageType === MessageType.RocketLaunched) !== (metadata.messageNumber === 1)) {
      c.add(
        "metadata.messageNumber",
        metadata.messageType === MessageType.RocketLaunched
          ? "RocketLaunched must be message number 1"
          : "message number 1 must be RocketLaunched",
      );
      return { ok: false, problems: c.problems };
    }
    return { ok: true, value: { metadata, message: payload } as RocketMessage };
  }
  return { ok: false, problems: c.problems };
}

function validateMetadata(meta: Record<string, unknown>, c: Collector): Metadata | undefined {
  const before = c.problems.length;
  const channel = meta["channel"];
  if (channel === undefined) c.add("metadata.channel", "is required");
  else if (typeof channel !== "string") c.add("metadata.channel", `must be a string, got ${describe(channel)}`);
  else {
    const why = checkChannel(channel);
    if (why) c.add("metadata.channel", why);
  }
  const messageNumber = c.count(meta, "messageNumber", "metadata.messageNumber", 1);
  const messageTime = meta["messageTime"];
  if (messageTime === undefined) c.add("metadata.messageTime", "is required");
  else if (typeof messageTime !== "string") c.add("metadata.messageTime", `must be a string, got ${describe(messageTime)}`);
  else if (!isRfc3339(messageTime)) c.add("metadata.messageTime", "must be an RFC 3339 date-time");
  const messageType = meta["messageType"];
  if (messageType === undefined) c.add("metadata.messageType", "is required");
  else if (typeof messageType !== "string" || !messageTypes.has(messageType)) {
    c.add("metadata.messageType", `must be one of ${[...messageTypes].join(", ")}`);
  }
  if (c.problems.length !== before) return undefined;
  return {
    channel: channel as string,
    messageNumber: messageNumber as number,
    messageTime: messageTime as string,
    messageType: messageType as MessageType,
  };
}

function validatePayload(type: MessageType, body: Record<string, unknown>, c: Collector): RocketMessage["message"] | undefined {
  const before = c.problems.length;
  let payload: RocketMessage["message"] | undefined;
  switch (type) {
    case MessageType.RocketLaunched: {
      const t = c.text(body, "type", "message.type");
      const launchSpeed = c.count(body, "launchSpeed", "message.launchSpeed", 0);
      const mission = c.text(body, "mission", "message.mission");
      payload = { type: t!, launchSpeed: launchSpeed!, mission: mission! };
      break;
    }
    case MessageType.RocketSpeedIncreased:
    case MessageType.RocketSpeedDecreased:
      payload = { by: c.count(body, "by", "message.by", 0)! };
      break;
    case MessageType.RocketExploded:
      payload = { reason: c.text(body, "reason", "message.reason")! };
      break;
    case MessageType.RocketMissionChanged:
      payload = { newMission: c.text(body, "newMission", "message.newMission")! };
      break;
  }
  return c.problems.length === before ? payload : undefined;
}
