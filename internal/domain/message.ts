// The rocket message schema (see FACTS.md) and its validation.
//
// Validation is total: it never throws, and it returns every problem it finds
// with the field path and the reason, so that a client fixing a bad request
// sees all of it at once. A valid message is returned normalised: only the
// known fields are kept, so what is stored is bounded by the schema and never
// by what a client chose to send.
//
// Only what survives the whole pipeline is valid, because the same rules
// judge a message at ingest, again when the sequencer reads it from the
// stream, and again inside a stored channel state: text holds no character
// that UTF-8 cannot carry or that hides or reorders what is shown (text.ts);
// messageTime is a real calendar date and time; every number is a safe
// integer, and speeds are at most MAX_SPEED so that adding them stays exact.
// A reason never quotes the offending value: problems are shown back to
// clients and written to logs.

import { checkChannel } from "./channel.js";
import { checkCharacters } from "./text.js";

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

/**
 * The largest launchSpeed or speed change accepted. Far above any rocket's,
 * and small enough that a speed plus a change is computed exactly (both stay
 * far below 2^53); the rocket's speed itself saturates at
 * Number.MAX_SAFE_INTEGER (rocket.ts).
 */
export const MAX_SPEED = 1_000_000_000_000;

// RFC 3339 date-time (section 5.6): full-date "T" full-time, fraction up to nanoseconds.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

export function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * True when `value` is an RFC 3339 date-time that names a real instant: a
 * month and day that exist in that (proleptic Gregorian) year, from year
 * 0001 (there is no year 0 in the calendar clients mean), hours 00-23, and a
 * second 60 only where a leap second can be, at 23:59 UTC on the last day of
 * a month (RFC 3339 section 5.7; which months actually had one is not
 * checked). Offsets are -23:59 to +23:59.
 */
export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  // Field by field: every message is checked in ingest and again in the sequencer.
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const sign = m[9] === "-" ? -1 : 1;
  const offH = m[10] === undefined ? 0 : Number(m[10]);
  const offM = m[11] === undefined ? 0 : Number(m[11]);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 60 || offH > 23 || offM > 59) return false;
  if (second === 60) {
    // The same minute in UTC must be the last one of a month.
    const utc = new Date(0);
    utc.setUTCFullYear(year, month - 1, day);
    utc.setUTCHours(hour, minute - sign * (offH * 60 + offM), 0, 0);
    const next = new Date(utc.getTime() + 60_000);
    return utc.getUTCHours() === 23 && utc.getUTCMinutes() === 59 && next.getUTCDate() === 1;
  }
  return true;
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
    const why = checkCharacters(v);
    if (why) return void this.add(path, why);
    return v;
  }

  count(obj: Record<string, unknown>, key: string, path: string, min: 0 | 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = obj[key];
    if (v === undefined) return void this.add(path, "is required");
    if (typeof v !== "number") return void this.add(path, `must be an integer, got ${describe(v)}`);
    if (!Number.isInteger(v)) return void this.add(path, "must be an integer");
    if (v < min) return void this.add(path, min === 1 ? "must be a positive integer" : "must not be negative");
    if (!Number.isSafeInteger(v)) return void this.add(path, "must be a safe integer (at most 2^53 - 1)");
    if (v > max) return void this.add(path, `must be at most ${max}`);
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
  else if (!isRfc3339(messageTime)) {
    c.add("metadata.messageTime", "must be an RFC 3339 date-time naming a real date and time (e.g. 2022-02-02T19:39:05.86337+01:00)");
  }
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
      const launchSpeed = c.count(body, "launchSpeed", "message.launchSpeed", 0, MAX_SPEED);
      const mission = c.text(body, "mission", "message.mission");
      payload = { type: t!, launchSpeed: launchSpeed!, mission: mission! };
      break;
    }
    case MessageType.RocketSpeedIncreased:
    case MessageType.RocketSpeedDecreased:
      payload = { by: c.count(body, "by", "message.by", 0, MAX_SPEED)! };
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

/**
 * True when two valid messages say the same thing: the same channel, number,
 * type and payload. A resend of a stored number is a duplicate only when this
 * holds; otherwise it conflicts with what is stored, which is never replaced.
 *
 * messageTime is left out on purpose: the operators' test program stamps a
 * message when it sends it, and its default seed sends the same rockets on
 * every run, so a second run against kept data resends every stored number
 * with a new time. Answering those 409 would make the program, which retries
 * any non-2xx forever, never finish; they are the same telemetry sent again.
 * A changed type or payload (a forged explosion, a different speed) is a
 * conflict.
 */
export function sameMessage(a: RocketMessage, b: RocketMessage): boolean {
  const [ma, mb] = [a.metadata, b.metadata];
  if (ma.channel !== mb.channel || ma.messageNumber !== mb.messageNumber || ma.messageType !== mb.messageType) {
    return false;
  }
  const pa = a.message as unknown as Record<string, unknown>;
  const pb = b.message as unknown as Record<string, unknown>;
  const keys = Object.keys(pa);
  return keys.length === Object.keys(pb).length && keys.every((k) => pa[k] === pb[k]);
}
